/**
 * Upgrades keep every accepted job: migration 0006 moves job bodies and
 * headers out of `jobs` into `job_payloads` on a store that already holds jobs.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { testDatabase, type TestDatabase } from "../../test/support/backend.js";
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
    const columns = await store.db.introspection.getTables().then((ts) => ts.find((t) => t.name === "jobs")!.columns.map((c) => c.name));
    expect(columns).not.toContain("body");

    await migrateTo(store, "0005_provider_state_index");
    const back = await sql<{ id: string; headers: string; body: string }>`select id, headers, body from jobs order by id`.execute(store.db);
    expect(back.rows).toEqual([
      { id: "job_a", headers: '{"x-github-event":"issues"}', body },
      { id: "job_b", headers: '{"x-github-event":"issues"}', body },
    ]);
  });
});
