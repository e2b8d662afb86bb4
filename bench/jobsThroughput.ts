/**
 * Benchmark "durable job queue throughput", SQLite and PostgreSQL in one run:
 * (a) durable accepts/s of `gk.ingress.accept` vs raw single-row SQLite
 * commits; (b) accept → delivered jobs/s with in-process handlers vs BullMQ
 * on the local Redis; (c) replay of parked jobs after a re-import. Baselines
 * are in bench/jobsBaselines.ts.
 */
import { join } from "node:path";
import { sql } from "kysely";
import { createGrantkeeper, type Grantkeeper, type GrantkeeperOptions } from "../src/grantkeeper.js";
import type { JobState } from "../src/domain/states.js";
import { benchKey, benchProvider, dropSchema, fmt, PG_BASE, pgCheckpoint, progress, quantile, ratio, removeSqlite, scratchDir, table, withTimeout, type BenchOptions, type BenchReport } from "./common.js";
import { bullmqEndToEnd, jobBody, pgBossEndToEnd, pump, rawPostgresCommits, rawSqliteCommits, type BullResult, type PgBossResult, type Rate } from "./jobsBaselines.js";
import { rawPostgresQueueEndToEnd, rawSqliteQueueEndToEnd, rawSqliteWorkerQueueEndToEnd } from "./jobsFloors.js";
import { benchGrant, startInvalidGrantServer } from "./propagation.js";
import { internalsOf } from "../src/internals.js";

const ACCEPTS_IN_FLIGHT = 64;
const ADDERS = 16;
const CONCURRENCY = 16;
const INTEGRATIONS = 16;
const POLL_MS = 5;
/** pg-boss baseline: workers × jobs fetched per poll (issue 16's measurement). */
const PGBOSS_WORKERS = 4;
const PGBOSS_BATCH = 100;
const WAIT_MS = 300_000;
/** Longest wait for a replay to finish; a slower one is reported with the part delivered by then. */
const REPLAY_CAP_MS = 90_000;
const headers = new Headers({ "content-type": "application/json" });
const encoder = new TextEncoder();
const body = (i: number) => encoder.encode(jobBody(i));

/** A store to run one phase on: SQLite file or PostgreSQL schema, created fresh and removed after. */
interface Engine {
  label: "SQLite" | "PostgreSQL";
  open(phase: string, extra?: Partial<GrantkeeperOptions>): Promise<Grantkeeper>;
  cleanup(phase: string): Promise<void>;
}

export const sqliteEngine: Engine = {
  label: "SQLite",
  async open(phase, extra) {
    removeSqlite(join(scratchDir(), `jobs-${phase}.db`));
    return createGrantkeeper({ databaseUrl: `sqlite:${join(scratchDir(), `jobs-${phase}.db`)}`, encryptionKey: benchKey(), ...extra });
  },
  async cleanup(phase) {
    removeSqlite(join(scratchDir(), `jobs-${phase}.db`));
  },
};

export const postgresEngine: Engine = {
  label: "PostgreSQL",
  async open(phase, extra) {
    await dropSchema(`bench_jobs_${phase}`);
    return createGrantkeeper({ databaseUrl: `${PG_BASE}?schema=bench_jobs_${phase}`, encryptionKey: benchKey(), ...extra });
  },
  cleanup: (phase) => dropSchema(`bench_jobs_${phase}`),
};

const jobOptions = { concurrency: CONCURRENCY, pollMs: POLL_MS };

async function jobCount(gk: Grantkeeper, state: JobState): Promise<number> {
  return Number((await internalsOf(gk).store.db.selectFrom("jobs").select((eb) => eb.fn.countAll<number>().as("n")).where("state", "=", state).executeTakeFirstOrThrow()).n);
}

/** Wait (bounded) until `state` holds `n` jobs: the last outcome write follows the last handler call. */
async function waitForCount(gk: Grantkeeper, state: JobState, n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await jobCount(gk, state)) !== n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} ${state} jobs, have ${await jobCount(gk, state)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A handler that counts calls and resolves when the count reaches the target. */
function counter() {
  const c = { calls: 0, target: Infinity, fire: () => undefined as void };
  return {
    calls: () => c.calls,
    handler: async () => {
      if (++c.calls === c.target) c.fire();
    },
    until(target: number): Promise<void> {
      c.calls = 0;
      c.target = target;
      return new Promise<void>((r) => (c.fire = r));
    },
  };
}

const pct = (xs: Float64Array, p: number) => quantile([...xs].sort((a, b) => a - b), p);

interface AcceptResult extends Rate {
  meanGroup: number;
  p50: number;
  p99: number;
}

/** (a) `n` concurrent accepts, {@link ACCEPTS_IN_FLIGHT} in flight, worker not running; returns the `jobs` DDL on SQLite. */
async function acceptPhase(engine: Engine, n: number): Promise<{ result: AcceptResult; ddl: string[]; raw?: Rate }> {
  const gk = await engine.open("accept");
  try {
    const { integration } = await gk.integrations.create({ name: "bench-accept", entityId: "bench", connectionIds: [], webhook: { signing: "none" } });
    await pump(1_000, ACCEPTS_IN_FLIGHT, (i) => gk.ingress.accept(integration.id, body(i), headers));
    const s0 = { ...gk.ingress.stats };
    const lat = new Float64Array(n);
    const t0 = performance.now();
    await withTimeout(
      pump(n, ACCEPTS_IN_FLIGHT, async (i) => {
        const t = performance.now();
        const r = await gk.ingress.accept(integration.id, body(1_000 + i), headers);
        lat[i] = performance.now() - t;
        if (r.disposition !== "queued") throw new Error(`accept answered ${r.disposition}`);
      }),
      WAIT_MS,
      "accepts",
    );
    const ms = performance.now() - t0;
    const groups = gk.ingress.stats.groups - s0.groups;
    const stored = await jobCount(gk, "queued");
    if (stored !== n + 1_000) throw new Error(`${stored} jobs stored, expected ${n + 1_000}`);
    const result = { rows: n, ms, perSec: n / (ms / 1000), meanGroup: (gk.ingress.stats.items - s0.items) / groups, p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
    const ddl = engine.label === "SQLite" ? (await sql<{ sql: string }>`select sql from sqlite_master where tbl_name in ('jobs', 'job_payloads') and sql is not null`.execute(internalsOf(gk).store.db)).rows.map((r) => r.sql) : [];
    // On PostgreSQL the raw baseline writes into a copy of this schema's jobs table.
    const raw = engine.label === "PostgreSQL" ? await rawPostgresCommits(PG_BASE, "bench_jobs_accept", n, 15_000) : undefined;
    return { result, ddl, ...(raw ? { raw } : {}) };
  } finally {
    await gk.close();
    await engine.cleanup("accept");
  }
}

/** (b) accept → delivered: {@link ADDERS} concurrent accepts onto {@link INTEGRATIONS} integrations, handlers in process, worker started. */
export async function endToEndPhase(engine: Engine, n: number, warmup: number): Promise<Rate> {
  const gk = await engine.open("e2e", { jobs: jobOptions });
  try {
    const ids: string[] = [];
    for (let k = 0; k < INTEGRATIONS; k++) ids.push((await gk.integrations.create({ name: "bench-e2e", entityId: `e2e-${k}`, connectionIds: [], webhook: { signing: "none" } })).integration.id);
    const count = counter();
    gk.handle("bench-e2e", count.handler);
    await gk.start();
    const round = async (m: number, offset: number) => {
      const done = count.until(m);
      const t0 = performance.now();
      await pump(m, ADDERS, (i) => gk.ingress.accept(ids[(offset + i) % INTEGRATIONS]!, body(offset + i), headers));
      await withTimeout(done, WAIT_MS, `${engine.label} deliveries`);
      return performance.now() - t0;
    };
    await round(warmup, 0);
    const s0 = { ...gk.worker.stats };
    const ms = await round(n, warmup);
    await waitForCount(gk, "succeeded", warmup + n);
    const s1 = gk.worker.stats;
    progress(`jobs: (b) ${engine.label}: ${fmt(s1.claimed - s0.claimed)} jobs taken, ${fmt(s1.handedOver - s0.handedOver)} of them claimed at accept, ${fmt(s1.payloadsFromMemory - s0.payloadsFromMemory)} claimed with their payload from memory; ${fmt(s1.passes - s0.passes)} worker passes`);
    return { rows: n, ms, perSec: n / (ms / 1000) };
  } finally {
    await gk.close();
    await engine.cleanup("e2e");
  }
}

interface ReplayResult {
  parkMs: number;
  requeueMs: number;
  /** Re-import start → last delivery, or → the cap when not finished. */
  totalMs: number;
  delivered: number;
  finished: boolean;
}

/** (c) {@link INTEGRATIONS} integrations on one connection; invalid_grant → ERROR; `n` jobs parked; re-import → re-queued and delivered. */
async function replayPhase(engine: Engine, n: number, origin: string): Promise<ReplayResult> {
  const gk = await engine.open("replay", { jobs: jobOptions, providers: { bench: benchProvider(origin) }, refresh: { minIntervalMs: 0 } });
  try {
    const grant = benchGrant("replay-user");
    const connectionId = (await gk.connections.storeGrant(grant)).connection.id;
    const ids: string[] = [];
    for (let k = 0; k < INTEGRATIONS; k++) ids.push((await gk.integrations.create({ name: "bench-replay", entityId: "replay-user", connectionIds: [connectionId], webhook: { signing: "none" } })).integration.id);
    const count = counter();
    gk.handle("bench-replay", count.handler);
    await gk.start();
    if ((await gk.connections.refresh(connectionId)).state !== "error") throw new Error("invalid_grant did not kill the connection");
    const t0 = performance.now();
    await withTimeout(
      pump(n, ACCEPTS_IN_FLIGHT, async (i) => {
        const r = await gk.ingress.accept(ids[i % INTEGRATIONS]!, body(i), headers);
        if (r.disposition !== "parked") throw new Error(`accept answered ${r.disposition}, expected parked`);
      }),
      WAIT_MS,
      "parking",
    );
    const parkMs = performance.now() - t0;
    if ((await jobCount(gk, "parked")) !== n) throw new Error("not every job is parked");
    progress(`jobs: (c) ${engine.label}: ${fmt(n)} jobs parked in ${fmt(parkMs)} ms; re-importing the grant`);
    const done = count.until(n);
    const t1 = performance.now();
    await gk.connections.storeGrant(grant);
    const requeueMs = performance.now() - t1;
    const finished = await withTimeout(done, REPLAY_CAP_MS, `${engine.label} replay`).then(
      () => true,
      () => false,
    );
    const totalMs = performance.now() - t1;
    const delivered = count.calls();
    if (finished) await waitForCount(gk, "succeeded", n);
    else {
      progress(`jobs: (c) ${engine.label}: replay not finished after ${fmt(REPLAY_CAP_MS / 1000)} s: ${fmt(delivered)} of ${fmt(n)} delivered; parking the rest`);
      // gk.stop() waits until the queue is empty (the worker loop does not look at stop()), so park what is left first.
      await withTimeout(gk.connections.refresh(connectionId), 60_000, "re-invalidation");
    }
    return { parkMs, requeueMs, totalMs, delivered, finished };
  } finally {
    await gk.close();
    await engine.cleanup("replay");
  }
}

/** Run the benchmark and render its section of docs/benchmarks.md. */
export async function runJobsThroughput(opts: BenchOptions): Promise<BenchReport> {
  const nAccept = opts.quick ? 2_000 : 20_000;
  const nE2e = opts.quick ? 2_000 : 20_000;
  const warmup = opts.quick ? 200 : 1_000;
  const nReplay = opts.quick ? 10_000 : 100_000;
  const engines = [sqliteEngine, postgresEngine];
  // (a)
  const accept = new Map<string, AcceptResult>();
  let rawSqlite: Rate | undefined;
  let rawPg: Rate | undefined;
  let sqliteDdl: string[] = [];
  for (const engine of engines) {
    progress(`jobs: (a) ${engine.label}: ${fmt(nAccept)} accepts, ${ACCEPTS_IN_FLIGHT} in flight`);
    const { result, ddl, raw } = await acceptPhase(engine, nAccept);
    accept.set(engine.label, result);
    progress(`jobs: (a) ${engine.label}: ${fmt(result.perSec)} accepts/s, mean group ${fmt(result.meanGroup, 1)}, p50 ${fmt(result.p50, 1)} ms, p99 ${fmt(result.p99, 1)} ms`);
    if (raw) rawPg = raw;
    if (engine.label === "SQLite") {
      sqliteDdl = ddl;
      rawSqlite = rawSqliteCommits(join(scratchDir(), "jobs-raw.db"), ddl, nAccept, 15_000);
      progress(`jobs: (a) baseline: raw SQLite ${fmt(rawSqlite.perSec)} commits/s (${fmt(rawSqlite.rows)} rows)`);
    }
  }
  if (rawPg) progress(`jobs: (a) reference: raw PostgreSQL ${fmt(rawPg.perSec)} commits/s, one client`);
  // (b) grantkeeper on each engine, BullMQ (AOF always) and the floors, in interleaved rounds: this machine's
  // speed drifts within a minute, and a ratio of two runs a minute apart measured the drift as much as the queues.
  const rounds = opts.quick ? 1 : E2E_ROUNDS;
  const runs = { e2e: new Map<string, Rate[]>(), floor: new Map<string, Rate[]>(), floorThread: [] as Rate[], bull: [] as BullResult[] };
  const push = <T>(m: Map<string, T[]>, k: string, v: T) => m.set(k, [...(m.get(k) ?? []), v]);
  for (let round = 1; round <= rounds; round++) {
    for (const engine of engines) {
      progress(`jobs: (b) round ${round}/${rounds}: ${engine.label}: ${fmt(nE2e)} jobs accept → handler, ${ADDERS} adders, concurrency ${CONCURRENCY}`);
      await pgCheckpoint();
      const r = await endToEndPhase(engine, nE2e, warmup);
      push(runs.e2e, engine.label, r);
      progress(`jobs: (b) ${engine.label}: ${fmt(r.perSec)} jobs/s (${fmt(r.ms)} ms)`);
    }
    progress(`jobs: (b) round ${round}/${rounds}: baseline: BullMQ, Redis AOF appendfsync always, ${fmt(nE2e)} jobs`);
    await pgCheckpoint();
    const bull = await bullmqEndToEnd(nE2e, ADDERS, CONCURRENCY, warmup, WAIT_MS, "always");
    runs.bull.push(bull);
    progress(`jobs: (b) BullMQ (AOF always): ${fmt(bull.perSec)} jobs/s (${fmt(bull.ms)} ms)`);
    progress(`jobs: (b) round ${round}/${rounds}: reference: hand-written durable queue floor, SQLite, ${fmt(nE2e)} jobs`);
    await pgCheckpoint();
    push(runs.floor, "SQLite", await rawSqliteQueueEndToEnd(join(scratchDir(), "jobs-floor.db"), sqliteDdl, nE2e, ADDERS, INTEGRATIONS, warmup, WAIT_MS));
    progress(`jobs: (b) floor, SQLite: ${fmt(runs.floor.get("SQLite")!.at(-1)!.perSec)} jobs/s`);
    progress(`jobs: (b) round ${round}/${rounds}: reference: the SQLite floor on a worker thread, fsync off that thread, ${fmt(nE2e)} jobs`);
    await pgCheckpoint();
    runs.floorThread.push(await rawSqliteWorkerQueueEndToEnd(join(scratchDir(), "jobs-floor-thread.db"), sqliteDdl, nE2e, ADDERS, INTEGRATIONS, warmup, WAIT_MS));
    progress(`jobs: (b) floor, SQLite on a worker thread: ${fmt(runs.floorThread.at(-1)!.perSec)} jobs/s`);
    progress(`jobs: (b) round ${round}/${rounds}: reference: hand-written durable queue floor, PostgreSQL, ${fmt(nE2e)} jobs`);
    // A fresh schema holding grantkeeper's tables, for the floor's copies of them.
    await (await postgresEngine.open("floor")).close();
    await pgCheckpoint();
    try {
      push(runs.floor, "PostgreSQL", await rawPostgresQueueEndToEnd(PG_BASE, "bench_jobs_floor", nE2e, ADDERS, INTEGRATIONS, warmup, WAIT_MS));
    } finally {
      await postgresEngine.cleanup("floor");
    }
    progress(`jobs: (b) floor, PostgreSQL: ${fmt(runs.floor.get("PostgreSQL")!.at(-1)!.perSec)} jobs/s`);
  }
  const e2e = new Map([...runs.e2e].map(([k, v]) => [k, medianRun(v)]));
  const floor = new Map([...runs.floor].map(([k, v]) => [k, medianRun(v)]));
  const bull = medianRun(runs.bull);
  const floorThread = medianRun(runs.floorThread);
  progress(`jobs: (b) reference: BullMQ, AOF everysec, ${fmt(nE2e)} jobs`);
  const bullEverysec: BullResult = await bullmqEndToEnd(nE2e, ADDERS, CONCURRENCY, warmup, WAIT_MS, "everysec");
  progress(`jobs: (b) BullMQ (AOF everysec): ${fmt(bullEverysec.perSec)} jobs/s (${fmt(bullEverysec.ms)} ms)`);
  progress(`jobs: (b) reference: BullMQ without persistence, ${fmt(nE2e)} jobs`);
  const bullMemory: BullResult = await bullmqEndToEnd(nE2e, ADDERS, CONCURRENCY, warmup, WAIT_MS, "none");
  progress(`jobs: (b) BullMQ (no persistence): ${fmt(bullMemory.perSec)} jobs/s (${fmt(bullMemory.ms)} ms)`);
  // pg-boss polls every 0.5 s at best: fewer jobs keep its run bounded; its rate is what is compared.
  const nBoss = Math.min(nE2e, opts.quick ? 2_000 : 10_000);
  progress(`jobs: (b) baseline on PostgreSQL: pg-boss, ${fmt(nBoss)} jobs, ${PGBOSS_WORKERS} workers × batchSize ${PGBOSS_BATCH}`);
  await pgCheckpoint();
  const pgBoss: PgBossResult = await pgBossEndToEnd(PG_BASE, "bench_jobs_pgboss", nBoss, ADDERS, PGBOSS_WORKERS, PGBOSS_BATCH, warmup, WAIT_MS);
  progress(`jobs: (b) pg-boss ${pgBoss.version}: ${fmt(pgBoss.perSec)} jobs/s (${fmt(pgBoss.ms)} ms)`);
  // (c)
  const replay = new Map<string, ReplayResult>();
  const server = await startInvalidGrantServer();
  try {
    for (const engine of engines) {
      progress(`jobs: (c) ${engine.label}: replay of ${fmt(nReplay)} parked jobs`);
      const r = await replayPhase(engine, nReplay, server.origin);
      replay.set(engine.label, r);
      progress(`jobs: (c) ${engine.label}: re-queue ${fmt(r.requeueMs)} ms, all delivered ${fmt(r.totalMs)} ms after the re-import started`);
    }
  } finally {
    await server.close();
  }
  return render({ nAccept, nE2e, warmup, nReplay, accept, rawSqlite: rawSqlite!, rawPg: rawPg!, e2e, bull, bullEverysec, bullMemory, pgBoss, floor, floorThread, replay, runs });
}

/** Rounds of the end-to-end comparison (grantkeeper on each engine, BullMQ AOF always, the floors), interleaved. */
const E2E_ROUNDS = 3;

/** The run with the median rate (the middle one of an odd count). */
function medianRun<T extends { perSec: number }>(runs: T[]): T {
  return [...runs].sort((a, b) => a.perSec - b.perSec)[Math.floor(runs.length / 2)]!;
}

/** The floor's reading: whether the goal is within reach of any queue that commits before it answers, on this machine. */
function floorVerdict(r: { floor: Map<string, Rate>; floorThread: Rate; bull: BullResult }): string {
  const below = [...r.floor].filter(([, f]) => f.perSec < r.bull.perSec).map(([l]) => l);
  const thread = ` With its connection on a worker thread and each commit's fsync off that thread, the SQLite floor reaches ${ratio(r.floorThread.perSec, r.bull.perSec)} BullMQ: ${r.floorThread.perSec < r.bull.perSec ? "those levers do not reach the goal either" : "those levers could"}.`;
  if (below.length === 0) return `Both floors are at or above the BullMQ baseline here: the goal is within reach of this write pattern on this machine.${thread}`;
  return `The floor on ${below.join(" and ")} is itself below the BullMQ baseline here: with this write pattern, no tuning above the driver reaches the goal on ${below.length === 2 ? "either engine" : "that engine"} on this machine.${thread}`;
}

function render(r: { nAccept: number; nE2e: number; warmup: number; nReplay: number; accept: Map<string, AcceptResult>; rawSqlite: Rate; rawPg: Rate; e2e: Map<string, Rate>; bull: BullResult; bullEverysec: BullResult; bullMemory: BullResult; pgBoss: PgBossResult; floor: Map<string, Rate>; floorThread: Rate; replay: Map<string, ReplayResult>; runs: { e2e: Map<string, Rate[]>; floor: Map<string, Rate[]>; floorThread: Rate[]; bull: BullResult[] } }): BenchReport {
  const labels = ["SQLite", "PostgreSQL"];
  const goalA = labels.every((l) => r.accept.get(l)!.perSec >= 0.5 * r.rawSqlite.perSec);
  const goalB =
    labels.every((l) => r.e2e.get(l)!.perSec >= r.bull.perSec && r.e2e.get(l)!.perSec >= 0.7 * r.floor.get(l)!.perSec) && r.e2e.get("PostgreSQL")!.perSec >= 5 * r.pgBoss.perSec;
  const goalC = labels.every((l) => r.replay.get(l)!.finished && r.replay.get(l)!.totalMs <= 30_000);
  const verdict = (ok: boolean) => `**${ok ? "Met" : "NOT met"}.**`;
  const markdown = [
    `Three measures of the durable job queue, on SQLite (file, WAL, \`synchronous=FULL\`) and PostgreSQL (127.0.0.1, fresh schema, pool of 10), each phase on a fresh store, in one process with the load it measures. Bodies are ${fmt(1024)}-byte JSON documents. A goal that is not met is reported as such.`,
    "",
    `### (a) Durable accepts/s`,
    "",
    `**Measures**: ${fmt(r.nAccept)} \`gk.ingress.accept\` calls (after a warm-up of 1,000), ${ACCEPTS_IN_FLIGHT} in flight, on one ENABLED integration (signing \`none\`), worker not running; each call resolves after the group commit holding its job. **Baseline (same run)**: raw single-row commits — better-sqlite3 directly on a new file of the same kind (WAL, \`synchronous=FULL\`), grantkeeper's own \`jobs\` and \`job_payloads\` DDL, one transaction per job holding what ingress writes for it (\`INSERT … ON CONFLICT DO NOTHING RETURNING\` of the same job row, and its payload row), one after another (at most ${fmt(r.nAccept)} rows or 15 s). For reference, the same on PostgreSQL with one pg client. **Goal**: ≥ 0.5× the raw SQLite commits/s on both engines. ${verdict(goalA)}`,
    "",
    table(
      ["store", "accepts/s", "vs raw SQLite commits/s", "vs raw commits/s of the same engine", "mean group size (jobs per commit)", "accept latency p50 / p99 (ms)"],
      labels.map((l) => {
        const a = r.accept.get(l)!;
        const same = l === "SQLite" ? r.rawSqlite : r.rawPg;
        return [`grantkeeper, ${l}`, fmt(a.perSec), ratio(a.perSec, r.rawSqlite.perSec), ratio(a.perSec, same.perSec), fmt(a.meanGroup, 1), `${fmt(a.p50, 1)} / ${fmt(a.p99, 1)}`];
      }).concat([
        ["baseline: raw single-job commits, better-sqlite3", fmt(r.rawSqlite.perSec), "1× (baseline)", "1×", "1", `${fmt(1000 / r.rawSqlite.perSec, 2)} (mean)`],
        ["reference: raw single-job commits, PostgreSQL, 1 client", fmt(r.rawPg.perSec), ratio(r.rawPg.perSec, r.rawSqlite.perSec), "1×", "1", `${fmt(1000 / r.rawPg.perSec, 2)} (mean)`],
      ]),
    ),
    "",
    `### (b) Accept → delivered, vs BullMQ`,
    "",
    `**Measures**: end-to-end jobs/s, from the first add to the last handler call, of ${fmt(r.nE2e)} jobs (after a warm-up of ${fmt(r.warmup)}), added by ${ADDERS} concurrent loops. grantkeeper: \`gk.ingress.accept\` round-robin onto ${INTEGRATIONS} integrations served by one in-process \`gk.handle\` handler that only counts, \`jobs.concurrency\` ${CONCURRENCY}, \`pollMs\` ${POLL_MS}, \`gk.start()\` before the first add; every job's outcome is recorded (\`succeeded\` verified by count). By design the jobs of ONE integration run one at a time, in arrival order — with a single integration the worker would run one job at a time; ${INTEGRATIONS} integrations let ${CONCURRENCY} run side by side. **Baseline (same run)**: BullMQ ${"6.7.0"} with ioredis 5.9.2 on the local ${r.bull.redis} — issue 16's decision: a queue that commits every accept before answering is compared with the durable BullMQ configuration, AOF with \`appendfsync always\`, which also has each job on disk before \`add()\` resolves. \`queue.add\` by ${ADDERS} concurrent loops, one Worker with concurrency ${CONCURRENCY} and a no-op processor that counts, Queue and Worker in this process. References (same run, same code): AOF fsynced every second (${r.bullEverysec.redis}; an add is acknowledged before it is on disk, up to a second of adds can be lost) and no persistence (${r.bullMemory.redis}). **Second baseline on PostgreSQL (same run)**: pg-boss ${r.pgBoss.version}, ${fmt(r.pgBoss.rows)} jobs sent by ${ADDERS} concurrent loops, ${PGBOSS_WORKERS} workers × \`batchSize\` ${PGBOSS_BATCH}, polling every 0.5 s (its shortest), a no-op handler. Every grantkeeper accept is fsynced (SQLite \`synchronous=FULL\`, PostgreSQL commit) before it resolves. grantkeeper's claims and outcomes are written without waiting for the disk (SQLite \`synchronous=NORMAL\` for those statements, PostgreSQL \`synchronous_commit=off\` on the worker's sessions): a process crash loses none of them, an OS crash can roll back the last ones, and those jobs then run again. **Goal**: ≥ 1× BullMQ (AOF always) and ≥ 0.7× the floor of the same engine on both engines, and ≥ 5× pg-boss on PostgreSQL. ${verdict(goalB)}`,
    "",
    `**Floor (reference, same run)**: what grantkeeper's write pattern, with each accept committed before it is answered, reaches here with ${ADDERS} adders and no overhead above the driver — a hand-written queue on the driver directly (better-sqlite3; pg with one adding and one working client), grantkeeper's tables, the same writes onto the same ${INTEGRATIONS} integration ids (group-committed INSERT of jobs and payloads at \`synchronous=FULL\` / a PostgreSQL commit; claim of up to 64 by \`UPDATE … RETURNING\`, \`FOR UPDATE SKIP LOCKED\` on PostgreSQL; payload read; one UPDATE of a batch's outcomes without waiting for the disk), no-op handlers, and none of grantkeeper's rules (integration status, breakers, handler names, lease renewal, duplicate look-ups, tracing) and no query builder. The levers issue 16 names for SQLite, measured on its floor before building them (same run): the same queue with its connection on a worker thread (every statement there; adds, groups and handlers on the main thread) and each group committed at \`synchronous=NORMAL\`, then acknowledged after an fdatasync of the WAL on libuv's thread pool (the same guarantee as FULL for every acknowledged add), so the next group, claims and outcomes are written meanwhile (a job may then run before its add is acknowledged: after a power cut its add is retried and it runs again). ${floorVerdict(r)}`,
    "",
    table(
      ["queue", "jobs", "wall time (ms)", "jobs/s", "vs BullMQ (AOF always)", "vs the floor of the same engine", "vs pg-boss"],
      labels
        .map((l) => {
          const e = r.e2e.get(l)!;
          return [`grantkeeper, ${l}`, fmt(e.rows), fmt(e.ms), fmt(e.perSec), ratio(e.perSec, r.bull.perSec), ratio(e.perSec, r.floor.get(l)!.perSec), l === "PostgreSQL" ? ratio(e.perSec, r.pgBoss.perSec) : ""];
        })
        .concat([
          ["baseline: BullMQ, Redis with AOF always", fmt(r.bull.rows), fmt(r.bull.ms), fmt(r.bull.perSec), "1× (baseline)", "", ""],
          ["reference: BullMQ, Redis with AOF everysec", fmt(r.bullEverysec.rows), fmt(r.bullEverysec.ms), fmt(r.bullEverysec.perSec), ratio(r.bullEverysec.perSec, r.bull.perSec), "", ""],
          ["reference: BullMQ, Redis without persistence", fmt(r.bullMemory.rows), fmt(r.bullMemory.ms), fmt(r.bullMemory.perSec), ratio(r.bullMemory.perSec, r.bull.perSec), "", ""],
          [`baseline on PostgreSQL: pg-boss ${r.pgBoss.version}`, fmt(r.pgBoss.rows), fmt(r.pgBoss.ms), fmt(r.pgBoss.perSec), ratio(r.pgBoss.perSec, r.bull.perSec), "", "1× (baseline)"],
          ...labels.map((l) => {
            const f = r.floor.get(l)!;
            return [`reference: floor, hand-written durable queue, ${l}`, fmt(f.rows), fmt(f.ms), fmt(f.perSec), ratio(f.perSec, r.bull.perSec), "1×", ""];
          }),
          ["reference: the SQLite floor, connection on a worker thread, fsync off that thread", fmt(r.floorThread.rows), fmt(r.floorThread.ms), fmt(r.floorThread.perSec), ratio(r.floorThread.perSec, r.bull.perSec), ratio(r.floorThread.perSec, r.floor.get("SQLite")!.perSec), ""],
        ]),
    ),
    "",
    `grantkeeper, BullMQ (AOF always) and the floors ran in ${r.runs.bull.length} interleaved round(s), each phase after a CHECKPOINT of the local PostgreSQL (a checkpoint's fsyncs stall every commit on this disk, whichever store makes it); each row above is the round with the median rate, ratios between medians. Every round, jobs/s: ${[
      ...labels.map((l) => `grantkeeper ${l} ${r.runs.e2e.get(l)!.map((x) => fmt(x.perSec)).join(" / ")}`),
      `BullMQ ${r.runs.bull.map((x) => fmt(x.perSec)).join(" / ")}`,
      ...labels.map((l) => `floor ${l} ${r.runs.floor.get(l)!.map((x) => fmt(x.perSec)).join(" / ")}`),
      `SQLite floor on a worker thread ${r.runs.floorThread.map((x) => fmt(x.perSec)).join(" / ")}`,
    ].join("; ")}.`,
    "",
    `### (c) Replay of ${fmt(r.nReplay)} parked jobs`,
    "",
    `**Measures**: ${INTEGRATIONS} integrations (one handler name, a no-op counting handler) depend on one connection; a refresh meets \`invalid_grant\` (local endpoint), so all ${INTEGRATIONS} are ERROR and ingress parks the ${fmt(r.nReplay)} jobs then accepted (${ACCEPTS_IN_FLIGHT} in flight, round-robin). The worker is running. Then the grant is re-imported (\`storeGrant\`): in its one transaction the integrations are reset to ENABLED and every parked job is re-queued by one set-based UPDATE. Measured: that re-import call (the re-queue), and the time from its start to the last handler call (replay done; the wait is capped at ${fmt(REPLAY_CAP_MS / 1000)} s, and a replay still running then is reported with what it delivered). **Goal**: replay done ≤ 30 s. ${verdict(goalC)}`,
    "",
    table(
      ["store", "parking: accepts (ms)", "parked accepts/s", "re-import incl. set-based re-queue (ms)", "re-import → last delivery (ms)", "delivered jobs/s"],
      labels.map((l) => {
        const p = r.replay.get(l)!;
        const total = p.finished ? fmt(p.totalMs) : `not done after ${fmt(p.totalMs)}: ${fmt(p.delivered)} of ${fmt(r.nReplay)} delivered`;
        return [`grantkeeper, ${l}`, fmt(p.parkMs), fmt(r.nReplay / (p.parkMs / 1000)), fmt(p.requeueMs), total, fmt(p.delivered / (p.totalMs / 1000))];
      }),
    ),
  ].join("\n");
  return { name: "jobs", title: `Jobs: durable accepts/s, accept → delivered vs BullMQ, replay of ${fmt(r.nReplay)} parked jobs`, markdown, goalMet: goalA && goalB && goalC };
}
