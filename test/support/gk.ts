/**
 * A grantkeeper under test: `createGrantkeeper` + `createApp` served on a
 * real 127.0.0.1 socket (what `grantkeeper serve` does), with a manual clock,
 * a JSON log captured to a file, and a fetch that records every token the
 * authorization server issues (so tests can grep the logs for them).
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import pino from "pino";
import { ManualClock } from "../../src/domain/clock.js";
import type { RefreshPolicy } from "../../src/domain/policy.js";
import { createGrantkeeper, type Grantkeeper, type GrantkeeperOptions } from "../../src/grantkeeper.js";
import { createApp, type AppOptions } from "../../src/http/app.js";
import { listen, type RunningServer, type ServerLimits } from "../../src/http/server.js";
import { REDACT_PATHS } from "../../src/telemetry/logger.js";
import { testKey, type TestDatabase } from "./backend.js";

/** A free 127.0.0.1 port (released before returning; fine for tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** What {@link startGrantkeeper} returns. */
export interface GrantkeeperUnderTest {
  gk: Grantkeeper;
  server: RunningServer;
  url: string;
  apiKey: string;
  encryptionKey: string;
  clock: ManualClock;
  /** Every secret value seen: issued tokens, keys. */
  secrets: Set<string>;
  /** Everything logged so far. */
  logText(): string;
  /** Call the API with the key; JSON in, `{status, body, headers}` out. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/**
 * Start grantkeeper on `db` with a recording fetch.
 * @param beforeFetch optional hook run before each outbound request (to simulate another instance)
 */
export async function startGrantkeeper(
  db: TestDatabase,
  opts: {
    refresh?: Partial<RefreshPolicy>;
    clock?: ManualClock;
    instanceId?: string;
    encryptionKey?: string;
    beforeFetch?: (url: string) => Promise<void>;
    logName?: string;
    extra?: Partial<GrantkeeperOptions>;
    /** App options besides the key (e.g. `maxBodyBytes`, as `serve` passes `jobs.maxBodyBytes`). */
    app?: Omit<AppOptions, "apiKey">;
    /** Server limits (defaults otherwise); with them, lingering closes and proxied uploads kept past requestTimeoutMs are timed on `clock`. */
    limits?: Partial<ServerLimits>;
  } = {},
): Promise<GrantkeeperUnderTest> {
  const clock = opts.clock ?? new ManualClock(Date.now());
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const apiKey = `gk_test_${Math.random().toString(36).slice(2)}`;
  const encryptionKey = opts.encryptionKey ?? testKey();
  const secrets = new Set<string>([apiKey, encryptionKey]);
  const logFile = join(db.dir, opts.logName ?? `gk-${port}.log`);
  // Written synchronously: logText() reads the file, and a line still queued in a stream would be missing (a flaky assertion).
  const logStream = pino.destination({ dest: logFile, sync: true });
  const logger = pino({ level: "debug", redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, logStream);
  const recordingFetch: typeof fetch = async (input, init) => {
    const target = typeof input === "string" ? input : input instanceof URL ? input.toString() : input.url;
    if (opts.beforeFetch) await opts.beforeFetch(target);
    const res = await fetch(input, init);
    if ((res.headers.get("content-type") ?? "").includes("json")) {
      // Read beside grantkeeper, not before it: the answer is handed over at its headers, as fetch does, so a body
      // that trickles in (slowBody.integration.test.ts) reaches grantkeeper's own timeout instead of stalling here.
      void res
        .clone()
        .json()
        .then(
          (json: unknown) => {
            const body = json as Record<string, unknown> | undefined;
            for (const k of ["access_token", "refresh_token", "id_token"]) if (typeof body?.[k] === "string") secrets.add(body[k] as string);
          },
          () => undefined,
        );
    }
    return res;
  };
  const gk = await createGrantkeeper({
    databaseUrl: db.url,
    encryptionKey,
    clock,
    fetch: recordingFetch,
    logger,
    publicUrl: url,
    random: () => 0.5,
    refresh: opts.refresh ?? {},
    ...(opts.instanceId ? { instanceId: opts.instanceId } : {}),
    ...opts.extra,
  });
  const app = createApp(gk, { ...opts.app, apiKey });
  const server = await listen(app, "127.0.0.1", port, { logger, ...(opts.limits ? { limits: opts.limits, clock } : {}) });
  return {
    gk,
    server,
    url,
    apiKey,
    encryptionKey,
    clock,
    secrets,
    logText: () => readFileSync(logFile, "utf8"),
    async api(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), accept: "application/json" },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
    },
    async close() {
      await server.close();
      await gk.close();
      logStream.end();
    },
  };
}
