/**
 * Baselines of the jobs benchmark (bench/jobsThroughput.ts), measured in the
 * same run: raw single-row commits on SQLite (better-sqlite3 directly) and on
 * PostgreSQL (one pg client), each writing the row ingress writes into a table
 * with the `jobs` table's own DDL; and BullMQ end to end on the local Redis.
 */
import { randomUUID } from "node:crypto";
import SQLite from "better-sqlite3";
// BullMQ is only this benchmark's baseline: `npm run bench` installs it on demand (prebench) instead of the
// lockfile, because its optional native helper (msgpackr-extract) is not on every registry mirror and would
// break `npm ci` for everyone. Loaded dynamically so the project compiles without it.
const BULLMQ = "bullmq";
const IOREDIS = "ioredis";
/** pg-boss, the second baseline on PostgreSQL: installed on demand like BullMQ (prebench), loaded dynamically. */
const PGBOSS = "pg-boss";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { fmt, progress, removeSqlite, withTimeout } from "./common.js";

/** Size of every job body, bytes. */
export const BODY_BYTES = 1024;

/** A 1 KB JSON body, distinct per `i`. */
export function jobBody(i: number): string {
  const head = `{"i":${i},"pad":"`;
  return `${head}${"x".repeat(BODY_BYTES - head.length - 2)}"}`;
}

/** Run `fn(0..n-1)` with `inFlight` calls at a time (each loop takes the next index). */
export async function pump(n: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/**
 * Timed rounds of an end-to-end run: `round` adds `count` jobs with `adders`
 * concurrent loops and resolves, with its wall time in ms, once `handled`
 * has counted `count` jobs done.
 */
function endToEndRounds(adders: number, timeoutMs: number, what: string) {
  let handled = 0;
  let target = 0;
  let fire: () => void = () => undefined;
  return {
    /** Count `k` more jobs done. */
    handled(k = 1): void {
      handled += k;
      if (handled >= target) fire();
    },
    async round(count: number, add: (i: number) => Promise<unknown>): Promise<number> {
      handled = 0;
      target = count;
      const done = new Promise<void>((r) => (fire = r));
      const t0 = performance.now();
      await pump(count, adders, add);
      await withTimeout(done, timeoutMs, what);
      return performance.now() - t0;
    },
  };
}

/** A rate measurement. */
export interface Rate {
  rows: number;
  ms: number;
  perSec: number;
}

const COLUMNS = ["id", "integration_id", "state", "attempts", "idempotency_key", "run_at", "lease_owner", "lease_until", "last_error", "probe", "received_at", "created_at", "updated_at", "finished_at"];

/**
 * The values of the rows ingress inserts for job `i` (same columns, same encodings): the `jobs` row, then the
 * `job_payloads` row. Ids are time-ordered like ingress's (`newJobId`).
 * @param integrations jobs go round-robin onto this many integrations (index entries land where ingress's would)
 */
function rowValues(i: number, integrations = 1): { job: unknown[]; payload: unknown[] } {
  const now = Date.now();
  const id = `job_${now.toString(16).padStart(12, "0")}${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const body = Buffer.from(jobBody(i)).toString("base64");
  return { job: [id, `int_rawbaseline${i % integrations}`, "queued", 0, null, now, null, null, null, 0, now, now, now, null], payload: [id, JSON.stringify({ "content-type": "application/json" }), body] };
}

/** A new SQLite file as grantkeeper opens one (WAL, `synchronous=FULL`) holding `ddl`; any earlier file is removed. */
function freshSqlite(file: string, ddl: string[]): SQLite.Database {
  removeSqlite(file);
  const db = new SQLite(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  for (const stmt of ddl) db.exec(stmt);
  return db;
}

/**
 * Raw single-job commits/s on SQLite: better-sqlite3 directly, WAL,
 * synchronous=FULL (grantkeeper's setting), one transaction per job holding
 * what ingress writes for it — `INSERT … ON CONFLICT DO NOTHING RETURNING`
 * into `jobs` and the INSERT of its payload — sequential, until `maxRows` or `maxMs`.
 * @param ddl the CREATE statements of grantkeeper's `jobs` and `job_payloads` tables and their indexes
 */
export function rawSqliteCommits(file: string, ddl: string[], maxRows: number, maxMs: number): Rate {
  const db = freshSqlite(file, ddl);
  try {
    const insert = db.prepare(`INSERT INTO jobs (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")}) ON CONFLICT (integration_id, idempotency_key) DO NOTHING RETURNING id, state`);
    const payload = db.prepare("INSERT INTO job_payloads (job_id, headers, body) VALUES (?, ?, ?)");
    const commitOne = db.transaction((v: { job: unknown[]; payload: unknown[] }) => {
      insert.get(...v.job);
      payload.run(...v.payload);
    });
    for (let i = 0; i < 200; i++) commitOne(rowValues(i)); // warm-up
    const t0 = performance.now();
    let rows = 0;
    while (rows < maxRows && performance.now() - t0 < maxMs) commitOne(rowValues(rows++));
    const ms = performance.now() - t0;
    return { rows, ms, perSec: rows / (ms / 1000) };
  } finally {
    db.close();
    removeSqlite(file);
  }
}

/**
 * Raw single-job commits/s on PostgreSQL: one pg client, one autocommit
 * statement per job, one after another, inserting the job and its payload
 * into copies of grantkeeper's tables (`LIKE … INCLUDING ALL`).
 */
export async function rawPostgresCommits(connectionString: string, schema: string, maxRows: number, maxMs: number): Promise<Rate> {
  const client = new pg.Client({ connectionString, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    await client.query("CREATE TABLE jobs_raw (LIKE jobs INCLUDING ALL); CREATE TABLE job_payloads_raw (LIKE job_payloads INCLUDING ALL)");
    const n = COLUMNS.length;
    const text = `WITH j AS (INSERT INTO jobs_raw (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map((_, k) => `$${k + 1}`).join(", ")}) ON CONFLICT (integration_id, idempotency_key) DO NOTHING RETURNING id, state), p AS (INSERT INTO job_payloads_raw (job_id, headers, body) SELECT $${n + 1}::text, $${n + 2}::text, $${n + 3}::text FROM j) SELECT id, state FROM j`;
    const one = (i: number) => {
      const v = rowValues(i);
      return client.query(text, [...v.job, ...v.payload]);
    };
    for (let i = 0; i < 200; i++) await one(i);
    const t0 = performance.now();
    let rows = 0;
    while (rows < maxRows && performance.now() - t0 < maxMs) await one(rows++);
    const ms = performance.now() - t0;
    await client.query("DROP TABLE jobs_raw; DROP TABLE job_payloads_raw");
    return { rows, ms, perSec: rows / (ms / 1000) };
  } finally {
    await client.end();
  }
}

/**
 * Load a baseline's package (installed by prebench, not in the lockfile). When
 * it is not resolvable from here, `BENCH_DEPS_DIR` may name a directory whose
 * `node_modules` holds it (an install kept outside the project's own
 * node_modules).
 * @throws the import error when neither place has it
 */
export async function loadBaseline(name: string): Promise<any> {
  try {
    return await import(name);
  } catch (e) {
    const dir = process.env.BENCH_DEPS_DIR;
    if (!dir) throw e;
    return import(pathToFileURL(createRequire(join(dir, "package.json")).resolve(name)).href);
  }
}

/** How the BullMQ baseline's Redis persists: AOF with an fsync per write (durable like a commit), AOF fsynced every second, or nothing. */
export type RedisPersistence = "always" | "everysec" | "none";

/** Result of the BullMQ end-to-end run. */
export interface BullResult extends Rate {
  completed: number;
  redis: string;
}

/**
 * BullMQ on the local Redis, Queue and Worker in this process: `n` 1 KB jobs
 * added by `adders` concurrent loops, a Worker with `concurrency`, a no-op
 * processor that counts; first add → last processed. A warm-up of `warmup`
 * jobs runs first.
 */
export async function bullmqEndToEnd(n: number, adders: number, concurrency: number, warmup: number, timeoutMs: number, persistence: RedisPersistence): Promise<BullResult> {
  const aof = persistence !== "none";
  const { Queue, Worker } = await loadBaseline(BULLMQ);
  const { Redis } = await loadBaseline(IOREDIS);
  const connection = { host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null };
  const admin = new Redis(connection);
  const name = `grantkeeper-bench-${process.pid}`;
  const queue = new Queue(name, { connection });
  const rounds = endToEndRounds(adders, timeoutMs, "BullMQ jobs");
  const worker = new Worker(
    name,
    async () => rounds.handled(),
    { connection, concurrency },
  );
  const round = (count: number, offset: number) => rounds.round(count, (i) => queue.add("job", { body: jobBody(offset + i) }));
  // The baseline (issue 16's decision) runs Redis with AOF and an fsync per write (`appendfsync always`: each add is
  // on disk before it resolves, like an accept); references run AOF fsynced every second, and no persistence. The
  // machine's own settings are put back afterwards.
  const before = { appendonly: String(((await admin.config("GET", "appendonly")) as string[])[1]), appendfsync: String(((await admin.config("GET", "appendfsync")) as string[])[1]) };
  try {
    await admin.config("SET", "appendfsync", aof ? persistence : "everysec");
    await admin.config("SET", "appendonly", aof ? "yes" : "no");
    if (aof) await waitForAofRewrite(admin);
    await worker.waitUntilReady();
    const info = await admin.info("server");
    const appendonly = await admin.config("GET", "appendonly");
    const save = await admin.config("GET", "save");
    const fsync = await admin.config("GET", "appendfsync");
    const redis = `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? "?"}, appendonly ${String((appendonly as string[])[1])}${aof ? `, appendfsync ${String((fsync as string[])[1])}` : ""}, save "${String((save as string[])[1])}"`;
    await round(warmup, 0);
    progress(`jobs: BullMQ warm-up of ${fmt(warmup)} done; ${redis}`);
    const ms = await round(n, warmup);
    const counts = await queue.getJobCounts("completed", "failed", "waiting", "active");
    if (counts.completed !== warmup + n) progress(`jobs: BullMQ counts ${JSON.stringify(counts)}`);
    return { rows: n, ms, perSec: n / (ms / 1000), completed: counts.completed ?? 0, redis };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await admin.config("SET", "appendonly", before.appendonly).catch(() => undefined);
    await admin.config("SET", "appendfsync", before.appendfsync).catch(() => undefined);
    await admin.quit();
  }
}

/** Turning AOF on starts a background rewrite; wait (bounded) until it is done so it does not overlap the measurement. */
async function waitForAofRewrite(admin: { info(section: string): Promise<string> }): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (/aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(await admin.info("persistence"))) {
    if (Date.now() > deadline) throw new Error("Redis AOF rewrite did not finish in 30 s");
    await new Promise((r) => setTimeout(r, 50));
  }
}

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

/** Result of the pg-boss end-to-end run. */
export interface PgBossResult extends Rate {
  /** The pg-boss version that ran. */
  version: string;
}

/**
 * pg-boss (10.4) on the local PostgreSQL, for reference as a second durable
 * queue on that engine: its own schema `schema` (created by pg-boss, dropped
 * after), `n` 1 KB jobs sent by `adders` concurrent loops (`boss.send`, each
 * committed before it resolves), `workers` workers of `batchSize` jobs each
 * with a no-op handler that counts (pg-boss polls: its shortest interval is
 * 0.5 s, used here); first send → last handled. A warm-up of `warmup` jobs
 * runs first.
 */
export async function pgBossEndToEnd(connectionString: string, schema: string, n: number, adders: number, workers: number, batchSize: number, warmup: number, timeoutMs: number): Promise<PgBossResult> {
  const mod = await loadBaseline(PGBOSS);
  const PgBoss = mod.default ?? mod;
  const boss = new PgBoss({ connectionString, schema, max: adders + workers, supervise: false, schedule: false, migrate: true });
  boss.on("error", (e: Error) => progress(`jobs: pg-boss error: ${e.message}`));
  const name = "grantkeeper-bench";
  const rounds = endToEndRounds(adders, timeoutMs, "pg-boss jobs");
  await boss.start();
  try {
    await boss.createQueue(name);
    for (let w = 0; w < workers; w++) {
      await boss.work(name, { batchSize, pollingIntervalSeconds: 0.5 }, async (jobs: unknown[]) => rounds.handled(jobs.length));
    }
    const round = (count: number, offset: number) => rounds.round(count, (i) => boss.send(name, { body: jobBody(offset + i) }));
    await round(warmup, 0);
    const ms = await round(n, warmup);
    const version = String(createRequireVersion());
    return { rows: n, ms, perSec: n / (ms / 1000), version };
  } finally {
    await boss.stop({ graceful: false, wait: true, timeout: 5_000 }).catch(() => undefined);
    const admin = new pg.Client({ connectionString });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => admin.end());
  }
}

/** The version of the pg-boss that ran (its package.json). */
function createRequireVersion(): string {
  for (const from of [import.meta.url, process.env.BENCH_DEPS_DIR ? pathToFileURL(join(process.env.BENCH_DEPS_DIR, "package.json")).href : undefined]) {
    if (!from) continue;
    try {
      return (createRequire(from)(`${PGBOSS}/package.json`) as { version: string }).version;
    } catch {
      // not installed there
    }
  }
  return "?";
}
