/**
 * The per-integration job indexes (migration 0020; SQLite — PostgreSQL keeps
 * one `(integration_id, state, seq)` index): `jobs_integration`
 * `(integration_id, seq)` for every job, `jobs_integration_state`
 * `(integration_id, state, seq)` for every job but a succeeded one. A
 * success leaves the small index instead of moving within a large one; the
 * lookups by state must still walk the small index, or an integration's
 * whole history is scanned (SQLite uses a partial index only when the query
 * repeats its predicate).
 */
import SQLite from "better-sqlite3";
import { Kysely, sql, SqliteDialect, type CompiledQuery } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { migratedStore, type TestDatabase } from "../../test/support/backend.js";
import { INTEGRATION_STATUSES, type JobState } from "../domain/states.js";
import type { Store } from "./database.js";
import { acceptStatement } from "./jobStatements.js";
import { JobRepository } from "./jobs.js";
import { newJobId } from "./jobRows.js";
import type { Database } from "./schema.js";

const T = 1_700_000_000_000;

/** Insert jobs of integration `int_h` in the given states, in this order (ascending seq); returns their ids. */
async function seed(store: Store, states: JobState[]): Promise<string[]> {
  const ids = states.map((_, i) => newJobId(T + i));
  await store.db
    .insertInto("jobs")
    .values(states.map((state, i) => ({ id: ids[i]!, integration_id: "int_h", state, attempts: state === "dead" ? 5 : 1, idempotency_key: null, run_at: T, lease_owner: null, lease_until: null, last_error: null, probe: 0, received_at: T + i, created_at: T + i, updated_at: T + i, finished_at: state === "succeeded" || state === "dead" ? T + i : null })))
    .execute();
  return ids;
}

describe("per-integration job indexes", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  it("replays parked and dead jobs by hand in arrival order across both states, batch by batch, past a history of successes", async () => {
    ({ tdb, store } = await migratedStore());
    await sql`insert into integrations (id, name, entity_id, status, delivery_target, created_at, updated_at) values ('int_h', 'h', 'e', 'ENABLED', '', ${T}, ${T})`.execute(store.db);
    const states: JobState[] = ["succeeded", "dead", "succeeded", "parked", "parked", "succeeded", "dead", "parked", "succeeded", "dead"];
    const ids = await seed(store, states);
    const replayable = ids.filter((_, i) => states[i] === "parked" || states[i] === "dead");
    const repo = new JobRepository(store.db, store.dialect, store.workerDb);
    const queued = async () => (await store!.db.selectFrom("jobs").select("id").where("state", "=", "queued").orderBy("seq").execute()).map((r) => r.id);

    // Batches of 2: each one queues the two earliest replayable jobs left, whichever their state.
    const batches: string[][] = [];
    for (let b = 0; b < 3; b++) {
      await replayOneBatch(repo, 2);
      batches.push(await queued());
    }
    expect(batches).toEqual([replayable.slice(0, 2), replayable.slice(0, 4), replayable.slice(0, 6)]);
    expect(await repo.replay("int_h", T + 400, 2)).toBe(0);
    const succeeded = await store.db.selectFrom("jobs").select("id").where("state", "=", "succeeded").orderBy("seq").execute();
    expect(succeeded.map((r) => r.id)).toEqual(ids.filter((_, i) => states[i] === "succeeded"));
  });

  it.runIf(process.env.GK_TEST_BACKEND !== "postgres")("walks jobs_integration_state for every lookup by state of one integration (SQLite plans)", async () => {
    ({ tdb, store } = await migratedStore());
    // The same store file through a logging handle: every statement the repository sends is explained below.
    const raw = new SQLite(tdb.url.slice("sqlite:".length));
    const sent: Array<{ sql: string; parameters: readonly unknown[] }> = [];
    const logged = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }), log: (e) => void (e.level === "query" && sent.push(e.query)) });
    try {
      const repo = new JobRepository(logged, "sqlite");
      await repo.parkedCounts(["int_a", "int_b"]);
      await repo.queueProbe("int_a", T);
      await repo.replay("int_a", T, 100);
      await repo.list({ integrationId: "int_a", state: "dead" }, undefined, 50);
      await repo.syncWithIntegrations(logged, T, true);
      const lookups = sent.filter((q) => q.sql.includes('"integration_id"'));
      expect(lookups.length).toBeGreaterThanOrEqual(6);
      const record = { state: "queued" as const, finishedAtMs: null, lastError: null };
      const accept: CompiledQuery = acceptStatement(false, [{ job: { id: "job_x", integration_id: "int_a", attempts: 0, idempotency_key: null, run_at: T, probe: 0, received_at: T, created_at: T, updated_at: T, headers: "{}", body: "e30=" }, recordFor: Object.fromEntries(INTEGRATION_STATUSES.map((s) => [s, record])) as never }], { owner: "w", leaseUntilMs: T + 1, nowMs: T, handlerNames: ["h"] });
      for (const q of [...lookups, accept]) {
        const plan = (raw.prepare(`explain query plan ${q.sql}`).all(...(q.parameters as unknown[])) as Array<{ detail: string }>).map((r) => r.detail);
        const jobSteps = plan.filter((d) => /\b(SEARCH|SCAN) (jobs|w)\b/.test(d) && !/INTEGER PRIMARY KEY/.test(d));
        expect(jobSteps.length, q.sql).toBeGreaterThan(0);
        for (const step of jobSteps) expect(step, q.sql).toContain("jobs_integration_state");
      }
    } finally {
      await logged.destroy();
    }
  });
});

/** One batch of {@link JobRepository.replay} of `int_h`: its progress callback, called after each batch's UPDATE, stops it there. */
async function replayOneBatch(repo: JobRepository, n: number): Promise<void> {
  const stop = new Error("one batch");
  await repo
    .replay("int_h", T + 300, n, () => {
      throw stop;
    })
    .catch((e: unknown) => {
      if (e !== stop) throw e;
    });
}
