/**
 * Migration 0014_api_auth_rejections on a store that already holds
 * connections: every one starts at 0 rejections, and the way down drops the
 * column and keeps the rows.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { testDatabase, type TestDatabase } from "../../test/support/backend.js";
import { openStore, type Store } from "./database.js";
import { migrateTo, migrateToLatest } from "./migrations.js";

describe("migration 0014_api_auth_rejections", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  // Introspection lists every schema of the database (other test files run beside this one): read ours only.
  const columns = async (s: Store) => (await s.db.introspection.getTables()).find((t) => t.name === "connections" && (s.schema === undefined || t.schema === s.schema))!.columns.map((c) => c.name);

  it("adds a rejection count of 0 to existing connections, and rolls back without losing them", async () => {
    tdb = await testDatabase();
    store = await openStore(tdb.url);
    await migrateTo(store, "0006_job_payloads");
    await sql`insert into providers (id, definition, client_secret_ct, created_at, updated_at) values ('p', '{}', null, 1, 1)`.execute(store.db);
    await sql`insert into connections (id, provider_id, entity_id, state, access_token_ct, token_type, token_version, created_at, updated_at)
      values ('conn_a', 'p', 'e', 'ready', 'ct', 'Bearer', 1, 1, 1)`.execute(store.db);

    await migrateToLatest(store);
    const after = await sql<{ id: string; api_auth_rejections: number }>`select id, api_auth_rejections from connections`.execute(store.db);
    expect(after.rows.map((r) => ({ ...r, api_auth_rejections: Number(r.api_auth_rejections) }))).toEqual([{ id: "conn_a", api_auth_rejections: 0 }]);

    await migrateTo(store, "0006_job_payloads");
    expect(await columns(store)).not.toContain("api_auth_rejections");
    const back = await sql<{ id: string; state: string }>`select id, state from connections`.execute(store.db);
    expect(back.rows).toEqual([{ id: "conn_a", state: "ready" }]);
  });
});
