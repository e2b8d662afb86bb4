/**
 * Baselines of the jobs benchmark (bench/jobsThroughput.ts), measured in the
 * same run: raw single-row commits on SQLite (better-sqlite3 directly) and on
 * PostgreSQL (one pg client), each writing the row ingress writes into a table
 * with the `jobs` table's own DDL; BullMQ end to end on the local Redis; and
 * pg-boss end to end on PostgreSQL. The floors (hand-written queues) are in
 * bench/jobsFloors.ts.
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
export function endToEndRounds(adders: number, timeoutMs: number, what: string) {
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

/** The `jobs` columns ingress writes, in {@link rowValues}' order. */
export const COLUMNS = ["id", "integration_id", "state", "attempts", "idempotency_key", "run_at", "lease_owner", "lease_until", "last_error", "probe", "received_at", "created_at", "updated_at", "finished_at"];

/**
 * The values of the rows ingress inserts for job `i` (same columns, same encodings): the `jobs` row, then the
 * `job_payloads` row. Ids are time-ordered like ingress's (`newJobId`).
 * @param integrations jobs go round-robin onto this many integrations (index entries land where ingress's would)
 */
export function rowValues(i: number, integrations = 1): { job: unknown[]; payload: unknown[] } {
  const now = Date.now();
  const id = `job_${now.toString(16).padStart(12, "0")}${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const body = Buffer.from(jobBody(i)).toString("base64");
  return { job: [id, `int_rawbaseline${i % integrations}`, "queued", 0, null, now, null, null, null, 0, now, now, now, null], payload: [id, JSON.stringify({ "content-type": "application/json" }), body] };
}

/** A new SQLite file as grantkeeper opens one (WAL, `synchronous=FULL`) holding `ddl`; any earlier file is removed. */
export function freshSqlite(file: string, ddl: string[]): SQLite.Database {
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
