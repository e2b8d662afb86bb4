/**
 * Benchmark "retention sweep under ingress" (issue 13), SQLite and
 * PostgreSQL in one run: N finished jobs with 1 KB payloads, seeded with bulk
 * SQL (not through the API), are swept by the server's own sweeper while
 * webhooks arrive at a fixed rate through `gk.ingress.accept` in the same
 * process. Reported: accept latency p50/p99 with no sweep (the baseline,
 * same process, same rate, same store, measured just before) and during the
 * sweep (goal: p99 ≤ 2× the baseline's), and the sweep's rows/s.
 *
 * N: the issue asks for 10 million; on the shared 2-core machine the default
 * is 1 million (`GK_BENCH_RETENTION_N` sets it; `--quick` uses 20 000).
 * `GK_BENCH_RETENTION_ENGINES=SQLite` (or `PostgreSQL`) runs one engine only.
 * Latency is measured from each webhook's scheduled arrival (open loop), so
 * time a webhook spends waiting behind a sweep batch counts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { createGrantkeeper, type Grantkeeper } from "../src/grantkeeper.js";
import { ManualClock } from "../src/domain/clock.js";
import { defaultRetentionPolicy } from "../src/domain/retention.js";
import { internalsOf } from "../src/internals.js";
import { DEFAULT_SWEEP_BATCH_SIZE, DEFAULT_SWEEP_BATCH_TARGET_MS, DEFAULT_SWEEP_MAX_ROWS_PER_SECOND, RetentionSweeper, type SweepReport } from "../src/lifecycle/retention.js";
import { RetentionRepository } from "../src/store/retention.js";
import { silentLogger } from "../src/telemetry/logger.js";
import { benchKey, dropSchema, fmt, mb, PG_BASE, progress, quantile, removeSqlite, scratchDir, table, type BenchOptions, type BenchReport } from "./common.js";
import { BODY_BYTES, jobBody } from "./jobsBaselines.js";

/** Webhooks per second offered during both phases (`GK_BENCH_RETENTION_RATE` overrides: below the machine's capacity, or latency only measures the backlog). */
const RATE = Number(process.env.GK_BENCH_RETENTION_RATE ?? "") > 0 ? Number(process.env.GK_BENCH_RETENTION_RATE) : 2_000;
/** Accepts started per tick (a tick every 1000 / (RATE / BURST) ms). */
const BURST = 10;
/** Load offered, unmeasured, before the baseline, ms. */
const WARMUP_MS = 3_000;
/**
 * Length of the no-sweep baseline phase, ms (`GK_BENCH_RETENTION_BASELINE_S` overrides, in seconds). Long
 * enough to hold the store's own periodic work under this load: on PostgreSQL the accepts alone write
 * ~6 MB of WAL a second, which brings a checkpoint about every 90 s (max_wal_size 1 GB). A 10 s window
 * right after the seeding's forced checkpoint never saw one, and compared a sweep with a state the
 * server never holds for long. `--quick`: 10 s.
 */
function baselineMs(opts: BenchOptions): number {
  const fromEnv = Number(process.env.GK_BENCH_RETENTION_BASELINE_S ?? "");
  if (fromEnv > 0) return fromEnv * 1000;
  return opts.quick ? 10_000 : 120_000;
}
/** Longest a sweep may run under load before it is stopped and reported as partial, ms. */
const SWEEP_CAP_MS = 1_800_000;
/** Rows per seeding statement. */
const SEED_CHUNK = 50_000;
const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;

interface EngineResult {
  label: string;
  n: number;
  seedSeconds: number;
  base: Latency;
  during: Latency;
  sweep: SweepReport;
  rowsPerSecond: number;
  partial: boolean;
  /** What PostgreSQL did during the baseline and during the sweep; undefined on SQLite. */
  pg?: { base: PgPhase; during: PgPhase };
}

/** PostgreSQL's own work during one phase. */
interface PgPhase {
  /** Checkpoints that started (timed + requested, `pg_stat_bgwriter`). */
  checkpoints: number;
  /** WAL written, bytes per second. */
  walPerSecond: number;
  /** Full-page images written to the WAL (`pg_stat_wal.wal_fpi`). */
  fpi: number;
  /** Autovacuum runs on jobs and job_payloads (`pg_stat_user_tables`). */
  autovacuums: number;
}

/** PostgreSQL's cumulative counters at one instant (`at`: `performance.now()`, ms). */
interface PgCounters {
  checkpoints: number;
  wal: number;
  fpi: number;
  autovacuums: number;
  at: number;
}

/** The work between two readings of the counters. */
function pgPhase(a: PgCounters, b: PgCounters): PgPhase {
  return { checkpoints: b.checkpoints - a.checkpoints, walPerSecond: (b.wal - a.wal) / ((b.at - a.at) / 1000), fpi: b.fpi - a.fpi, autovacuums: b.autovacuums - a.autovacuums };
}

/** A phase's PostgreSQL work for the progress line. */
function describePg(p: PgPhase): string {
  return `${p.checkpoints} checkpoints, WAL ${mb(p.walPerSecond)} MB/s, ${p.fpi} full-page images, ${p.autovacuums} autovacuums`;
}

interface Latency {
  count: number;
  p50: number;
  p99: number;
  max: number;
  /** Accepted per second, as achieved. */
  rate: number;
}

/**
 * With `GK_BENCH_RETENTION_TIMELINE=1`: one CSV per phase in .bench-out/ (second, accepts, p99 ms, max ms,
 * wall-clock ISO time), to line latency up with PostgreSQL's log (checkpoints, autovacuum).
 */
function writeTimeline(name: string, perSecond: number[][]): void {
  const t0 = Date.now() - perSecond.length * 1000;
  const rows = perSecond.map((l, s) => {
    const sorted = [...(l ?? [])].sort((a, b) => a - b);
    return `${s},${sorted.length},${quantile(sorted, 0.99).toFixed(1)},${quantile(sorted, 1).toFixed(1)},${new Date(t0 + s * 1000).toISOString()}`;
  });
  mkdirSync(".bench-out", { recursive: true });
  writeFileSync(join(".bench-out", `${name}.csv`), ["second,accepts,p99_ms,max_ms,at", ...rows].join("\n") + "\n");
}

/** N from the environment, `--quick`, or the default. */
function jobsToSweep(opts: BenchOptions): number {
  const fromEnv = Number(process.env.GK_BENCH_RETENTION_N ?? "");
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return opts.quick ? 20_000 : 1_000_000;
}

/** Insert `n` succeeded jobs finished 30 days before NOW, with 1 KB payloads, in chunks of bulk SQL. */
async function seed(gk: Grantkeeper, integrationId: string, n: number): Promise<void> {
  const { db, dialect } = internalsOf(gk).store;
  const body = Buffer.from(jobBody(0)).toString("base64");
  const finished = NOW - 30 * DAY;
  for (let from = 0; from < n; from += SEED_CHUNK) {
    const to = Math.min(n, from + SEED_CHUNK);
    if (dialect === "postgres") {
      await sql`insert into jobs (id, integration_id, state, attempts, idempotency_key, run_at, lease_owner, lease_until, last_error, probe, received_at, created_at, updated_at, finished_at)
        select 'job_seed_' || i, ${integrationId}, 'succeeded', 1, null, ${finished} - i, null, null, null, 0, ${finished} - i, ${finished} - i, ${finished}, ${finished} + i from generate_series(${from}::bigint, ${to - 1}::bigint) as i`.execute(db);
      await sql`insert into job_payloads (job_id, headers, body) select 'job_seed_' || i, '{}', ${body} from generate_series(${from}::bigint, ${to - 1}::bigint) as i`.execute(db);
    } else {
      await db.transaction().execute(async (trx) => {
        await sql`with recursive s(i) as (select ${from} union all select i + 1 from s where i < ${to - 1})
          insert into jobs (id, integration_id, state, attempts, idempotency_key, run_at, lease_owner, lease_until, last_error, probe, received_at, created_at, updated_at, finished_at)
          select 'job_seed_' || i, ${integrationId}, 'succeeded', 1, null, ${finished} - i, null, null, null, 0, ${finished} - i, ${finished} - i, ${finished}, ${finished} + i from s`.execute(trx);
        await sql`with recursive s(i) as (select ${from} union all select i + 1 from s where i < ${to - 1})
          insert into job_payloads (job_id, headers, body) select 'job_seed_' || i, '{}', ${body} from s`.execute(trx);
      });
    }
  }
  // Seeding is not the scenario: its dirty pages and WAL are flushed now (PostgreSQL's own checkpoint would
  // otherwise land in the baseline or the sweep at random), and the planner sees the seeded tables.
  if (dialect === "postgres") {
    await sql`vacuum analyze jobs`.execute(db);
    await sql`vacuum analyze job_payloads`.execute(db);
    await sql`checkpoint`.execute(db);
  } else await sql`pragma wal_checkpoint(truncate)`.execute(db);
}

/**
 * Offer RATE webhooks/s until `until()` says stop; each latency runs from the
 * webhook's scheduled arrival to its accept's resolution, milliseconds.
 */
async function offerLoad(gk: Grantkeeper, integrationId: string, until: () => boolean, timeline?: string): Promise<Latency> {
  const latencies: number[] = [];
  const perSecond: number[][] = [];
  const pending = new Set<Promise<void>>();
  const tickMs = 1000 / (RATE / BURST);
  const t0 = performance.now();
  let sent = 0;
  let errors = 0;
  while (!until()) {
    const due = t0 + (sent / BURST) * tickMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    for (let k = 0; k < BURST; k++) {
      const scheduled = due;
      const i = sent++;
      const p = gk.ingress
        .accept(integrationId, new TextEncoder().encode(jobBody(i)), new Headers({ "content-type": "application/json" }))
        .then(
          () => {
            const ms = performance.now() - scheduled;
            latencies.push(ms);
            if (timeline) (perSecond[Math.floor((scheduled - t0) / 1000)] ??= []).push(ms);
          },
          () => void errors++,
        )
        .finally(() => pending.delete(p));
      pending.add(p);
    }
  }
  await Promise.all(pending);
  if (errors > 0) throw new Error(`${errors} accepts failed`);
  if (timeline) writeTimeline(timeline, perSecond);
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { count: latencies.length, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: quantile(latencies, 1), rate: latencies.length / seconds };
}

async function runEngine(label: "SQLite" | "PostgreSQL", n: number, baselineDurationMs: number): Promise<EngineResult> {
  const file = join(scratchDir(), "retention.db");
  const schema = "bench_retention";
  const url = label === "SQLite" ? `sqlite:${file}` : `${PG_BASE}?schema=${schema}`;
  if (label === "SQLite") removeSqlite(file);
  else await dropSchema(schema);
  const clock = new ManualClock(NOW);
  const gk = await createGrantkeeper({ databaseUrl: url, encryptionKey: benchKey(), clock });
  try {
    const { integration } = await gk.integrations.create({ name: "retention-bench", entityId: "bench", connectionIds: [], webhook: { signing: "none" } });
    progress(`retention ${label}: seeding ${n} finished jobs with ${BODY_BYTES} B payloads`);
    const s0 = performance.now();
    await seed(gk, integration.id, n);
    const seedSeconds = (performance.now() - s0) / 1000;
    progress(`retention ${label}: seeded in ${seedSeconds.toFixed(1)} s; ${RATE}/s webhooks for ${baselineDurationMs / 1000} s without a sweep`);
    // Warm-up (JIT, statement cache, the store's first pages), not measured.
    const warmEnd = performance.now() + WARMUP_MS;
    await offerLoad(gk, integration.id, () => performance.now() >= warmEnd);
    const baseEnd = performance.now() + baselineDurationMs;
    const pgStats = async (): Promise<PgCounters> => {
      if (label !== "PostgreSQL") return { checkpoints: 0, wal: 0, fpi: 0, autovacuums: 0, at: performance.now() };
      const row = (
        await sql<{ n: string; wal: string; fpi: string; av: string }>`select (select checkpoints_timed + checkpoints_req from pg_stat_bgwriter) as n, pg_current_wal_lsn() - '0/0'::pg_lsn as wal,
          (select wal_fpi from pg_stat_wal) as fpi,
          (select coalesce(sum(autovacuum_count), 0) from pg_stat_user_tables where schemaname = current_schema() and relname in ('jobs', 'job_payloads')) as av`.execute(internalsOf(gk).store.db)
      ).rows[0];
      return { checkpoints: Number(row?.n ?? 0), wal: Number(row?.wal ?? 0), fpi: Number(row?.fpi ?? 0), autovacuums: Number(row?.av ?? 0), at: performance.now() };
    };
    const c0 = await pgStats();
    const timeline = process.env.GK_BENCH_RETENTION_TIMELINE === "1";
    const base = await offerLoad(gk, integration.id, () => performance.now() >= baseEnd, timeline ? `retention-${label}-baseline` : undefined);
    const c1 = await pgStats();
    progress(`retention ${label}: baseline p99 ${base.p99.toFixed(1)} ms${label === "PostgreSQL" ? ` (${describePg(pgPhase(c0, c1))})` : ""}; sweeping under the same load`);
    // The server's sweeper with its defaults; the manual clock only fixes "now" for the windows.
    let deletedSoFar = 0;
    const sweeper = new RetentionSweeper({
      repo: new RetentionRepository(internalsOf(gk).store),
      clock,
      logger: silentLogger(),
      policy: defaultRetentionPolicy,
      metrics: { retentionDeleted: (table, rows) => void (table === "jobs" && (deletedSoFar += rows)) },
    });
    const ticker = setInterval(() => progress(`retention ${label}: ${fmt(deletedSoFar)} of ${fmt(n)} jobs deleted so far`), 10_000);
    let done = false;
    let partial = false;
    const cap = setTimeout(() => {
      partial = true;
      void sweeper.stop();
    }, SWEEP_CAP_MS);
    const sweeping = sweeper.sweep().finally(() => {
      done = true;
      clearTimeout(cap);
      clearInterval(ticker);
    });
    const during = await offerLoad(gk, integration.id, () => done, timeline ? `retention-${label}-sweep` : undefined);
    const sweep = await sweeping;
    const c2 = await pgStats();
    const rowsPerSecond = sweep.deleted.jobs / (sweep.durationMs / 1000);
    const pg = label === "PostgreSQL" ? { base: pgPhase(c0, c1), during: pgPhase(c1, c2) } : undefined;
    progress(`retention ${label}: swept ${sweep.deleted.jobs} jobs in ${(sweep.durationMs / 1000).toFixed(1)} s (${fmt(rowsPerSecond)} jobs/s); p99 during ${during.p99.toFixed(1)} ms${pg ? ` (${describePg(pg.during)})` : ""}`);
    return { label, n, seedSeconds, base, during, sweep, rowsPerSecond, partial, ...(pg ? { pg } : {}) };
  } finally {
    await gk.close();
    if (label === "SQLite") removeSqlite(file);
    else await dropSchema(schema);
  }
}

/** Run the benchmark on both engines and render its section of docs/benchmarks.md. */
export async function runRetention(opts: BenchOptions): Promise<BenchReport> {
  const n = jobsToSweep(opts);
  const baselineDurationMs = baselineMs(opts);
  const results: EngineResult[] = [];
  for (const label of (process.env.GK_BENCH_RETENTION_ENGINES ?? "SQLite,PostgreSQL").split(",") as ("SQLite" | "PostgreSQL")[]) results.push(await runEngine(label, n, baselineMs(opts)));
  const ok = (r: EngineResult) => !r.partial && r.sweep.deleted.jobs === r.n && r.during.p99 <= 2 * r.base.p99;
  const markdown = [
    `Sweeping ${fmt(n)} finished jobs (succeeded 30 days ago, ${BODY_BYTES} B payloads, seeded with bulk SQL) with the server's sweeper (defaults: batches sized to take ${DEFAULT_SWEEP_BATCH_TARGET_MS.sqlite} ms on SQLite and ${DEFAULT_SWEEP_BATCH_TARGET_MS.postgres} ms on PostgreSQL, at most ${DEFAULT_SWEEP_BATCH_SIZE} rows, committed without waiting for the disk, a pause of twice each batch's duration after it, on PostgreSQL at most ${fmt(DEFAULT_SWEEP_MAX_ROWS_PER_SECOND.postgres)} jobs/s; default windows) while ${fmt(RATE)} webhooks/s arrive through \`gk.ingress.accept\` in the same process.`,
    `The issue asks for 10 million jobs; this shared 2-core machine runs ${n === 1_000_000 ? "1 million by default" : fmt(n)} (\`GK_BENCH_RETENTION_N\` sets N). Latency runs from each webhook's scheduled arrival (open loop), so waiting behind a sweep batch counts.`,
    `Baseline: the same load on the same store for ${baselineDurationMs / 1000} s just before the sweep (after ${WARMUP_MS / 1000} s of unmeasured warm-up): long enough to hold the store's own periodic work under this load (on PostgreSQL the accepts alone bring a checkpoint about every 90 s). Goal: accept p99 during the sweep ≤ 2× the baseline's, every seeded job deleted.`,
    "",
    table(
      ["engine", "jobs swept", "sweep s", "sweep jobs/s (+ payloads)", "accept p50 / p99 / max without sweep, ms", "accept p50 / p99 / max during sweep, ms", "p99 ratio", "webhooks/s achieved during", "goal met"],
      results.map((r) => [
        r.label,
        `${fmt(r.sweep.deleted.jobs)}${r.partial ? " (stopped at the cap)" : ""}`,
        (r.sweep.durationMs / 1000).toFixed(1),
        fmt(r.rowsPerSecond),
        `${r.base.p50.toFixed(1)} / ${r.base.p99.toFixed(1)} / ${r.base.max.toFixed(0)}`,
        `${r.during.p50.toFixed(1)} / ${r.during.p99.toFixed(1)} / ${r.during.max.toFixed(0)}`,
        `${(r.during.p99 / r.base.p99).toFixed(2)}×`,
        fmt(r.during.rate),
        ok(r) ? "yes" : "**no**",
      ]),
    ),
    "",
    `Seeding took ${results.map((r) => `${r.seedSeconds.toFixed(0)} s (${r.label})`).join(", ")}, followed by a checkpoint (the seeding's WAL is not part of the scenario). SQLite pages given back after the sweep: ${fmt(results.find((r) => r.label === "SQLite")?.sweep.reclaimedPages ?? 0)}.`,
    ...results
      .flatMap((r) => (r.pg ? [r.pg] : []))
      .map(
        ({ base, during }) =>
          `PostgreSQL checkpoints that started during the baseline / during the sweep: ${base.checkpoints} / ${during.checkpoints}; WAL written ${mb(base.walPerSecond)} / ${mb(during.walPerSecond)} MB/s; full-page images ${fmt(base.fpi)} / ${fmt(during.fpi)}; autovacuum runs on jobs and job_payloads ${base.autovacuums} / ${during.autovacuums}. A sweep's deletes write about 2–3 KB of WAL per job (mostly full-page images of each page first touched after a checkpoint), which brings PostgreSQL's WAL-triggered checkpoints forward; the p99 follows what a checkpoint costs each commit on the machine's disk. On another machine of this kind (AMD EPYC, an earlier run on 2026-12-05) a checkpoint's fsync phase stalled every commit for 100–250 ms and the same 1,000,000-job sweep measured 2.87× (21.4 → 61.4 ms p99, 17 checkpoints in 1,000 s); before the sweep was paced (~9,000 jobs/s unpaced) it measured 7.1× against a 120 s baseline. \`GK_BENCH_RETENTION_TIMELINE=1\` writes each phase's per-second p99 to .bench-out/ to line it up with PostgreSQL's log. See docs/operations.md "Retention" for the PostgreSQL settings that spread checkpoints.`,
      ),
  ].join("\n");
  return { name: "retention", title: "Retention sweep under ingress", goalMet: results.every(ok), markdown };
}
