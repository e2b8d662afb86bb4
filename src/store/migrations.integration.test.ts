/**
 * Upgrades keep every accepted job: migration 0006 moves job bodies and
 * headers out of `jobs` into `job_payloads` on a store that already holds
 * jobs; 0009 generates the breaker CHECK and the claim index from the state
 * constants, keeping every row both ways; 0007 adds connect sessions and 0010
 * gives every connection an empty connectionConfig, both reversible.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { testDatabase, type TestDatabase } from "../../test/support/backend.js";
import { BREAKER_STATES } from "../domain/breaker.js";
import { CLAIMABLE_JOB_STATES, CONNECTION_STATES, INTEGRATION_STATUSES, JOB_STATES } from "../domain/states.js";
import { openStore, type Store } from "./database.js";
import { JobRepository } from "./jobs.js";
import { migrateTo, migrateToLatest, pendingMigrations } from "./migrations.js";

describe("migration 0006_job_payloads", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  it("moves the payload of every stored job, and rolls back to the old shape", async () => {
    tdb = await testDatabase();
    store = await openStore(tdb.url);
    await migrateTo(store, "0005_provider_state_index");
    const body = Buffer.from('{"action":"opened","n":1}').toString("base64");
    for (const [id, key] of [["job_a", "delivery-1"], ["job_b", null]] as const) {
      await sql`insert into jobs (id, integration_id, state, attempts, idempotency_key, headers, body, run_at, probe, received_at, created_at, updated_at)
        values (${id}, 'int_x', 'parked', 0, ${key}, '{"x-github-event":"issues"}', ${body}, 1, 0, 1, 1, 1)`.execute(store.db);
    }

    expect(await migrateTo(store, "0006_job_payloads")).toEqual({ applied: ["0006_job_payloads"] });
    await migrateToLatest(store);
    expect(await pendingMigrations(store)).toEqual([]);

    const payloads = await new JobRepository(store.db, store.dialect).payloads(["job_a", "job_b"]);
    expect(payloads.get("job_a")).toEqual({ headers: '{"x-github-event":"issues"}', body });
    expect(payloads.get("job_b")).toEqual({ headers: '{"x-github-event":"issues"}', body });
    const columns = await store.db.introspection.getTables().then((ts) => ts.find((t) => t.name === "jobs" && (store!.schema === undefined || t.schema === store!.schema))!.columns.map((c) => c.name));
    expect(columns).not.toContain("body");

    await migrateTo(store, "0005_provider_state_index");
    const back = await sql<{ id: string; headers: string; body: string }>`select id, headers, body from jobs order by id`.execute(store.db);
    expect(back.rows).toEqual([
      { id: "job_a", headers: '{"x-github-event":"issues"}', body },
      { id: "job_b", headers: '{"x-github-event":"issues"}', body },
    ]);
  });
});

describe("migration 0007_connect_sessions", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  // PostgreSQL introspection lists every schema's tables (other test files' too): look in this store's schema only.
  const columnsOf = async (s: Store, table: string) => (await s.db.introspection.getTables()).find((t) => t.name === table && (s.schema === undefined || t.schema === s.schema))?.columns.map((c) => c.name);

  it("adds connect_sessions and binds states to sessions and browsers; keeps pending states; rolls back", async () => {
    tdb = await testDatabase();
    store = await openStore(tdb.url);
    await migrateTo(store, "0006_job_payloads");
    await sql`insert into oauth_states (state_hash, provider_id, entity_id, code_verifier_ct, return_to, created_at, expires_at, used_at)
      values ('h1', 'acme', 'e1', 'ct', null, 1, 2, null)`.execute(store.db);

    expect(await migrateTo(store, "0007_connect_sessions")).toEqual({ applied: ["0007_connect_sessions"] });
    expect(await columnsOf(store, "connect_sessions")).toEqual(expect.arrayContaining(["id", "token_hash", "provider_id", "entity_id", "scopes", "return_to", "connection_config", "expires_at", "completed_at", "connection_id"]));
    expect(await columnsOf(store, "oauth_states")).toEqual(expect.arrayContaining(["session_id", "binding_hash"]));
    // A state written before the upgrade is bound to no browser: the callback refuses it (state_not_bound).
    const old = await store.db.selectFrom("oauth_states").selectAll().where("state_hash", "=", "h1").executeTakeFirstOrThrow();
    expect(old).toMatchObject({ session_id: null, binding_hash: null });
    const row = { id: "cs_1", token_hash: "t1", provider_id: "acme", entity_id: "e1", scopes: null, return_to: null, connection_config: null, created_at: 1, expires_at: 2, completed_at: null, connection_id: null };
    await store.db.insertInto("connect_sessions").values(row).execute();
    await expect(store.db.insertInto("connect_sessions").values({ ...row, id: "cs_2" }).execute()).rejects.toThrow(); // token_hash is unique

    await migrateTo(store, "0006_job_payloads");
    expect(await columnsOf(store, "connect_sessions")).toBeUndefined();
    expect(await columnsOf(store, "oauth_states")).not.toContain("binding_hash");
    expect(await store.db.selectFrom("oauth_states").select("state_hash").execute()).toEqual([{ state_hash: "h1" }]);
  });
});

describe("migration 0009_job_states", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  async function fresh(): Promise<{ store: Store; before: string }> {
    tdb = await testDatabase();
    store = await openStore(tdb.url);
    const all = await pendingMigrations(store);
    return { store, before: all[all.indexOf("0009_job_states") - 1]! };
  }

  const insertBreaker = (s: Store, target: string, state: string) => sql`insert into breakers (target, state, consecutive_failures, opened_at, cooldown_until, updated_at) values (${target}, ${state}, 3, 1, 2, 3)`.execute(s.db);

  it("keeps every breaker, refuses an unknown breaker state, and its down makes faulted jobs claimable by the older code", async () => {
    const { store, before } = await fresh();
    await migrateTo(store, before);
    await insertBreaker(store, "http://a", "open");
    await insertBreaker(store, "http://b", "closed");
    await migrateTo(store, "0009_job_states");
    expect((await sql<{ target: string; state: string; consecutive_failures: number }>`select target, state, consecutive_failures from breakers order by target`.execute(store.db)).rows).toEqual([
      { target: "http://a", state: "open", consecutive_failures: 3 },
      { target: "http://b", state: "closed", consecutive_failures: 3 },
    ]);
    await expect(insertBreaker(store, "http://c", "half-open")).rejects.toThrow(/check/i);
    await sql`insert into integrations (id, name, entity_id, status, delivery_target, created_at, updated_at) values ('int_m', 'm', 'e', 'ENABLED', '', 1, 1)`.execute(store.db);
    await sql`insert into jobs (id, integration_id, state, attempts, run_at, probe, received_at, created_at, updated_at) values ('job_f', 'int_m', 'faulted', 2, 5, 0, 1, 1, 1)`.execute(store.db);

    await migrateTo(store, before);
    expect((await sql<{ state: string; attempts: number }>`select state, attempts from jobs where id = 'job_f'`.execute(store.db)).rows).toEqual([{ state: "queued", attempts: 2 }]);
    expect((await sql<{ n: number }>`select count(*) as n from breakers`.execute(store.db)).rows.map((r) => Number(r.n))).toEqual([2]);
    await insertBreaker(store, "http://c", "half-open"); // no CHECK before 0009
    await sql`delete from breakers where target = 'http://c'`.execute(store.db);
    await migrateToLatest(store);
    expect(await pendingMigrations(store)).toEqual([]);
  });

  it("leaves every CHECK list and the claim index equal to the constants the code's unions come from", async () => {
    const { store } = await fresh();
    await migrateToLatest(store);
    const quoted = (text: string) => [...text.matchAll(/'([^']*)'/g)].map((m) => m[1]!).sort();
    const checkOf = async (table: string, column: string): Promise<string[]> => {
      if (store.dialect === "sqlite") {
        const ddl = (await sql<{ sql: string }>`select sql from sqlite_master where type = 'table' and name = ${table}`.execute(store.db)).rows[0]!.sql;
        return quoted(new RegExp(`"?${column}"?\\s+in\\s*\\(([^)]*)\\)`, "i").exec(ddl)![1]!);
      }
      const defs = await sql<{ def: string }>`select pg_get_constraintdef(c.oid) as def from pg_constraint c join pg_class t on t.oid = c.conrelid join pg_namespace n on n.oid = t.relnamespace where t.relname = ${table} and n.nspname = current_schema() and c.contype = 'c'`.execute(store.db);
      return quoted(defs.rows.find((r) => r.def.includes(column))!.def);
    };
    expect(await checkOf("connections", "state")).toEqual([...CONNECTION_STATES].sort());
    expect(await checkOf("integrations", "status")).toEqual([...INTEGRATION_STATUSES].sort());
    expect(await checkOf("jobs", "state")).toEqual([...JOB_STATES].sort());
    expect(await checkOf("breakers", "state")).toEqual([...BREAKER_STATES].sort());
    const index =
      store.dialect === "sqlite"
        ? (await sql<{ sql: string }>`select sql from sqlite_master where type = 'index' and name = 'jobs_runnable'`.execute(store.db)).rows[0]!.sql
        : (await sql<{ indexdef: string }>`select indexdef from pg_indexes where indexname = 'jobs_runnable' and schemaname = current_schema()`.execute(store.db)).rows[0]!.indexdef;
    expect(quoted(index)).toEqual([...CLAIMABLE_JOB_STATES].sort());
  });
});

describe("migration 0010_connection_config", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  it("gives every stored connection an empty connectionConfig, and rolls back keeping the rows", async () => {
    tdb = await testDatabase();
    store = await openStore(tdb.url);
    await migrateTo(store, "0009_job_states");
    await sql`insert into providers (id, definition, client_secret_ct, created_at, updated_at) values ('p', '{}', null, 1, 1)`.execute(store.db);
    await sql`insert into connections (id, provider_id, entity_id, state, access_token_ct, token_type, created_at, updated_at) values ('conn_a', 'p', 'e', 'ready', 'ct', 'Bearer', 1, 1)`.execute(store.db);

    expect(await migrateTo(store, "0010_connection_config")).toEqual({ applied: ["0010_connection_config"] });
    const after = await sql<{ connection_config: string }>`select connection_config from connections where id = 'conn_a'`.execute(store.db);
    expect(after.rows).toEqual([{ connection_config: "{}" }]);

    await migrateTo(store, "0009_job_states");
    // PostgreSQL introspection lists every schema's tables (other test files' too): look in this store's schema only.
    const columns = (await store.db.introspection.getTables()).find((t) => t.name === "connections" && (store!.schema === undefined || t.schema === store!.schema))!.columns.map((c) => c.name);
    expect(columns).not.toContain("connection_config");
    const kept = await sql<{ id: string }>`select id from connections`.execute(store.db);
    expect(kept.rows).toEqual([{ id: "conn_a" }]);
    await migrateToLatest(store);
    expect(await pendingMigrations(store)).toEqual([]);
  });
});

describe("migration 0008_webhook_signing_required", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  it("turns every integration stored as `none` into one that takes no inbound webhook, keeps real schemes, and rolls back", async () => {
    tdb = await testDatabase();
    store = await openStore(tdb.url);
    await migrateTo(store, "0006_job_payloads");
    const ahead = await pendingMigrations(store);
    const before = ahead[ahead.indexOf("0008_webhook_signing_required") - 1] ?? "0006_job_payloads";
    for (const [id, signing] of [["int_a", "none"], ["int_b", "github"], ["int_alerts0123456789abcdef", "none"]] as const) {
      await sql`insert into integrations (id, name, entity_id, status, webhook_signing, delivery_target, created_at, updated_at) values (${id}, ${id}, 'e', 'ENABLED', ${signing}, '', 1, 1)`.execute(store.db);
    }
    const signings = async () => (await sql<{ id: string; webhook_signing: string }>`select id, webhook_signing from integrations order by id`.execute(store!.db)).rows;

    await migrateTo(store, "0008_webhook_signing_required");
    expect(await signings()).toEqual([
      { id: "int_a", webhook_signing: "not_configured" },
      { id: "int_alerts0123456789abcdef", webhook_signing: "not_configured" },
      { id: "int_b", webhook_signing: "github" },
    ]);
    if (store.dialect === "postgres") {
      // A row written without naming the column is denied too.
      await sql`insert into integrations (id, name, entity_id, status, delivery_target, created_at, updated_at) values ('int_c', 'c', 'e', 'ENABLED', '', 1, 1)`.execute(store.db);
      expect((await signings()).find((r) => r.id === "int_c")?.webhook_signing).toBe("not_configured");
      await sql`delete from integrations where id = 'int_c'`.execute(store.db);
    }

    await migrateTo(store, before);
    expect(await signings()).toEqual([
      { id: "int_a", webhook_signing: "none" },
      { id: "int_alerts0123456789abcdef", webhook_signing: "none" },
      { id: "int_b", webhook_signing: "github" },
    ]);
  });
});
