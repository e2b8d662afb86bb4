/**
 * The servers of the proxy and fresh-token benchmarks, each in its own child
 * process (see {@link ../bench/proxy.ts}) so that each one's CPU and RSS are
 * its own:
 *
 * - `upstream`: the provider's API — node:http answering `GET /api/…` and
 *   `POST /api/…` with 1 KiB, and `POST /api/sink` by reading a body of any
 *   size and answering its length.
 * - `bare`: the baseline pass-through — node:http forwarding every request to
 *   the upstream with undici's `Pool.stream`, no processing at all.
 * - `grantkeeper`: `createGrantkeeper` on a SQLite file + `createApp` served by
 *   `listen` (what `grantkeeper serve` runs), logging at info to /dev/null,
 *   with the `bench` provider's `apiBaseUrl` at the upstream and `grants`
 *   imported grants (expiring in an hour).
 *
 * IPC: `start {mode, upstream?, grants?, file?}` → `listening {port, apiKey?, ids?}`;
 * `rss:reset` → `rss:ok {rss}` (starts sampling the peak every 20 ms);
 * `rss:peak` → `rss:ok {rss, peak}`; `ensureFresh {ms, concurrency}` →
 * `ensureFresh:ok {calls}` (the library call, in process); `cpu` → `cpu:ok {micros}` (user + system
 * CPU time of this process so far, µs). Exits when the parent goes away.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Pool } from "undici";
import { createGrantkeeper, type Grantkeeper } from "../src/grantkeeper.js";
import { createApp } from "../src/http/app.js";
import { listen } from "../src/http/server.js";
import { bufferedDestination } from "../src/cli/runtime.js";
import { createLogger } from "../src/telemetry/logger.js";
import { benchKey, parent, removeSqlite, type ChildMessage } from "./common.js";

/** The 1 KiB every upstream answer carries. */
const ANSWER = Buffer.from(JSON.stringify({ data: "x".repeat(1024 - 11) }));

let peak = 0;
let sampler: NodeJS.Timeout | undefined;
let gk: Grantkeeper | undefined;

function upstream(): Promise<number> {
  const server = createServer((req, res) => {
    let bytes = 0;
    req.on("data", (c: Buffer) => (bytes += c.length));
    req.on("end", () => {
      if (req.url?.startsWith("/api/sink")) {
        const body = JSON.stringify({ bytes });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "content-length": ANSWER.length }).end(ANSWER);
    });
  });
  server.keepAliveTimeout = 60_000;
  return listenOn(server);
}

function bare(upstreamOrigin: string): Promise<number> {
  const pool = new Pool(upstreamOrigin, { connections: 64 });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const hasBody = req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
    pool
      .stream(
        { path: req.url!, method: req.method as "GET", headers: { "content-type": req.headers["content-type"] ?? "application/octet-stream", ...(req.headers["content-length"] ? { "content-length": req.headers["content-length"] } : {}) }, body: hasBody ? req : null },
        ({ statusCode, headers }) => {
          res.writeHead(statusCode, headers as Record<string, string>);
          return res;
        },
      )
      .catch(() => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
  });
  server.keepAliveTimeout = 60_000;
  return listenOn(server);
}

function listenOn(server: ReturnType<typeof createServer>): Promise<number> {
  return new Promise((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: 1024 }, () => resolve((server.address() as { port: number }).port)));
}

async function grantkeeper(upstreamOrigin: string, grants: number, file: string): Promise<{ port: number; apiKey: string; ids: string[] }> {
  removeSqlite(file);
  // Lines written as `grantkeeper serve` writes them (cliLogger's buffered destination), into /dev/null.
  const logger = createLogger({ level: "info", destination: bufferedDestination("/dev/null") });
  gk = await createGrantkeeper({
    databaseUrl: `sqlite:${file}`,
    encryptionKey: benchKey(),
    logger,
    providers: { bench: { displayName: "bench", authorizationEndpoint: `${upstreamOrigin}/auth`, tokenEndpoint: `${upstreamOrigin}/token`, clientId: "bench-client", clientSecret: "bench-secret", apiBaseUrl: `${upstreamOrigin}/api` } },
    instanceId: "bench-proxy",
  });
  const ids: string[] = [];
  for (let i = 0; i < grants; i++) {
    const tokens = { accessToken: randomBytes(24).toString("base64url"), tokenType: "Bearer", refreshToken: randomBytes(24).toString("base64url"), expiresInSeconds: 3600 };
    ids.push((await gk.connections.storeGrant({ providerId: "bench", entityId: `entity-${i}`, source: "import", tokens })).connection.id);
  }
  const apiKey = `gk_bench_${randomBytes(12).toString("hex")}`;
  const server = await listen(createApp(gk, { apiKey }), "127.0.0.1", 0, { logger, limits: { keepAliveTimeoutMs: 60_000, requestTimeoutMs: 120_000 } });
  return { port: server.port, apiKey, ids };
}

/** `concurrency` loops calling `gk.connections.ensureFresh` over `ids` for `ms` milliseconds. */
async function ensureFreshLoop(ids: string[], ms: number, concurrency: number): Promise<number> {
  let calls = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, k) => {
      for (let i = k; performance.now() < end; i += concurrency) {
        await gk!.connections.ensureFresh(ids[i % ids.length]!);
        calls++;
      }
    }),
  );
  return calls;
}

let ids: string[] = [];

process.on("message", (m: ChildMessage) => {
  void (async () => {
    if (m.type === "start") {
      const mode = String(m.mode);
      if (mode === "upstream") await parent.send({ type: "listening", port: await upstream() });
      else if (mode === "bare") await parent.send({ type: "listening", port: await bare(String(m.upstream)) });
      else {
        const started = await grantkeeper(String(m.upstream), Number(m.grants), String(m.file));
        ids = started.ids;
        await parent.send({ type: "listening", ...started });
      }
    } else if (m.type === "rss:reset") {
      clearInterval(sampler);
      peak = process.memoryUsage().rss;
      sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      await parent.send({ type: "rss:ok", rss: peak });
    } else if (m.type === "rss:peak") {
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().rss);
      await parent.send({ type: "rss:ok", rss: process.memoryUsage().rss, peak });
    } else if (m.type === "cpu") {
      const u = process.cpuUsage();
      await parent.send({ type: "cpu:ok", micros: u.user + u.system });
    } else if (m.type === "ensureFresh") {
      await parent.send({ type: "ensureFresh:ok", calls: await ensureFreshLoop(ids, Number(m.ms), Number(m.concurrency)) });
    }
  })().catch((e: unknown) => parent.fail(e));
});
process.on("disconnect", () => process.exit(0));
