/**
 * Benchmark "the proxy at the speed of its floor" (issue 16 goal 1).
 *
 * Three child processes (bench/proxyServer.ts): the provider's API
 * (`upstream`), a bare undici `Pool.stream` pass-through to it (`bare`, the
 * baseline), and grantkeeper served as `grantkeeper serve` does, with 50
 * imported grants. autocannon (in this process) drives each over loopback
 * with 50 connections: `GET` and `POST` (1 KiB body) answered with 1 KiB,
 * grantkeeper's requests spread over the 50 grants. Then one 100 MB body is
 * streamed through grantkeeper's proxy, and the peak RSS growth of the
 * grantkeeper process is sampled every 20 ms. For reference, both servers'
 * latency at equal load below saturation: open loop at a third of
 * grantkeeper's maximum ({@link latencyAtRate}).
 *
 * Goal: each grantkeeper/bare ratio ≥ 0.7, added p99 ≤ 2 ms, RSS growth < 64 MB.
 */
import { join } from "node:path";
import { Readable } from "node:stream";
import autocannon from "autocannon";
import { createHistogram } from "node:perf_hooks";
import { Pool, request } from "undici";
import { BenchChild, fmt, mb, progress, ratio, scratchDir, table, withTimeout, type BenchOptions, type BenchReport } from "./common.js";

/** Connections autocannon keeps open. */
export const CONNECTIONS = 50;
/** Grants spread over (one per connection). */
export const GRANTS = 50;
const BODY_1K = Buffer.from(JSON.stringify({ data: "y".repeat(1024 - 11) }));
const STREAM_BYTES = 100 * 2 ** 20;

/** Several interleaved autocannon runs of one target, reduced to what the report shows. */
export interface LoadResult {
  label: string;
  /** Requests per second over all rounds. */
  rps: number;
  /** Median over rounds of each round's p50 / p99, milliseconds. */
  p50: number;
  p99: number;
  /** CPU time (user + system) of the server process per request, microseconds: less sensitive to a busy machine than req/s. */
  cpuMicrosPerRequest: number;
  errors: number;
  non2xx: number;
}

/** One target of {@link compare}. */
export interface LoadTarget {
  label: string;
  url: string;
  /** The server's process, asked for its CPU time around each round. */
  child: BenchChild;
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Request paths, handed out round-robin. */
  paths: string[];
}

/** The sum of `f` over `rs`. */
function sumOf<R>(rs: readonly R[], f: (r: R) => number): number {
  return rs.reduce((n, r) => n + f(r), 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function cpuOf(child: BenchChild): Promise<number> {
  child.send({ type: "cpu" });
  return Number((await child.next("cpu:ok", 10_000)).micros);
}

function cannon(t: LoadTarget, seconds: number) {
  let n = 0;
  return autocannon({
    url: t.url,
    connections: CONNECTIONS,
    duration: seconds,
    timeout: 30,
    requests: [
      {
        method: t.method ?? "GET",
        headers: { ...t.headers, ...(t.body ? { "content-type": "application/json" } : {}) },
        ...(t.body ? { body: t.body } : {}),
        setupRequest: (req) => ({ ...req, path: t.paths[n++ % t.paths.length]! }),
      },
    ],
  });
}

/**
 * Drive the targets with autocannon, interleaved: a 1 s warm-up each, then `rounds` rounds of
 * `seconds / rounds` per target, so that a busy spell of the machine hits every target alike.
 */
export async function compare<T extends LoadTarget[]>(targets: [...T], seconds: number, rounds: number): Promise<{ [K in keyof T]: LoadResult }> {
  for (const t of targets) await withTimeout(cannon(t, 1), 30_000, `${t.label} warm-up`);
  const per = Math.max(1, Math.round(seconds / rounds));
  const runs = await interleaved(targets.length, rounds, async (i) => {
    const t = targets[i]!;
    const cpu0 = await cpuOf(t.child);
    const res = await withTimeout(cannon(t, per), (per + 30) * 1000, t.label);
    return { res, cpu: (await cpuOf(t.child)) - cpu0 };
  });
  return targets.map((t, i) => {
    const own = runs[i]!;
    const requests = sumOf(own, (r) => r.res.requests.total);
    const errors = sumOf(own, (r) => r.res.errors + r.res.timeouts);
    const non2xx = sumOf(own, (r) => r.res.non2xx);
    const result = { label: t.label, rps: requests / (sumOf(own, (r) => r.res.duration * 1000) / 1000), p50: median(own.map((r) => r.res.latency.p50)), p99: median(own.map((r) => r.res.latency.p99)), cpuMicrosPerRequest: requests ? sumOf(own, (r) => r.cpu) / requests : 0, errors, non2xx };
    progress(`${t.label}: ${fmt(result.rps)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms, ${fmt(result.cpuMicrosPerRequest)} µs CPU/request${result.errors || result.non2xx ? `, ${result.errors} errors, ${result.non2xx} non-2xx` : ""}`);
    return result;
  }) as { [K in keyof T]: LoadResult };
}

/**
 * `rounds` rounds of `measure(i)` for each of `count` targets, interleaved (target 0, 1, …, then again), so that a
 * busy spell of the machine hits every target alike.
 * @returns each target's results, in round order
 */
async function interleaved<R>(count: number, rounds: number, measure: (i: number) => Promise<R>): Promise<R[][]> {
  const out: R[][] = Array.from({ length: count }, () => []);
  for (let r = 0; r < rounds; r++) for (let i = 0; i < count; i++) out[i]!.push(await measure(i));
  return out;
}

/** Latency of one target at a fixed request rate, from {@link latencyAtRate}. */
export interface RateLatency {
  label: string;
  /** Requests per second sent (the same for every target compared). */
  rate: number;
  sent: number;
  /** Median over rounds of each round's p50 / p99, milliseconds (µs resolution). */
  p50: number;
  p99: number;
  /** Each round's p99, milliseconds, in round order (rounds are interleaved across targets, so round r of two targets ran back to back). */
  p99ByRound: number[];
  errors: number;
  non2xx: number;
}

/**
 * One open-loop round: `rate` requests per second for `seconds`, sent on
 * schedule (a 1 ms timer sends what is due) whether or not earlier ones have
 * been answered (over at most {@link CONNECTIONS} connections of `pool`, the
 * rest queued there, so a server that falls behind is charged for the queue),
 * each request's latency counted from when it was handed to undici — not from
 * the timer's tick, whose lateness would add the same to every server —
 * into a histogram in microseconds.
 */
async function openLoopRound(pool: Pool, t: LoadTarget, rate: number, seconds: number): Promise<{ p50: number; p99: number; sent: number; errors: number; non2xx: number }> {
  const hist = createHistogram();
  const total = Math.round(rate * seconds);
  const headers = { ...t.headers, ...(t.body ? { "content-type": "application/json" } : {}) };
  const answers: Array<Promise<void>> = [];
  let sent = 0;
  let errors = 0;
  let non2xx = 0;
  const t0 = performance.now();
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000));
      for (; sent < due; sent++) {
        const sentAt = performance.now();
        const path = t.paths[sent % t.paths.length]!;
        answers.push(
          pool.request({ origin: t.url, path, method: (t.method ?? "GET") as "GET", headers, ...(t.body ? { body: t.body } : {}) }).then(
            async (r) => {
              await r.body.dump();
              if (r.statusCode >= 300) non2xx++;
              hist.record(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
            },
            () => void errors++,
          ),
        );
      }
      if (sent >= total) {
        clearInterval(timer);
        done();
      }
    }, 1);
  });
  await Promise.all(answers);
  return { p50: hist.percentile(50) / 1000, p99: hist.percentile(99) / 1000, sent, errors, non2xx };
}

/**
 * Latency at equal load: every target driven at the same fixed `rate` (open
 * loop, see {@link openLoopRound}), interleaved in `rounds` rounds of `seconds`
 * each after a 1 s warm-up per target. Below saturation a closed loop's p99
 * follows throughput (50 connections queue behind the slower server); this
 * reads what a caller below the proxy's capacity sees added to each call.
 */
export async function latencyAtRate<T extends LoadTarget[]>(targets: [...T], rate: number, seconds: number, rounds: number): Promise<{ [K in keyof T]: RateLatency }> {
  // One pool per target for all its rounds: connections are opened in the warm-up, not in a measured round.
  const pools = targets.map((t) => new Pool(new URL(t.url).origin, { connections: CONNECTIONS }));
  try {
    for (const [i, t] of targets.entries()) await withTimeout(openLoopRound(pools[i]!, t, rate, 1), 60_000, `${t.label} warm-up at ${fmt(rate)} req/s`);
    const runs = await interleaved(targets.length, rounds, (i) => withTimeout(openLoopRound(pools[i]!, targets[i]!, rate, seconds), (seconds + 60) * 1000, `${targets[i]!.label} at ${fmt(rate)} req/s`));
    return targets.map((t, i) => {
      const own = runs[i]!;
      const result = { label: t.label, rate, sent: sumOf(own, (r) => r.sent), p50: median(own.map((r) => r.p50)), p99: median(own.map((r) => r.p99)), p99ByRound: own.map((r) => r.p99), errors: sumOf(own, (r) => r.errors), non2xx: sumOf(own, (r) => r.non2xx) };
      progress(`${t.label} at ${fmt(rate)} req/s: p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms (rounds: ${own.map((r) => r.p99.toFixed(2)).join(" / ")})${result.errors || result.non2xx ? `, ${result.errors} errors, ${result.non2xx} non-2xx` : ""}`);
      return result;
    }) as { [K in keyof T]: RateLatency };
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
}

/** The three servers, each its own process. */
export interface BenchServers {
  upstream: string;
  bare: string;
  gk: string;
  apiKey: string;
  ids: string[];
  gkChild: BenchChild;
  bareChild: BenchChild;
  stop(): Promise<void>;
}

/**
 * Start the upstream, the bare pass-through and grantkeeper (its SQLite file in the scratch directory).
 * @param name scratch file name prefix
 */
export async function startServers(name: string): Promise<BenchServers> {
  const children: BenchChild[] = [];
  try {
    const up = new BenchChild("proxyServer.js", "upstream");
    children.push(up);
    up.send({ type: "start", mode: "upstream" });
    const upstream = `http://127.0.0.1:${String((await up.next("listening", 20_000)).port)}`;
    // GK_BENCH_PROFILE=1 writes CPU profiles of the pass-through and grantkeeper processes (node --cpu-prof) into the scratch directory.
    const profile = process.env.GK_BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${scratchDir()}`] : [];
    const bareChild = new BenchChild("proxyServer.js", "bare pass-through", profile);
    children.push(bareChild);
    bareChild.send({ type: "start", mode: "bare", upstream });
    const bare = `http://127.0.0.1:${String((await bareChild.next("listening", 20_000)).port)}`;
    const gkChild = new BenchChild("proxyServer.js", "grantkeeper", profile);
    children.push(gkChild);
    gkChild.send({ type: "start", mode: "grantkeeper", upstream, grants: GRANTS, file: join(scratchDir(), `${name}.db`) });
    const started = await gkChild.next("listening", 60_000);
    return {
      upstream,
      bare,
      gk: `http://127.0.0.1:${String(started.port)}`,
      apiKey: String(started.apiKey),
      ids: started.ids as string[],
      gkChild,
      bareChild,
      stop: async () => void (await Promise.all(children.map((c) => c.stop()))),
    };
  } catch (e) {
    await Promise.all(children.map((c) => c.stop()));
    throw e;
  }
}

/** Stream `bytes` through grantkeeper's proxy; the peak RSS growth of the grantkeeper process. */
async function streamThrough(s: BenchServers, bytes: number): Promise<{ growth: number; seconds: number; received: number }> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  async function* body(): AsyncGenerator<Buffer> {
    for (let sent = 0; sent < bytes; sent += chunk.length) yield sent + chunk.length <= bytes ? chunk : chunk.subarray(0, bytes - sent);
  }
  s.gkChild.send({ type: "rss:reset" });
  const base = Number((await s.gkChild.next("rss:ok", 10_000)).rss);
  const t0 = performance.now();
  const r = await withTimeout(
    request(`${s.gk}/v1/proxy/${s.ids[0]!}/sink`, { method: "POST", headers: { authorization: `Bearer ${s.apiKey}`, "content-type": "application/octet-stream", "content-length": String(bytes) }, body: Readable.from(body()) }),
    120_000,
    "100 MB stream",
  );
  const answer = (await r.body.json()) as { bytes?: number };
  const seconds = (performance.now() - t0) / 1000;
  s.gkChild.send({ type: "rss:peak" });
  const peak = Number((await s.gkChild.next("rss:ok", 10_000)).peak);
  if (r.statusCode !== 200) throw new Error(`100 MB stream answered ${r.statusCode}`);
  return { growth: peak - base, seconds, received: answer.bytes ?? 0 };
}

function row(ours: LoadResult, base: LoadResult): string[] {
  return [ours.label, fmt(ours.rps), String(ours.p50), String(ours.p99), fmt(ours.cpuMicrosPerRequest), base.label, fmt(base.rps), String(base.p99), fmt(base.cpuMicrosPerRequest), ratio(ours.rps, base.rps), ratio(base.cpuMicrosPerRequest, ours.cpuMicrosPerRequest), `${fmt(ours.p99 - base.p99)} ms`];
}

/** Run the proxy benchmark. */
export async function runProxy(opts: BenchOptions): Promise<BenchReport> {
  // 2 s rounds, many of them: this machine's speed drifts within a minute, and each round pairs the two targets.
  const seconds = opts.quick ? 3 : 20;
  const rounds = opts.quick ? 3 : 10;
  const s = await startServers("proxy");
  try {
    const auth = { authorization: `Bearer ${s.apiKey}` };
    const gkPaths = s.ids.map((id) => `/v1/proxy/${id}/items`);
    const barePaths = ["/api/items"];
    const get: [LoadTarget, LoadTarget] = [
      { label: "bare undici pass-through, GET", url: s.bare, child: s.bareChild, paths: barePaths },
      { label: "grantkeeper proxy, GET", url: s.gk, child: s.gkChild, headers: auth, paths: gkPaths },
    ];
    const post: [LoadTarget, LoadTarget] = [
      { label: "bare undici pass-through, POST 1 KiB", url: s.bare, child: s.bareChild, method: "POST", body: BODY_1K, paths: barePaths },
      { label: "grantkeeper proxy, POST 1 KiB", url: s.gk, child: s.gkChild, method: "POST", headers: auth, body: BODY_1K, paths: gkPaths },
    ];
    const [bareGet, gkGet] = await compare(get, seconds, rounds);
    const [barePost, gkPost] = await compare(post, seconds, rounds);
    // Equal load: both servers at a third of grantkeeper's own maximum (just measured), so neither is saturated even
    // in a slow spell of this machine (at half, grantkeeper fell behind in two rounds of one run: p50 175 ms).
    // Seven rounds: a stall of this shared host lands in one round of one server (a 28 ms p99 in one run of three
    // rounds, 0.03–1.2 ms in four re-runs); the median of seven outvotes up to three such rounds.
    const [openSeconds, openRounds] = opts.quick ? [1, 1] : [3, 7];
    const atRate = [await latencyAtRate(get, Math.round(gkGet.rps / 3), openSeconds, openRounds), await latencyAtRate(post, Math.round(gkPost.rps / 3), openSeconds, openRounds)];
    const stream = await streamThrough(s, STREAM_BYTES);
    progress(`100 MB through the proxy: ${stream.seconds.toFixed(1)} s, grantkeeper RSS growth ${mb(stream.growth)} MB`);
    const ratios = [gkGet.rps / bareGet.rps, gkPost.rps / barePost.rps];
    const added = [gkGet.p99 - bareGet.p99, gkPost.p99 - barePost.p99];
    const clean = [bareGet, gkGet, barePost, gkPost, ...atRate.flat()].every((r) => r.errors === 0 && r.non2xx === 0);
    const goalMet = clean && ratios.every((r) => r >= 0.7) && added.every((a) => a <= 2) && stream.growth < 64 * 2 ** 20 && stream.received === STREAM_BYTES;
    const markdown = [
      `Goal (issue 16): \`GET|POST /v1/proxy/{id}/…\` ≥ 0.7× a bare undici \`Pool.stream\` pass-through to the same upstream, added p99 ≤ 2 ms, 1 KiB bodies, ${CONNECTIONS} connections (autocannon, ${seconds} s each in ${rounds} interleaved rounds after a 1 s warm-up, over ${GRANTS} grants); a 100 MB body streamed through with RSS growth < 64 MB.`,
      "Upstream, pass-through and grantkeeper each run in their own process; grantkeeper is served as `grantkeeper serve` serves it (SQLite, logging at info).",
      "",
      table(["grantkeeper", "req/s", "p50 ms", "p99 ms", "CPU/req µs", "baseline (same run)", "req/s", "p99 ms", "CPU/req µs", "ratio req/s", "ratio CPU", "added p99"], [row(gkGet, bareGet), row(gkPost, barePost)]),
      "",
      `**At equal load, below saturation** (reference): the same two requests sent open-loop at a fixed rate — a third of grantkeeper's own maximum above, the same rate for both servers, on schedule whether or not earlier requests were answered (up to ${CONNECTIONS} connections, undici in the bench process), each latency counted from when its request was handed to undici (requests beyond the connections queue there and are charged for it), µs resolution; ${openRounds} interleaved round(s) of ${openSeconds} s per server after a 1 s warm-up, medians of the rounds; the last column pairs each round of grantkeeper with the bare round run just before it, so a stall of the shared host shows as one outlying round. Above, both servers run saturated (${CONNECTIONS} connections, no pause), so their p99 follows throughput: the ${CONNECTIONS} requests in flight queue behind the slower server. The goal's verdict is taken from the saturated reading above.`,
      "",
      table(
        ["request", "rate (req/s)", "bare p50 ms", "bare p99 ms", "grantkeeper p50 ms", "grantkeeper p99 ms", "added p50", "added p99", "added p99 by round (ms)"],
        atRate.map(([bare, gk]) => [
          gk.label.replace("grantkeeper proxy, ", ""),
          fmt(gk.rate),
          bare.p50.toFixed(2),
          bare.p99.toFixed(2),
          gk.p50.toFixed(2),
          gk.p99.toFixed(2),
          `${(gk.p50 - bare.p50).toFixed(2)} ms`,
          `${(gk.p99 - bare.p99).toFixed(2)} ms`,
          gk.p99ByRound.map((p, r) => (p - bare.p99ByRound[r]!).toFixed(2)).join(" / "),
        ]),
      ),
      "",
      `100 MB request body through \`POST /v1/proxy/{id}/sink\`: ${stream.seconds.toFixed(1)} s, upstream received ${fmt(stream.received)} bytes, grantkeeper's peak RSS growth **${mb(stream.growth)} MB** (sampled every 20 ms).`,
      clean ? "" : "\n**Errors or non-2xx answers during the load: see the progress output.**",
    ].join("\n");
    return { name: "proxy", title: "Proxy vs a bare undici pass-through", goalMet, markdown };
  } finally {
    await s.stop();
  }
}
