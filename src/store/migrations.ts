/**
 * Versioned migrations, run by kysely's Migrator (`grantkeeper migrate`, and
 * at start). One schema for SQLite and PostgreSQL; the dialect branches are
 * the auto-increment column type and how a CHECK changes (SQLite rebuilds the
 * table). State lists in CHECKs and partial indexes come from the exported
 * constants (`stateSql.ts`) from 0009 on; earlier migrations spell theirs out
 * (history is not rewritten), and a test compares every migrated CHECK with
 * its constant.
 */
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider, type MigrationResultSet, type RawBuilder, type SqlBool } from "kysely";
import { BREAKER_STATES } from "../domain/breaker.js";
import { CLAIMABLE_JOB_STATES, FINISHED_JOB_STATES } from "../domain/states.js";
import type { Dialect, Store } from "./database.js";
import { inList } from "./stateSql.js";

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

function migrations(dialect: Dialect): Record<string, Migration> {
  const bigint = dialect === "postgres" ? "bigint" : "integer";
  return {
    "0001_core": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("providers")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("definition", "text", (c) => c.notNull())
          .addColumn("client_secret_ct", "text")
          .addColumn("created_at", bigint, (c) => c.notNull())
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("connections")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("provider_id", "text", (c) => c.notNull().references("providers.id"))
          .addColumn("entity_id", "text", (c) => c.notNull())
          .addColumn("state", "text", (c) =>
            c.notNull().check(sql`state in ('pending','syncing','ready','degraded','error')`),
          )
          .addColumn("access_token_ct", "text", (c) => c.notNull())
          .addColumn("refresh_token_ct", "text")
          .addColumn("token_type", "text", (c) => c.notNull())
          .addColumn("scope", "text", (c) => c.notNull().defaultTo(""))
          .addColumn("expires_at", bigint)
          .addColumn("expires_at_assumed", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("last_refreshed_at", bigint)
          .addColumn("last_attempt_at", bigint)
          .addColumn("next_refresh_at", bigint)
          .addColumn("consecutive_failures", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("last_error", "text")
          .addColumn("token_version", "integer", (c) => c.notNull().defaultTo(1))
          .addColumn("lease_owner", "text")
          .addColumn("lease_until", bigint)
          .addColumn("created_at", bigint, (c) => c.notNull())
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .addUniqueConstraint("connections_provider_entity", ["provider_id", "entity_id"])
          .execute();
        // The scheduler asks "what is due next" of this index only: cost per tick grows with due work, not grants held.
        await db.schema.createIndex("connections_next_refresh_at").on("connections").column("next_refresh_at").execute();
        await db.schema.createIndex("connections_entity").on("connections").columns(["entity_id", "provider_id"]).execute();
        await db.schema
          .createTable("connection_events")
          .addColumn("id", dialect === "postgres" ? "bigserial" : "integer", (c) =>
            dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn("connection_id", "text", (c) => c.notNull())
          .addColumn("at", bigint, (c) => c.notNull())
          .addColumn("type", "text", (c) => c.notNull())
          .addColumn("class", "text")
          .addColumn("code", "text")
          .addColumn("message", "text", (c) => c.notNull())
          .addColumn("detail", "text")
          .execute();
        await db.schema.createIndex("connection_events_connection").on("connection_events").columns(["connection_id", "id"]).execute();
        await db.schema
          .createTable("oauth_states")
          .addColumn("state_hash", "text", (c) => c.primaryKey())
          .addColumn("provider_id", "text", (c) => c.notNull())
          .addColumn("entity_id", "text", (c) => c.notNull())
          .addColumn("code_verifier_ct", "text", (c) => c.notNull())
          .addColumn("return_to", "text")
          .addColumn("created_at", bigint, (c) => c.notNull())
          .addColumn("expires_at", bigint, (c) => c.notNull())
          .addColumn("used_at", bigint)
          .execute();
      },
      async down(db: Kysely<any>) {
        for (const t of ["oauth_states", "connection_events", "connections", "providers"]) await db.schema.dropTable(t).execute();
      },
    },
    "0002_integrations": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("integrations")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("entity_id", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull().check(sql`status in ('ENABLED','DISABLED','ERROR')`))
          .addColumn("status_reason", "text")
          .addColumn("status_cause_connection_id", "text")
          .addColumn("status_cause_target", "text")
          .addColumn("delivery", "text")
          .addColumn("delivery_secret_ct", "text")
          .addColumn("webhook_signing", "text", (c) => c.notNull().defaultTo("none"))
          .addColumn("webhook_secret_ct", "text")
          .addColumn("created_at", bigint, (c) => c.notNull())
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .execute();
        await db.schema.createIndex("integrations_entity").on("integrations").column("entity_id").execute();
        await db.schema.createIndex("integrations_cause").on("integrations").column("status_cause_connection_id").execute();
        await db.schema
          .createTable("integration_connections")
          .addColumn("integration_id", "text", (c) => c.notNull().references("integrations.id").onDelete("cascade"))
          .addColumn("connection_id", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("integration_connections_pk", ["integration_id", "connection_id"])
          .execute();
        // Propagation finds dependents through this index: one set-based statement per fan-out.
        await db.schema.createIndex("integration_connections_connection").on("integration_connections").columns(["connection_id", "integration_id"]).execute();
        await db.schema
          .createTable("integration_events")
          .addColumn("id", dialect === "postgres" ? "bigserial" : "integer", (c) => (dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn("integration_id", "text", (c) => c.notNull())
          .addColumn("at", bigint, (c) => c.notNull())
          .addColumn("actor", "text", (c) => c.notNull())
          .addColumn("from_status", "text")
          .addColumn("to_status", "text", (c) => c.notNull())
          .addColumn("reason", "text")
          .addColumn("cause", "text")
          .addColumn("message", "text", (c) => c.notNull())
          .execute();
        await db.schema.createIndex("integration_events_integration").on("integration_events").columns(["integration_id", "id"]).execute();
      },
      async down(db: Kysely<any>) {
        for (const t of ["integration_events", "integration_connections", "integrations"]) await db.schema.dropTable(t).execute();
      },
    },
    "0003_jobs": {
      async up(db: Kysely<any>) {
        await db.schema.alterTable("integrations").addColumn("delivery_target", "text", (c) => c.notNull().defaultTo("")).execute();
        await db.schema
          .createTable("jobs")
          .addColumn("seq", dialect === "postgres" ? "bigserial" : "integer", (c) => (dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn("id", "text", (c) => c.notNull().unique())
          .addColumn("integration_id", "text", (c) => c.notNull())
          .addColumn("state", "text", (c) => c.notNull().check(sql`state in ('queued','running','succeeded','failed','faulted','parked','dead','discarded')`))
          .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("idempotency_key", "text")
          .addColumn("headers", "text", (c) => c.notNull())
          .addColumn("body", "text", (c) => c.notNull())
          .addColumn("run_at", bigint, (c) => c.notNull())
          .addColumn("lease_owner", "text")
          .addColumn("lease_until", bigint)
          .addColumn("last_error", "text")
          .addColumn("probe", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("received_at", bigint, (c) => c.notNull())
          .addColumn("created_at", bigint, (c) => c.notNull())
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .addColumn("finished_at", bigint)
          .addUniqueConstraint("jobs_idempotency", ["integration_id", "idempotency_key"])
          .execute();
        await db.schema.createIndex("jobs_claim").on("jobs").columns(["state", "run_at", "seq"]).execute();
        await db.schema.createIndex("jobs_integration").on("jobs").columns(["integration_id", "state", "seq"]).execute();
        await db.schema
          .createTable("breakers")
          .addColumn("target", "text", (c) => c.primaryKey())
          .addColumn("state", "text", (c) => c.notNull())
          .addColumn("consecutive_failures", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("opened_at", bigint)
          .addColumn("cooldown_until", bigint)
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable("breakers").execute();
        await db.schema.dropTable("jobs").execute();
      },
    },
    "0004_alerts": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("alerts")
          .addColumn("id", dialect === "postgres" ? "bigserial" : "integer", (c) => (dialect === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("subject_type", "text", (c) => c.notNull())
          .addColumn("subject_id", "text", (c) => c.notNull())
          .addColumn("severity", "text", (c) => c.notNull())
          .addColumn("message", "text", (c) => c.notNull())
          .addColumn("user_message", "text")
          .addColumn("detail", "text")
          .addColumn("at", bigint, (c) => c.notNull())
          .execute();
        await db.schema.createIndex("alerts_at").on("alerts").columns(["at", "id"]).execute();
        await db.schema
          .createTable("alert_episodes")
          .addColumn("subject", "text", (c) => c.primaryKey())
          .addColumn("episode", "text", (c) => c.notNull())
          .addColumn("updated_at", bigint, (c) => c.notNull())
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable("alert_episodes").execute();
        await db.schema.dropTable("alerts").execute();
      },
    },
    "0005_provider_state_index": {
      async up(db: Kysely<any>) {
        // Redefining a provider retries its degraded connections: read only those, not every grant of the provider.
        await db.schema.createIndex("connections_provider_state").on("connections").columns(["provider_id", "state"]).execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropIndex("connections_provider_state").execute();
      },
    },
    "0006_job_payloads": {
      async up(db: Kysely<any>) {
        // Bodies and headers move out of the hot jobs row: a job's state changes no longer rewrite its body.
        await db.schema
          .createTable("job_payloads")
          .addColumn("job_id", "text", (c) => c.primaryKey())
          .addColumn("headers", "text", (c) => c.notNull())
          .addColumn("body", "text", (c) => c.notNull())
          .execute();
        await sql`insert into job_payloads (job_id, headers, body) select id, headers, body from jobs`.execute(db);
        await db.schema.alterTable("jobs").dropColumn("headers").execute();
        await db.schema.alterTable("jobs").dropColumn("body").execute();
        // Claims and the lease sweep read small partial indexes: finished jobs (most of the table) are in neither, and
        // on PostgreSQL an ordered scan of the queued ones is not slowed by every job that was ever queued.
        await db.schema.dropIndex("jobs_claim").execute();
        await db.schema.createIndex("jobs_queued").on("jobs").columns(["run_at", "seq"]).where(sql.ref("state"), "=", "queued").execute();
        await db.schema.createIndex("jobs_running").on("jobs").column("lease_until").where(sql.ref("state"), "=", "running").execute();
        if (dialect === "postgres") {
          // A queue table churns: vacuum it after a few thousand dead rows, not after 20 % of a table that only grows.
          await sql`alter table jobs set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000, autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 2000)`.execute(db);
        }
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable("jobs").addColumn("headers", "text", (c) => c.notNull().defaultTo("{}")).execute();
        await db.schema.alterTable("jobs").addColumn("body", "text", (c) => c.notNull().defaultTo("")).execute();
        await sql`update jobs set headers = (select p.headers from job_payloads p where p.job_id = jobs.id), body = (select p.body from job_payloads p where p.job_id = jobs.id) where id in (select job_id from job_payloads)`.execute(db);
        await db.schema.dropTable("job_payloads").execute();
        await db.schema.dropIndex("jobs_queued").execute();
        await db.schema.dropIndex("jobs_running").execute();
        await db.schema.createIndex("jobs_claim").on("jobs").columns(["state", "run_at", "seq"]).execute();
      },
    },
    "0007_connect_sessions": {
      async up(db: Kysely<any>) {
        // Connect links become stored, single-use sessions; each flow's state is bound to the browser that opened the link.
        await db.schema
          .createTable("connect_sessions")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("token_hash", "text", (c) => c.notNull().unique())
          .addColumn("provider_id", "text", (c) => c.notNull())
          .addColumn("entity_id", "text", (c) => c.notNull())
          .addColumn("scopes", "text")
          .addColumn("return_to", "text")
          .addColumn("connection_config", "text")
          .addColumn("created_at", bigint, (c) => c.notNull())
          .addColumn("expires_at", bigint, (c) => c.notNull())
          .addColumn("completed_at", bigint)
          .addColumn("connection_id", "text")
          .execute();
        await db.schema.createIndex("connect_sessions_expires_at").on("connect_sessions").column("expires_at").execute();
        await db.schema.alterTable("oauth_states").addColumn("session_id", "text").execute();
        await db.schema.alterTable("oauth_states").addColumn("binding_hash", "text").execute();
        await db.schema.createIndex("oauth_states_session").on("oauth_states").columns(["session_id", "created_at"]).execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropIndex("oauth_states_session").execute();
        await db.schema.alterTable("oauth_states").dropColumn("binding_hash").execute();
        await db.schema.alterTable("oauth_states").dropColumn("session_id").execute();
        await db.schema.dropTable("connect_sessions").execute();
      },
    },
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

class InlineProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}

/**
 * kysely looks for its migration tables in *every* schema unless told which:
 * with several grantkeeper schemas in one PostgreSQL database it would find
 * another schema's lock table and fail. Pin the schema.
 *
 * Migrations of one release are independent of each other's order (each adds
 * its own columns, tables or constraints), and some were written side by
 * side: a store that ran a later-named one first (a development build) still
 * gets the earlier-named ones instead of refusing to start.
 */
function newMigrator(store: Store): Migrator {
  return new Migrator({ db: store.db, provider: new InlineProvider(store.dialect), allowUnorderedMigrations: true, ...(store.dialect === "postgres" && store.schema ? { migrationTableSchema: store.schema } : {}) });
}

/** Outcome of {@link migrateToLatest}: the names of migrations applied by this call. */
export interface MigrationReport {
  applied: string[];
}

/**
 * Apply every pending migration. Safe to call from several processes at once
 * (kysely takes a lock table on PostgreSQL; SQLite serializes writers).
 * @throws Error with the failing migration's name when one fails (nothing after it runs)
 */
export async function migrateToLatest(store: Store): Promise<MigrationReport> {
  for (let attempt = 1; ; attempt++) {
    try {
      return reportOf(await newMigrator(store).migrateToLatest());
    } catch (e) {
      // kysely's table lookup reads the catalog of every schema; another schema dropped at that moment fails it with
      // 3F000 (invalid_schema_name) although ours is fine. Migrations run in a transaction on PostgreSQL: retrying is safe.
      if (attempt >= 5 || !isOtherSchemaVanished(store, e)) throw e;
    }
  }
}

/** True for PostgreSQL's 3F000 about a schema that is not the store's own. */
function isOtherSchemaVanished(store: Store, e: unknown): boolean {
  if (store.dialect !== "postgres") return false;
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const pgError = c as Error & { code?: string };
    if (pgError.code === "3F000") return store.schema === undefined || !pgError.message.includes(`"${store.schema}"`);
  }
  return false;
}

/**
 * Migrate up or down to the named migration (for upgrade tests and manual
 * rollbacks; `migrateToLatest` is what start-up runs).
 * @param name a migration name, e.g. `0005_provider_state_index`
 * @throws Error with the failing migration's name when one fails
 */
export async function migrateTo(store: Store, name: string): Promise<MigrationReport> {
  return reportOf(await newMigrator(store).migrateTo(name));
}

function reportOf({ error, results }: MigrationResultSet): MigrationReport {
  if (error) {
    const failed = results?.find((r) => r.status === "Error");
    throw new Error(`migration ${failed?.migrationName ?? "(unknown)"} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
  return { applied: (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName) };
}

/** Names of migrations not yet applied (for `/readyz` and `grantkeeper doctor`). */
export async function pendingMigrations(store: Store): Promise<string[]> {
  const migrator = newMigrator(store);
  const all = await migrator.getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
