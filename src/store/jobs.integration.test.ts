/**
 * The queue's SQL on a real store: group inserts with duplicates, claims in
 * arrival order, outcomes only under a held lease, and (SQLite) worker writes
 * that leave the connection durable for the next accept.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { migratedStore, testDatabase, type TestDatabase } from "../../test/support/backend.js";
import { openStore, type Store } from "./database.js";
import { jobError, serializeJobLastError } from "../domain/jobLastError.js";
import { JobRepository } from "./jobs.js";
import { newJobId, type NewJob } from "./jobRows.js";

const T = 1_700_000_000_000;

function job(id: string, key: string | null): NewJob {
  return { id, integration_id: "int_q", state: "queued", attempts: 0, idempotency_key: key, headers: "{}", body: Buffer.from(id).toString("base64"), run_at: T, lease_owner: null, lease_until: null, last_error: null, probe: 0, received_at: T, created_at: T, updated_at: T, finished_at: null };
}

describe("JobRepository on a real store", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  /**
   * Open a migrated store (kept in this file's `store` for clean-up) holding the ENABLED integration `int_q`
   * (handler name `q`), and its job repository.
   * @param url the database; a fresh test database (this file's `tdb`) when absent
   */
  async function openRepo(url?: string): Promise<{ repo: JobRepository; opened: Store }> {
    const made = await migratedStore(url);
    if (made.tdb) tdb = made.tdb;
    const opened = (store = made.store);
    await sql`insert into integrations (id, name, entity_id, status, delivery_target, created_at, updated_at) values ('int_q', 'q', 'e', 'ENABLED', '', ${T}, ${T})`.execute(opened.db);
    return { repo: new JobRepository(opened.db, opened.dialect, opened.workerDb), opened };
  }

  it("stores a group once per idempotency key, claims in arrival order, and records outcomes only under the lease", async () => {
    const { repo, opened } = await openRepo();
    const ids = [0, 1, 2, 3].map((i) => newJobId(T + i));
    expect(new Set(ids).size).toBe(4);
    expect([...ids].sort()).toEqual(ids);

    const results = await repo.insertGroup([job(ids[0]!, "d-1"), job(ids[1]!, "d-2"), job(ids[2]!, "d-1"), job(ids[3]!, null)]);
    expect(results).toEqual([
      { id: ids[0], duplicate: false, state: "queued", receivedAt: T },
      { id: ids[1], duplicate: false, state: "queued", receivedAt: T },
      { id: ids[0], duplicate: true, state: "queued", receivedAt: T },
      { id: ids[3], duplicate: false, state: "queued", receivedAt: T },
    ]);
    expect(await repo.insertGroup([job(newJobId(T), "d-2")])).toEqual([{ id: ids[1], duplicate: true, state: "queued", receivedAt: T }]);

    const claimed = await repo.claim("worker-a", T, 60_000, 10, ["q"]);
    expect(claimed.map((j) => j.id)).toEqual([ids[0], ids[1], ids[3]]);
    expect((await repo.payloads([ids[1]!])).get(ids[1]!)).toEqual({ headers: "{}", body: Buffer.from(ids[1]!).toString("base64") });

    const fault = jobError("infra", "http_503", "consumer answered 503", T + 5);
    const held = await repo.finishMany([
      { id: ids[0]!, owner: "worker-a", state: "succeeded", runAt: T, finishedAt: T + 5, updatedAt: T + 5, lastError: null },
      { id: ids[1]!, owner: "worker-b", state: "succeeded", runAt: T, finishedAt: T + 5, updatedAt: T + 5, lastError: null },
      { id: ids[3]!, owner: "worker-a", state: "faulted", runAt: T + 9_000, finishedAt: null, updatedAt: T + 5, lastError: fault },
    ]);
    expect(held).toEqual([true, false, true]);
    expect(await repo.get(ids[0]!)).toMatchObject({ state: "succeeded", finished_at: T + 5, lease_owner: null });
    expect(await repo.get(ids[1]!)).toMatchObject({ state: "running", lease_owner: "worker-a" });
    expect(await repo.get(ids[3]!)).toMatchObject({ state: "faulted", run_at: T + 9_000, last_error: serializeJobLastError(fault), attempts: 1 });
    // A faulted job is claimable again at its run_at, not before.
    expect(await repo.claim("worker-a", T + 8_999, 60_000, 10, ["q"])).toEqual([]);
    expect((await repo.claim("worker-a", T + 9_000, 60_000, 10, ["q"])).map((j) => [j.id, j.state, j.attempts])).toEqual([[ids[3], "running", 2]]);

    if (opened.dialect === "sqlite") {
      // Claims and outcomes ran with synchronous=NORMAL; the connection must be back to FULL (2) for the next accept.
      expect((await sql<{ synchronous: number }>`pragma synchronous`.execute(opened.db)).rows[0]?.synchronous).toBe(2);
    }
  });

  it("frees an idempotency key only from a job received before the cutoff, once", async () => {
    const { repo } = await openRepo();
    const first = newJobId(T);
    await repo.insertGroup([job(first, "sha256:ab")]);
    // Not before the cutoff (received exactly at it): kept.
    expect(await repo.retireIdempotencyKey("int_q", "sha256:ab", T)).toBe(false);
    expect(await repo.retireIdempotencyKey("int_q", "sha256:ab", T + 1)).toBe(true);
    expect((await repo.get(first))?.idempotency_key).toBe(`sha256:ab:${first}`);
    const second = newJobId(T + 2);
    expect(await repo.insertGroup([{ ...job(second, "sha256:ab"), received_at: T + 2 }])).toEqual([{ id: second, duplicate: false, state: "queued", receivedAt: T + 2 }]);
    // The new holder was received after the cutoff: a second caller racing for the same key frees nothing.
    expect(await repo.retireIdempotencyKey("int_q", "sha256:ab", T + 1)).toBe(false);
  });

  it("claims promptly from a queue that filled up after the worker analyzed it empty (a plan built for an empty table)", async () => {
    const { repo, opened } = await openRepo();
    // What a worker does when it starts on an empty queue: analyze, then idle polls. Each poll is the prepared claim;
    // after five runs on a session PostgreSQL keeps a generic plan — built from the statistics of the empty table.
    // Four claims at a time, so that every session of the worker's pool gets there.
    await repo.analyze();
    for (let i = 0; i < 8; i++) expect((await Promise.all([0, 1, 2, 3].map(() => repo.claim("worker-a", T, 60_000, 64, ["q"])))).flat()).toEqual([]);
    // A burst arrives: 20,000 queued jobs, the statistics still say the table is empty.
    const n = 20_000;
    await sql`with recursive g (k) as (select 1 union all select k + 1 from g where k < ${n})
      insert into jobs (id, integration_id, state, attempts, idempotency_key, run_at, probe, received_at, created_at, updated_at)
      select 'job-' || (100000000 + k), 'int_q', 'queued', 0, null, ${sql.lit(T)} + k, 0, ${sql.lit(T)} + k, ${sql.lit(T)} + k, ${sql.lit(T)} + k from g`.execute(opened.db);
    // Before the fix this one claim did not end within 10 minutes (PostgreSQL re-ran the LIMIT subquery for every row).
    const claims = [0, 1, 2, 3].map((w) => repo.claim(`worker-${w}`, T + n, 60_000, 64, ["q"]));
    const late = new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 20_000).unref());
    const got = await Promise.race([Promise.all(claims), late]);
    expect(got, "claims still running after 20 s").not.toBe("late");
    const ids = (got as Array<Array<{ id: string }>>).flatMap((c) => c.map((j) => j.id)).sort();
    // 4 claims × 64, each job once, the earliest 256 in arrival order.
    expect(ids).toEqual(Array.from({ length: 256 }, (_, k) => `job-${100000000 + k + 1}`));
  });

  describe.runIf(process.env.GK_TEST_BACKEND === "postgres")("accept groups as prepared statements (PostgreSQL)", () => {
    const queued = { state: "queued" as const, finishedAtMs: null, lastError: null };
    const delivery = (id: string) => ({ job: job(id, null), recordFor: { ENABLED: queued, DISABLED: queued, ERROR: queued } });
    /** Accept groups one after another (so the pool hands out the same idle session), then read that session's prepared statements. */
    async function preparedAfterAccepts(url: string): Promise<string[]> {
      const { repo, opened } = await openRepo(url);
      for (let i = 0; i < 3; i++) {
        const results = await repo.acceptGroup([delivery(newJobId(T + 2 * i)), delivery(newJobId(T + 2 * i + 1))]);
        expect(results.map((r) => "state" in r && r.state)).toEqual(["queued", "queued"]);
      }
      expect(await repo.countByState()).toMatchObject({ queued: 6 });
      const rows = await sql<{ name: string }>`select name from pg_prepared_statements where statement like '/* gk:prepared */%'`.execute(opened.db);
      return rows.rows.map((r) => r.name);
    }

    it("an accept group is a named prepared statement, one per group size", async () => {
      tdb = await testDatabase();
      const names = await preparedAfterAccepts(tdb.url);
      expect(names).toHaveLength(1);
      expect(names[0]).toMatch(/^gk_[0-9a-f]{32}$/);
    });

    it("preparedStatements=false in the URL (a PgBouncer in transaction mode) sends it unnamed; another value is refused", async () => {
      tdb = await testDatabase();
      expect(await preparedAfterAccepts(`${tdb.url}&preparedStatements=false`)).toEqual([]);
      await store?.close();
      store = undefined;
      await expect(openStore(`${tdb.url}&preparedStatements=yes`)).rejects.toThrow(/preparedStatements must be true or false, got "yes"/);
    });
  });
});
