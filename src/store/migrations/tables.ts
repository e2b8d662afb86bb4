/**
 * Migrations 0001–0007: the tables of the first releases (connections and
 * providers, integrations, jobs, alerts, payloads, connect sessions), as they
 * were written then — history is not rewritten, so their state lists are
 * spelled out here (later ones take them from `stateSql.ts`). Run by
 * {@link ../migrations.ts}.
 */
import { sql, type Kysely, type Migration } from "kysely";
import type { Dialect } from "../database.js";

/**
 * Migrations 0001–0007 for one dialect (their only branch: the auto-increment column type, `bigint` times on PostgreSQL).
 * @returns migrations by name, for kysely's Migrator
 */
export function tableMigrations(dialect: Dialect): Record<string, Migration> {
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
  };
}
