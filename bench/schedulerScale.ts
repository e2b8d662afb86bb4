/**
 * Benchmark "Scheduler scale: N = 10k, 100k, 1M grants on SQLite".
 *
 * For each N, three fresh child processes: seed the store
 * (bench/schedulerSeed.ts), then run grantkeeper's scheduler and the naive
 * one-timer-per-grant baseline on it (bench/schedulerWorker.ts), so RSS and
 * CPU are per design and per N.
 */
import { join } from "node:path";
import { BenchChild, benchKey, fmt, mb, progress, ratio, removeSqlite, scratchDir, startTokenServer, table, type BenchOptions, type BenchReport, type ChildMessage } from "./common.js";
import type { Spread } from "./schedulerWorker.js";

const DUE_COUNT = 200;
/** Background grants start being due this far out, so none falls due inside the ~30 s measurement. */
const SPREAD_START_MS = 15 * 60_000;
const TOKEN_DELAY_MS = 20;
const GOAL_RSS_MB = 256;
const GOAL_LATE_MS = 1_000;

/** Everything measured for one N. */
interface SizeResult {
  n: number;
  seed: ChildMessage;
  ours: ChildMessage;
  naive: ChildMessage;
  oursTokenCalls: number;
}

async function runChild(script: string, label: string, message: ChildMessage, resultType: string, timeoutMs: number): Promise<ChildMessage> {
  const child = new BenchChild(script, label);
  try {
    child.send(message);
    return await child.next(resultType, timeoutMs);
  } finally {
    await child.stop();
  }
}

async function measureSize(n: number, key: string, origin: string, requests: () => Promise<number>): Promise<SizeResult> {
  const file = join(scratchDir(), `scheduler-${n}.db`);
  removeSqlite(file);
  const databaseUrl = `sqlite:${file}`;
  const label = `N=${fmt(n)}`;
  try {
    progress(`scheduler: ${label}: seeding`);
    const seed = await runChild("schedulerSeed.js", `${label} seed`, { type: "seed", databaseUrl, file, encryptionKey: key, origin, n, dueCount: DUE_COUNT, spreadStartMs: SPREAD_START_MS }, "seeded", 60_000 + n * 0.6);
    progress(`scheduler: ${label}: seeded in ${(Number(seed.totalMs) / 1000).toFixed(1)} s; measuring grantkeeper`);
    const before = await requests();
    const ours = await runChild("schedulerWorker.js", `${label} ours`, { type: "run", mode: "ours", databaseUrl, encryptionKey: key, origin, dueCount: DUE_COUNT }, "result", 120_000);
    const oursTokenCalls = (await requests()) - before;
    progress(`scheduler: ${label}: ours RSS@10s ${mb(Number(ours.rss10))} MB, max lateness ${fmt((ours.stats as { maxLatenessMs: number }).maxLatenessMs)} ms; measuring naive baseline`);
    const naive = await runChild("schedulerWorker.js", `${label} naive`, { type: "run", mode: "naive", databaseUrl, encryptionKey: key, origin, dueCount: DUE_COUNT }, "result", 120_000 + n * 0.1);
    progress(`scheduler: ${label}: naive RSS@10s ${mb(Number(naive.rss10))} MB, start-up ${fmt(Number(naive.startupMs))} ms`);
    return { n, seed, ours, naive, oursTokenCalls };
  } finally {
    removeSqlite(file);
  }
}

const num = (m: ChildMessage, k: string) => Number(m[k]);
const stats = (m: ChildMessage) => m.stats as { started: number; maxLatenessMs: number; totalLatenessMs: number; ticks: number };
const meanLate = (m: ChildMessage) => (stats(m).started ? stats(m).totalLatenessMs / stats(m).started : 0);
const schedulerOptionsText = (m: ChildMessage) => {
  const o = m.schedulerOptions as { batchSize?: number; concurrency?: number; maxSleepMs?: number } | null;
  return o ? `batch ${o.batchSize}, concurrency ${o.concurrency}, max sleep ${fmt(Number(o.maxSleepMs))} ms` : "not readable";
};
const growth = (v: number, first: number) => (first > 0 ? ` (${(v / first).toFixed(1)}×)` : "");

function render(results: SizeResult[], quick: boolean): { markdown: string; goalMet: boolean } {
  const last = results[results.length - 1]!;
  const peak = Math.max(num(last.ours, "peakRss"), num(last.ours, "rss10"));
  const goalMet = peak <= GOAL_RSS_MB * 2 ** 20 && stats(last.ours).maxLatenessMs <= GOAL_LATE_MS && num(last.ours, "refreshed") === DUE_COUNT;
  const seedRows = results.map((r) => [
    fmt(r.n),
    (num(r.seed, "buildMs") / 1000).toFixed(1),
    (num(r.seed, "insertMs") / 1000).toFixed(1),
    (num(r.seed, "totalMs") / 1000).toFixed(1),
    fmt(r.n / (num(r.seed, "totalMs") / 1000)),
    mb(num(r.seed, "dbBytes")),
  ]);
  const memRows = results.map((r) => [
    fmt(r.n),
    `${fmt(num(r.ours, "startupMs"))} / ${fmt(num(r.naive, "startupMs"))}`,
    ratio(num(r.ours, "startupMs"), num(r.naive, "startupMs")),
    `${mb(num(r.ours, "rssStart"))} / ${mb(num(r.naive, "rssStart"))}`,
    `${mb(num(r.ours, "rss10"))} / ${mb(num(r.naive, "rss10"))}`,
    ratio(num(r.ours, "rss10"), num(r.naive, "rss10")),
    `${mb(num(r.ours, "peakRss"))} / ${mb(num(r.naive, "peakRss"))}`,
    `${mb(num(r.ours, "heap10"))} / ${mb(num(r.naive, "heap10"))}`,
  ]);
  const cpuRows = results.map((r) => [
    fmt(r.n),
    `${fmt(num(r.ours, "cpuIdleMs"), 1)} / ${fmt(num(r.naive, "cpuIdleMs"), 1)}`,
    ratio(num(r.ours, "cpuIdleMs"), num(r.naive, "cpuIdleMs")),
    `${fmt(num(r.ours, "refreshed"))}/${DUE_COUNT} (${fmt(r.oursTokenCalls)})`,
    `${fmt(num(r.ours, "dueDoneMs"))} (${fmt(num(r.ours, "refreshed") / Math.max(0.001, num(r.ours, "dueDoneMs") / 1000))}/s)`,
    fmt(num(r.ours, "cpuPerRefreshMs"), 1),
    `${fmt(stats(r.ours).maxLatenessMs)} / ${fmt(meanLate(r.ours), 1)}`,
    (() => {
      const s = r.ours.tokenCallLateness as Spread;
      return `${fmt(s.min)} / ${fmt(s.p50)} / ${fmt(s.max)}`;
    })(),
    `${fmt((r.naive.timerLateness as Spread).max)} / ${fmt((r.naive.timerLateness as Spread).mean, 1)}`,
    fmt((r.ours.tickMs as Spread).mean, 2),
    fmt(num(r.ours, "providerPutMs"), 1),
  ]);
  const first = results[0]!;
  const growthRows = results.map((r) => [
    fmt(r.n),
    `${mb(num(r.ours, "rss10"))}${growth(num(r.ours, "rss10"), num(first.ours, "rss10"))}`,
    `${mb(num(r.naive, "rss10"))}${growth(num(r.naive, "rss10"), num(first.naive, "rss10"))}`,
    `${fmt(num(r.ours, "startupMs"))}${growth(num(r.ours, "startupMs"), num(first.ours, "startupMs"))}`,
    `${fmt(num(r.naive, "startupMs"))}${growth(num(r.naive, "startupMs"), num(first.naive, "startupMs"))}`,
    `${fmt(num(r.ours, "cpuIdleMs"), 1)}`,
    `${fmt(stats(r.ours).maxLatenessMs)}`,
    fmt((r.ours.tickMs as Spread).mean, 2),
  ]);
  const markdown = [
    "**Measures**: what holding N grants costs the refresh scheduler on the embedded SQLite store — start-up time (`createGrantkeeper` with the provider definition + `start()`), resident memory after start and 10 s later, CPU time used in a 5 s idle window, and how late the refreshes of a due set start. Each design and each N runs in a fresh child process, so RSS and CPU are that process's alone.",
    "",
    `**Set-up**: a seeding process inserts N connections with kysely (transactions of 10,000 rows, INSERTs of 500), each with its own AES-256-GCM access- and refresh-token ciphertexts (so every grant is valid and decryptable). \`next_refresh_at\` is spread uniformly over 24 h starting ${SPREAD_START_MS / 60_000} min out (so that no background grant falls due inside the ~30 s measurement and the idle window is really idle), except a due set of ${DUE_COUNT} grants that the measured process makes due 5 s after its start-up. A local token endpoint (own process) answers each refresh after ${TOKEN_DELAY_MS} ms. Scheduler options are createGrantkeeper's defaults (in this run: ${schedulerOptionsText(last.ours)}); real clock; logger silent. Timeline after start-up (t = 0): RSS; due set at t = 5 s; RSS at t = 10 s; CPU over t = 10–15 s.`,
    "",
    "**Baseline (same run, same store file, same N)**: the naive design — load every grant's `next_refresh_at` into memory and create one `setTimeout` per grant (handles kept in a `Map` so they could be cancelled or rescheduled). Its timers only record that they fired; it does no refresh work, so its CPU and lateness are a lower bound for that design.",
    "",
    `**Goal** at the largest N${quick ? " of this run (quick: 10k only; the goal is stated for 1M)" : " (1M)"}: RSS ≤ ${GOAL_RSS_MB} MB and refresh starts ≤ ${fmt(GOAL_LATE_MS)} ms late, every due grant refreshed. **${goalMet ? "Met" : "NOT met"}** (peak RSS ${mb(peak)} MB, max lateness ${fmt(stats(last.ours).maxLatenessMs)} ms, ${fmt(num(last.ours, "refreshed"))}/${DUE_COUNT} refreshed).`,
    "",
    "### Seeding (not part of either design's numbers)",
    "",
    table(["N", "build rows incl. 2 encryptions/row (s)", "insert (s)", "total (s)", "rows/s", "DB file (MB)"], seedRows),
    "",
    "### Start-up and memory: grantkeeper / naive baseline",
    "",
    table(["N", "start-up ms", "start-up ratio", "RSS after start (MB)", "RSS at +10 s (MB)", "RSS ratio at +10 s", "peak RSS (MB)", "JS heap used at +10 s (MB)"], memRows),
    "",
    "### Idle CPU and lateness",
    "",
    table(
      [
        "N",
        "CPU in 5 s idle window, ms (ours / naive)",
        "CPU ratio",
        "due set refreshed (token calls)",
        "due → last refresh stored, ms (throughput)",
        "CPU per refresh (ms)",
        "scheduler lateness, ms: max / mean",
        "token call start after due, ms: min / p50 / max",
        "naive timer lateness, ms: max / mean",
        "scheduler tick, nothing due (ms, mean of 20)",
        "provider re-definition (ms)",
      ],
      cpuRows,
    ),
    "",
    "Scheduler lateness is `scheduler.stats` (a refresh's start by a worker minus its `next_refresh_at`). All 200 grants fall due at the same instant, so the mean and max are set by how fast the due set is worked through (the throughput column: refreshes stored per second), not by timer precision; the min of the token-call column is the timer-to-first-call delay. \"CPU per refresh\" is this process's CPU time from start-up until the due set was done, divided by the refreshes: one process cannot store more than about 1000 / that many refreshes per second, whatever the concurrency option. \"Provider re-definition\" is the cost of the `providers.put` that `createGrantkeeper` performs for each provider passed in `providers` (it is included in the start-up column).",
    "",
    "### How cost grows with N (× vs the smallest N)",
    "",
    table(["N", "ours RSS at +10 s (MB)", "naive RSS at +10 s (MB)", "ours start-up (ms)", "naive start-up (ms)", "ours idle CPU (ms / 5 s)", "ours max lateness (ms)", "ours tick (ms)"], growthRows),
  ].join("\n");
  return { markdown, goalMet };
}

/** Run the benchmark and render its section of docs/benchmarks.md. */
export async function runSchedulerScale(opts: BenchOptions): Promise<BenchReport> {
  const sizes = opts.quick ? [10_000] : [10_000, 100_000, 1_000_000];
  const server = await startTokenServer(TOKEN_DELAY_MS);
  const key = benchKey();
  const results: SizeResult[] = [];
  try {
    for (const n of sizes) results.push(await measureSize(n, key, server.origin, () => server.requests()));
  } finally {
    await server.close();
  }
  const { markdown, goalMet } = render(results, opts.quick);
  return { name: "schedulerScale", title: `Scheduler scale: N = ${sizes.map((n) => fmt(n)).join(", ")} grants on SQLite`, markdown, goalMet };
}
