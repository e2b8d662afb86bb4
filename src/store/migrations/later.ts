/**
 * Migrations 0008 on: changes to the tables {@link ./tables.ts} created —
 * job states, connection config, retention, provider breakers, the
 * dashboard, API auth rejections, webhook secret overlap, the per-integration
 * job indexes. State lists in CHECKs and partial indexes come from the
 * exported constants (`stateSql.ts`); a CHECK change rebuilds the table on
 * SQLite. Run by {@link ../migrations.ts}.
 */
import { sql, type Kysely, type Migration, type RawBuilder, type SqlBool } from "kysely";
import { BREAKER_STATES } from "../../domain/breaker.js";
import { CLAIMABLE_JOB_STATES, FINISHED_JOB_STATES } from "../../domain/states.js";
import type { Dialect } from "../database.js";
import { inList } from "../stateSql.js";

/**
 * SQLite cannot alter a CHECK: rebuild `breakers` with (or without) one,
 * keeping every row. No other table references it and it has no index but
 * its primary key.
 */
async function rebuildSqliteBreakers(db: Kysely<any>, check: RawBuilder<SqlBool> | undefined): Promise<void> {
  await db.schema
    .createTable("breakers_rebuilt")
    .addColumn("target", "text", (c) => c.primaryKey())
    .addColumn("state", "text", (c) => (check ? c.notNull().check(check) : c.notNull()))
    .addColumn("consecutive_failures", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("opened_at", "integer")
    .addColumn("cooldown_until", "integer")
    .addColumn("updated_at", "integer", (c) => c.notNull())
    .execute();
  await sql`insert into breakers_rebuilt (target, state, consecutive_failures, opened_at, cooldown_until, updated_at) select target, state, consecutive_failures, opened_at, cooldown_until, updated_at from breakers`.execute(db);
  await db.schema.dropTable("breakers").execute();
  await db.schema.alterTable("breakers_rebuilt").renameTo("breakers").execute();
}

/**
 * Migrations 0008 and later for one dialect.
 * @returns migrations by name, for kysely's Migrator
 */
export function laterMigrations(dialect: Dialect): Record<string, Migration> {
  const bigint = dialect === "postgres" ? "bigint" : "integer";
  return {
    "0009_job_states": {
      async up(db: Kysely<any>) {
        // A fault that will be retried is written `faulted` (it was `queued`): claims walk both, in one partial index.
        await db.schema.dropIndex("jobs_queued").execute();
        await db.schema.createIndex("jobs_runnable").on("jobs").columns(["run_at", "seq"]).where(inList("state", CLAIMABLE_JOB_STATES)).execute();
        // breakers.state had no CHECK: generate it from BREAKER_STATES.
        if (dialect === "postgres") await sql`alter table breakers add constraint breakers_state_check check (${inList("state", BREAKER_STATES)})`.execute(db);
        else await rebuildSqliteBreakers(db, inList("state", BREAKER_STATES));
      },
      async down(db: Kysely<any>) {
        // The older code claims only `queued`: a faulted job would never run again.
        await sql`update jobs set state = 'queued' where state = 'faulted'`.execute(db);
        await db.schema.dropIndex("jobs_runnable").execute();
        await db.schema.createIndex("jobs_queued").on("jobs").columns(["run_at", "seq"]).where(sql.ref("state"), "=", "queued").execute();
        if (dialect === "postgres") await sql`alter table breakers drop constraint breakers_state_check`.execute(db);
        else await rebuildSqliteBreakers(db, undefined);
      },
    },
    "0010_connection_config": {
      async up(db: Kysely<any>) {
        // Per-connection settings (contract v1.1): Salesforce's instance_url, Zendesk's subdomain. JSON object of strings.
        // A connect flow's settings and scopes travel in its connect session (0007), not in oauth_states.
        await db.schema.alterTable("connections").addColumn("connection_config", "text", (c) => c.notNull().defaultTo("{}")).execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable("connections").dropColumn("connection_config").execute();
      },
    },
    "0011_retention": {
      async up(db: Kysely<any>) {
        // Retention sweeps (issue 13) walk the oldest finished rows of each table in batches, one index each (alerts_at
        // and connect_sessions_expires_at exist already), so a batch reads n index entries instead of scanning the
        // table. The jobs index is partial on finished states: queued and running jobs (the hot part of the queue) are
        // not in it, so ingress and claims do not write it.
        await db.schema.createIndex("jobs_finished").on("jobs").columns(["state", "finished_at"]).where(inList("state", FINISHED_JOB_STATES)).execute();
        await db.schema.createIndex("connection_events_at").on("connection_events").column("at").execute();
        await db.schema.createIndex("oauth_states_expires_at").on("oauth_states").column("expires_at").execute();
      },
      async down(db: Kysely<any>) {
        for (const i of ["oauth_states_expires_at", "connection_events_at", "jobs_finished"]) await db.schema.dropIndex(i).execute();
      },
    },
    "0012_provider_breakers": {
      async up(db: Kysely<any>) {
        // A breaker per provider token endpoint (issue 12), shared by every instance like the delivery breakers.
        // cooldown_until is also the half-open probe's claim: the instance that moves it forward sends the one probe.
        await db.schema
          .createTable("provider_breakers")
          .addColumn("provider_id", "text", (c) => c.primaryKey())
          .addColumn("state", "text", (c) => c.notNull().check(inList("state", BREAKER_STATES)))
          .addColumn("consecutive_failures", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("opened_at", bigint)
          .addColumn("cooldown_until", bigint)
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable("provider_breakers").execute();
      },
    },
    "0013_dashboard": {
      async up(db: Kysely<any>) {
        // (The dashboard's 24 h refresh chart reads connection_events by time: index connection_events_at, from 0011_retention.)
        // Signed-out dashboard sessions: a replayed cookie of one is refused until it would have expired.
        await db.schema
          .createTable("dashboard_sign_outs")
          .addColumn("session_hash", "text", (c) => c.primaryKey())
          .addColumn("expires_at", bigint, (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable("dashboard_sign_outs").execute();
      },
    },
    "0014_api_auth_rejections": {
      async up(db: Kysely<any>) {
        // Rejections of a just-refreshed token by the provider's API, in a row: the Nth makes the connection degraded.
        await db.schema.alterTable("connections").addColumn("api_auth_rejections", "integer", (c) => c.notNull().defaultTo(0)).execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable("connections").dropColumn("api_auth_rejections").execute();
      },
    },
    "0019_webhook_secret_overlap": {
      async up(db: Kysely<any>) {
        // A rotated webhook secret is accepted beside the new one for webhook.secretOverlapSeconds (Stripe's practice):
        // senders switch over at their own pace and no instance's cached signing settings refuse a valid webhook.
        await db.schema.alterTable("integrations").addColumn("webhook_previous_secret_ct", "text").execute();
        await db.schema.alterTable("integrations").addColumn("webhook_secret_rotated_at", bigint).execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable("integrations").dropColumn("webhook_secret_rotated_at").execute();
        await db.schema.alterTable("integrations").dropColumn("webhook_previous_secret_ct").execute();
      },
    },
    "0020_jobs_integration_state": {
      async up(db: Kysely<any>) {
        // jobs_integration held (integration_id, state, seq) for every job: each success moved the job's entry from
        // the integration's running range into its (large, ever-growing) succeeded range — ~15 B-tree pages per
        // group of outcomes on SQLite (issue 16). Now (integration_id, seq) for every job (lists by integration;
        // written once, at accept) and (integration_id, state, seq) only for jobs not succeeded (waiting, running,
        // parked, failed, dead: the by-state lookups), which a success leaves. Queries repeat the predicate
        // (stateSql.ts `notSucceeded`). SQLite only: PostgreSQL writes a new entry into every index of `jobs` on each
        // UPDATE anyway (never HOT: `state` is in partial index predicates), so there a second index is two more
        // entries per job (measured: +5 % PostgreSQL CPU per job, no throughput gained) and the one index stays.
        if (dialect !== "sqlite") return;
        await db.schema.createIndex("jobs_integration_state").on("jobs").columns(["integration_id", "state", "seq"]).where(sql.ref("state"), "<>", "succeeded").execute();
        await db.schema.dropIndex("jobs_integration").execute();
        await db.schema.createIndex("jobs_integration").on("jobs").columns(["integration_id", "seq"]).execute();
      },
      async down(db: Kysely<any>) {
        if (dialect !== "sqlite") return;
        await db.schema.dropIndex("jobs_integration").execute();
        await db.schema.createIndex("jobs_integration").on("jobs").columns(["integration_id", "state", "seq"]).execute();
        await db.schema.dropIndex("jobs_integration_state").execute();
      },
    },
    "0008_webhook_signing_required": {
      async up(db: Kysely<any>) {
        // Deny by default (issue 10 item 5): an integration without a webhook block accepts no inbound webhook. Rows
        // stored before this could not tell "no webhook block" from an explicit `none` (both were 'none'), so every
        // one of them takes none until an operator sets its signing by name (PUT /v1/integrations/{id}/webhook).
        await sql`update integrations set webhook_signing = 'not_configured' where webhook_signing = 'none'`.execute(db);
        // SQLite cannot change a column default without rebuilding the table; every insert names the value anyway.
        if (dialect === "postgres") await sql`alter table integrations alter column webhook_signing set default 'not_configured'`.execute(db);
      },
      async down(db: Kysely<any>) {
        if (dialect === "postgres") await sql`alter table integrations alter column webhook_signing set default 'none'`.execute(db);
        await sql`update integrations set webhook_signing = 'none' where webhook_signing = 'not_configured'`.execute(db);
      },
    },
  };
}
