/**
 * The floors of the jobs benchmark (bench/jobsThroughput.ts), for reference:
 * what grantkeeper's write pattern reaches with no overhead above the driver —
 * hand-written durable queues on better-sqlite3 (on the main thread, and with
 * the connection on a worker thread) and on pg directly, with grantkeeper's
 * tables and writes and none of its rules.
 */
import SQLite from "better-sqlite3";
import pg from "pg";
import { removeSqlite } from "./common.js";
import { COLUMNS, endToEndRounds, freshSqlite, rowValues, type Rate } from "./jobsBaselines.js";

/**
 * The floor's adds, gathered into groups (group commit): what arrives while
 * the event loop is busy is handed to `flush` as one group on its next turn,
 * with each add's resolve (call it once the group is committed).
 */
function groupedAdds(integrations: number, flush: (rows: Array<{ job: unknown[]; payload: unknown[] }>, resolves: Array<() => void>) => void): (i: number) => Promise<void> {
  let pending: Array<{ v: { job: unknown[]; payload: unknown[] }; done: () => void }> = [];
  let scheduled = false;
  return (i) =>
    new Promise<void>((done) => {
      pending.push({ v: rowValues(i, integrations), done });
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        const group = pending;
        pending = [];
        flush(
          group.map((g) => g.v),
          group.map((g) => g.done),
        );
      });
    });
}

/**
 * The SQLite floor's writes and reads, on one better-sqlite3 connection (the
 * same code runs on the main thread, {@link rawSqliteQueueEndToEnd}, and on a
 * worker thread, {@link rawSqliteWorkerQueueEndToEnd}): a group of adds is one
 * transaction at `synchronous=FULL` (one multi-row INSERT of jobs, one of
 * payloads, as ingress writes them); a claim takes up to 64 queued jobs
 * (`UPDATE … RETURNING` at `synchronous=NORMAL`, as grantkeeper's worker
 * writes) and reads their payloads; a finish records a batch's outcomes in one
 * UPDATE at `synchronous=NORMAL`.
 */
export interface SqliteFloorQueue {
  /** @param synchronous the commit's `synchronous` setting @defaultValue "full" */
  writeGroup(group: Array<{ job: unknown[]; payload: unknown[] }>, synchronous?: "full" | "normal"): void;
  /** Up to 64 claimed job ids (their payloads read); empty when none is queued. */
  claim(): string[];
  finish(ids: string[]): void;
  close(): void;
}

/**
 * Open {@link SqliteFloorQueue} on a new file (any earlier one removed).
 * @param ddl the CREATE statements of grantkeeper's `jobs` and `job_payloads` tables and their indexes
 */
export function openSqliteFloorQueue(file: string, ddl: string[]): SqliteFloorQueue {
  const db = freshSqlite(file, ddl);
  // Statements by the number of rows they carry, prepared once each.
  const statements = new Map<string, SQLite.Statement>();
  const prepared = (kind: string, k: number, text: (k: number) => string) => {
    let s = statements.get(`${kind}/${k}`);
    if (!s) statements.set(`${kind}/${k}`, (s = db.prepare(text(k))));
    return s;
  };
  const row = `(${COLUMNS.map(() => "?").join(", ")})`;
  const marks = (k: number) => Array(k).fill("?").join(", ");
  const writeGroup = db.transaction((group: Array<{ job: unknown[]; payload: unknown[] }>) => {
    prepared("jobs", group.length, (k) => `INSERT INTO jobs (${COLUMNS.join(", ")}) VALUES ${Array(k).fill(row).join(", ")} ON CONFLICT (integration_id, idempotency_key) DO NOTHING RETURNING id, state`).all(...group.flatMap((g) => g.job));
    prepared("payloads", group.length, (k) => `INSERT INTO job_payloads (job_id, headers, body) VALUES ${Array(k).fill("(?, ?, ?)").join(", ")}`).run(...group.flatMap((g) => g.payload));
  });
  const claim = db.prepare("UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? WHERE seq IN (SELECT seq FROM jobs WHERE state = 'queued' AND run_at <= ? ORDER BY run_at, seq LIMIT 64) RETURNING *");
  /** `write` committed at `synchronous=NORMAL` (without waiting for the disk); the connection is back at FULL after. */
  const atNormal = <T>(write: () => T): T => {
    db.pragma("synchronous = NORMAL");
    const out = write();
    db.pragma("synchronous = FULL");
    return out;
  };
  return {
    writeGroup(group, synchronous = "full") {
      if (synchronous === "full") writeGroup(group);
      else atNormal(() => writeGroup(group));
    },
    claim() {
      const now = Date.now();
      const jobs = atNormal(() => claim.all("floor", now + 60_000, now, now) as Array<{ id: string }>);
      const ids = jobs.map((j) => j.id);
      if (ids.length > 0) prepared("payloadsOf", ids.length, (k) => `SELECT * FROM job_payloads WHERE job_id IN (${marks(k)})`).all(...ids);
      return ids;
    },
    finish(ids) {
      atNormal(() => prepared("finish", ids.length, (k) => `UPDATE jobs SET state = 'succeeded', lease_owner = NULL, lease_until = NULL, finished_at = ?, updated_at = ? WHERE state = 'running' AND id IN (${marks(k)})`).run(Date.now(), Date.now(), ...ids));
    },
    close: () => {
      db.close();
      removeSqlite(file);
    },
  };
}

/**
 * The floor of a durable queue on SQLite on this machine, for reference: a
 * hand-written queue on better-sqlite3 directly, in this process, with
 * grantkeeper's DDL and none of its rules (no integration status, breaker,
 * handler or lease checks; no query builder): {@link SqliteFloorQueue}.
 * `adders` concurrent loops each await their job's group commit; a worker
 * loop woken by each commit claims a batch, calls a no-op handler for each
 * job and records the batch's outcomes. Jobs go round-robin onto
 * `integrations` integration ids, as in grantkeeper's run. First add → last
 * outcome written, in jobs/s; a warm-up of `warmup` jobs runs first.
 * @param ddl the CREATE statements of grantkeeper's `jobs` and `job_payloads` tables and their indexes
 */
export async function rawSqliteQueueEndToEnd(file: string, ddl: string[], n: number, adders: number, integrations: number, warmup: number, timeoutMs: number): Promise<Rate> {
  const q = openSqliteFloorQueue(file, ddl);
  try {
    const rounds = endToEndRounds(adders, timeoutMs, "raw SQLite queue jobs");
    let working = false;
    let again = false;
    const work = () => {
      if (working) return void (again = true);
      working = true;
      setImmediate(async () => {
        do {
          again = false;
          for (;;) {
            const ids = q.claim();
            if (ids.length === 0) break;
            await Promise.all(ids.map(async () => undefined));
            q.finish(ids);
            rounds.handled(ids.length);
          }
        } while (again);
        working = false;
      });
    };
    const add = groupedAdds(integrations, (rows, resolves) => {
      q.writeGroup(rows);
      for (const resolve of resolves) resolve();
      work();
    });
    await rounds.round(warmup, add);
    const ms = await rounds.round(n, (i) => add(warmup + i));
    return { rows: n, ms, perSec: n / (ms / 1000) };
  } finally {
    q.close();
  }
}

/** Messages between {@link rawSqliteWorkerQueueEndToEnd} and its worker thread (bench/sqliteFloorWorker.ts). */
export type FloorMessage =
  | { op: "accept"; group: number; rows: Array<{ job: unknown[]; payload: unknown[] }> }
  | { op: "accepted"; group: number }
  | { op: "jobs"; ids: string[] }
  | { op: "finished"; ids: string[] };

/**
 * The SQLite floor with its connection on a worker thread and each commit's
 * fsync off that thread — the levers issue 16 names for SQLite ("SQLite on a
 * worker thread"; the accept COMMIT's fsync was a third of a profiled run),
 * measured on the floor before building them into grantkeeper: the same
 * {@link SqliteFloorQueue} and the same rounds as {@link rawSqliteQueueEndToEnd},
 * but every statement runs on one worker thread (bench/sqliteFloorWorker.ts)
 * while adds, group assembly and the no-op handlers run on the main thread,
 * and a group commits at `synchronous=NORMAL` and is acknowledged after an
 * fdatasync of the WAL on libuv's thread pool, so the next group, claims and
 * outcomes are written meanwhile — so a job may be claimed and handled before
 * its add is acknowledged (after a power cut such a job's add is retried and
 * it runs again: at-least-once, as any redelivery). A group of adds is one
 * message to the thread; its adds resolve when the thread answers that the
 * group is on disk. The thread claims a batch after
 * each commit and each finished batch (one batch out at a time) and sends
 * its ids to the main thread, which runs the handlers and sends them back.
 */
export async function rawSqliteWorkerQueueEndToEnd(file: string, ddl: string[], n: number, adders: number, integrations: number, warmup: number, timeoutMs: number): Promise<Rate> {
  const { Worker } = await import("node:worker_threads");
  const thread = new Worker(new URL("./sqliteFloorWorker.js", import.meta.url), { workerData: { file, ddl } });
  try {
    const rounds = endToEndRounds(adders, timeoutMs, "raw SQLite queue jobs on a worker thread");
    const waiting = new Map<number, Array<() => void>>();
    let groups = 0;
    thread.on("message", async (m: FloorMessage) => {
      if (m.op === "accepted") {
        for (const done of waiting.get(m.group)!) done();
        waiting.delete(m.group);
      } else if (m.op === "jobs") {
        await Promise.all(m.ids.map(async () => undefined));
        thread.postMessage({ op: "finished", ids: m.ids } satisfies FloorMessage);
        rounds.handled(m.ids.length);
      }
    });
    const add = groupedAdds(integrations, (rows, resolves) => {
      const group = groups++;
      waiting.set(group, resolves);
      thread.postMessage({ op: "accept", group, rows } satisfies FloorMessage);
    });
    await rounds.round(warmup, add);
    const ms = await rounds.round(n, (i) => add(warmup + i));
    return { rows: n, ms, perSec: n / (ms / 1000) };
  } finally {
    await thread.terminate();
    removeSqlite(file);
  }
}

/**
 * The floor of a durable queue on PostgreSQL on this machine, for reference:
 * the shape of {@link rawSqliteQueueEndToEnd} with pg directly on copies of
 * grantkeeper's tables in `schema` (`LIKE … INCLUDING ALL`): one client adds
 * (each group of concurrent adds is one INSERT of jobs and payloads in one
 * statement, committed before its adds resolve), a second client works the
 * queue with `synchronous_commit=off` (claim `FOR UPDATE SKIP LOCKED`, payload
 * read, no-op handlers, one UPDATE of the batch's outcomes). No integration,
 * breaker, handler or lease rules; no query builder.
 */
export async function rawPostgresQueueEndToEnd(connectionString: string, schema: string, n: number, adders: number, integrations: number, warmup: number, timeoutMs: number): Promise<Rate> {
  const adder = new pg.Client({ connectionString, options: `-c search_path=${schema}` });
  const worker = new pg.Client({ connectionString, options: `-c search_path=${schema} -c synchronous_commit=off` });
  await adder.connect();
  await worker.connect();
  try {
    await adder.query("CREATE TABLE jobs_floor (LIKE jobs INCLUDING ALL); CREATE TABLE job_payloads_floor (LIKE job_payloads INCLUDING ALL)");
    const insertText = (k: number) => {
      const w = COLUMNS.length + 3;
      const rows = Array.from({ length: k }, (_, r) => `(${COLUMNS.map((_, c) => `$${r * w + c + 1}`).join(", ")})`);
      const payloads = Array.from({ length: k }, (_, r) => `($${r * w + COLUMNS.length + 1}::text, $${r * w + COLUMNS.length + 2}::text, $${r * w + COLUMNS.length + 3}::text)`);
      return `WITH j AS (INSERT INTO jobs_floor (${COLUMNS.join(", ")}) VALUES ${rows.join(", ")} ON CONFLICT (integration_id, idempotency_key) DO NOTHING RETURNING id, state), p AS (INSERT INTO job_payloads_floor (job_id, headers, body) SELECT v.job_id, v.headers, v.body FROM (VALUES ${payloads.join(", ")}) AS v (job_id, headers, body) JOIN j ON j.id = v.job_id) SELECT id, state FROM j`;
    };
    const claimText = "UPDATE jobs_floor SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 WHERE seq IN (SELECT seq FROM jobs_floor WHERE state = 'queued' AND run_at <= $3 ORDER BY run_at, seq LIMIT 64 FOR UPDATE SKIP LOCKED) RETURNING *";
    let pending: Array<{ v: { job: unknown[]; payload: unknown[] }; done: () => void }> = [];
    let flushing = false;
    const rounds = endToEndRounds(adders, timeoutMs, "raw PostgreSQL queue jobs");
    let working: Promise<void> | undefined;
    let again = false;
    const work = () => {
      if (working) return void (again = true);
      working = workLoop().finally(() => (working = undefined));
    };
    const workLoop = async () => {
      do {
        again = false;
        for (;;) {
          const now = Date.now();
          const jobs = (await worker.query(claimText, ["floor", now + 60_000, now])).rows as Array<{ id: string }>;
          if (jobs.length === 0) break;
          const ids = jobs.map((j) => j.id);
          await worker.query("SELECT * FROM job_payloads_floor WHERE job_id = ANY($1)", [ids]);
          await Promise.all(jobs.map(async () => undefined));
          await worker.query("UPDATE jobs_floor SET state = 'succeeded', lease_owner = NULL, lease_until = NULL, finished_at = $1, updated_at = $1 WHERE state = 'running' AND id = ANY($2)", [Date.now(), ids]);
          rounds.handled(jobs.length);
        }
      } while (again);
    };
    const flush = async () => {
      flushing = true;
      while (pending.length > 0) {
        const group = pending.splice(0, 128);
        await adder.query(insertText(group.length), group.flatMap((g) => [...g.v.job, ...g.v.payload]));
        for (const g of group) g.done();
        work();
      }
      flushing = false;
    };
    const add = (i: number) =>
      new Promise<void>((done) => {
        pending.push({ v: rowValues(i, integrations), done });
        if (!flushing) {
          flushing = true;
          setImmediate(() => void flush());
        }
      });
    await rounds.round(warmup, add);
    const ms = await rounds.round(n, (i) => add(warmup + i));
    await working;
    await adder.query("DROP TABLE jobs_floor; DROP TABLE job_payloads_floor");
    return { rows: n, ms, perSec: n / (ms / 1000) };
  } finally {
    await adder.end();
    await worker.end();
  }
}
