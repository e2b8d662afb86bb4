/**
 * Benchmark "fresh tokens at the speed of /healthz" (issue 16 goal 2).
 *
 * grantkeeper served as `grantkeeper serve` serves it (bench/proxyServer.ts,
 * its own process), 50 imported grants expiring in an hour. autocannon (in
 * this process) drives `POST /v1/connections/{id}/token` over the 50 grants
 * and, as the baseline in the same run, `GET /healthz` of the same server,
 * 50 connections each. The library call `gk.connections.ensureFresh` is
 * measured in the server's process (50 concurrent loops) and set against the
 * same baseline.
 *
 * Goal: both ≥ 0.7× `GET /healthz`.
 */
import { fmt, progress, ratio, table, type BenchOptions, type BenchReport } from "./common.js";
import { compare, CONNECTIONS, GRANTS, startServers } from "./proxy.js";

/** Run the fresh-token benchmark. */
export async function runFreshTokens(opts: BenchOptions): Promise<BenchReport> {
  const seconds = opts.quick ? 3 : 10;
  const s = await startServers("fresh-tokens");
  try {
    const rounds = opts.quick ? 3 : 5;
    const [healthz, token] = await compare(
      [
        { label: "GET /healthz", url: s.gk, child: s.gkChild, paths: ["/healthz"] },
        { label: "POST /v1/connections/{id}/token", url: s.gk, child: s.gkChild, method: "POST", headers: { authorization: `Bearer ${s.apiKey}` }, paths: s.ids.map((id) => `/v1/connections/${id}/token`) },
      ],
      seconds,
      rounds,
    );
    s.gkChild.send({ type: "ensureFresh", ms: seconds * 1000, concurrency: CONNECTIONS });
    const calls = Number((await s.gkChild.next("ensureFresh:ok", (seconds + 30) * 1000)).calls);
    const perSecond = calls / seconds;
    progress(`gk.connections.ensureFresh: ${fmt(perSecond)} calls/s`);
    const clean = [healthz, token].every((r) => r.errors === 0 && r.non2xx === 0);
    const goalMet = clean && token.rps / healthz.rps >= 0.7 && perSecond / healthz.rps >= 0.7;
    const markdown = [
      `Goal (issue 16): \`POST /v1/connections/{id}/token\` and \`gk.connections.ensureFresh\` ≥ 0.7× \`GET /healthz\` of the same server, same run; ${CONNECTIONS} connections (autocannon; after a 1 s warm-up each, ${rounds} interleaved rounds, ${seconds} s per target in all), ${GRANTS} grants; an expired token is never handed out and another instance's refresh is seen within one \`refresh.marginSeconds\` (test/e2e/freshTokens.integration.test.ts).`,
      "\"CPU/req\" is the server process's user + system CPU time per request (less sensitive to other load on the machine than req/s); its ratio is baseline ÷ ours.",
      "",
      table(
        ["grantkeeper", "per second", "p50 ms", "p99 ms", "CPU/req µs", "ratio to GET /healthz (req/s)", "ratio (CPU)"],
        [
          [healthz.label, fmt(healthz.rps), String(healthz.p50), String(healthz.p99), fmt(healthz.cpuMicrosPerRequest), "1.00× (baseline)", "1.00×"],
          [token.label, fmt(token.rps), String(token.p50), String(token.p99), fmt(token.cpuMicrosPerRequest), ratio(token.rps, healthz.rps), ratio(healthz.cpuMicrosPerRequest, token.cpuMicrosPerRequest)],
          [`gk.connections.ensureFresh (in process, ${CONNECTIONS} concurrent loops)`, fmt(perSecond), "", "", "", ratio(perSecond, healthz.rps), ""],
        ],
      ),
      clean ? "" : "\n**Errors or non-2xx answers during the load: see the progress output.**",
    ].join("\n");
    return { name: "freshTokens", title: "Fresh tokens vs GET /healthz", goalMet, markdown };
  } finally {
    await s.stop();
  }
}
