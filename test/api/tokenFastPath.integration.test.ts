/**
 * `POST /v1/connections/{id}/token` on a socket is served by the fast path
 * (src/http/fastPaths.ts) when the request is authorized and has no body.
 * The caller must not be able to tell: every request here is sent raw over a
 * socket and the same request goes through the Hono app in process
 * (`app.request()`, where no fast path exists); status, problem, the token
 * and the headers that matter must be the same. Requests the fast path must
 * not take (no key, the key twice, a body, escapes, other methods) get the
 * app's own answers.
 */
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/domain/clock.js";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { createApp } from "../../src/http/app.js";
import { listen, type RunningServer } from "../../src/http/server.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";

const API_KEY = "token-fast-path-key";
const ACCESS_TOKEN = "at-fast-path-0123456789";
const NOW = Date.UTC(2026, 11, 5);

let db: TestDatabase;
let gk: Grantkeeper;
let app: ReturnType<typeof createApp>;
let server: RunningServer;
let fresh: string;
let expired: string;
const clock = new ManualClock(NOW);
const logLines: Array<Record<string, unknown>> = [];

interface Answer {
  status: number;
  body: unknown;
  headers: Record<string, string | undefined>;
}

const COMPARED = ["content-type", "cache-control", "pragma", "www-authenticate", "retry-after"];

function pick(get: (name: string) => string | undefined): Record<string, string | undefined> {
  return Object.fromEntries(COMPARED.map((h) => [h, get(h)]));
}

/** One raw exchange over the socket: target and headers byte for byte. */
function overSocket(method: string, target: string, headers: Array<[string, string]>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // A raw header list (to send one name twice) gets no defaults from Node: Host is ours to send.
    const flat = [["host", `127.0.0.1:${server.port}`], ...headers].flat();
    const req = httpRequest({ host: "127.0.0.1", port: server.port, method, path: target, headers: flat }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const h = res.headers;
        resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : undefined, headers: pick((n) => (h[n] === undefined ? undefined : String(h[n]))) });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The same request through the Hono app in process (no fast path there). */
async function inProcess(method: string, target: string, headers: Array<[string, string]>, body?: string): Promise<Answer> {
  const h = new Headers();
  for (const [k, v] of headers) h.append(k, v);
  const res = await app.request(target, { method, headers: h, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined, headers: pick((n) => res.headers.get(n) ?? undefined) };
}

const key: Array<[string, string]> = [["authorization", `Bearer ${API_KEY}`]];

beforeAll(async () => {
  db = await testDatabase();
  const logger = createLogger({ level: "info", destination: { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) } });
  gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: testKey(), clock, logger });
  // Nothing listens on port 1: a refresh fails at once, transiently.
  await gk.providers.put("acme", { authorizationEndpoint: "http://127.0.0.1:1/auth", tokenEndpoint: "http://127.0.0.1:1/token", clientId: "c", clientSecret: "s" });
  const store = (entityId: string, expiresInSeconds: number) =>
    gk.connections.storeGrant({ providerId: "acme", entityId, source: "import", tokens: { accessToken: ACCESS_TOKEN, tokenType: "Bearer", refreshToken: `rt-${entityId}`, expiresInSeconds } });
  fresh = (await store("fresh", 3600)).connection.id;
  expired = (await store("expired", 60)).connection.id;
  // Past the second grant's expiry: its token may not be handed out, and its refresh cannot succeed.
  clock.advance(120_000);
  app = createApp(gk, { apiKey: API_KEY });
  server = await listen(app, "127.0.0.1", 0, { logger });
});

afterAll(async () => {
  await server?.close();
  await gk?.close();
  await db?.cleanup();
});

describe("the token route's fast path", () => {
  it("answers a fresh token exactly as the app does, not cacheable, and logs the request", async () => {
    const target = `/v1/connections/${fresh}/token`;
    const socket = await overSocket("POST", target, key);
    expect(socket.status).toBe(200);
    expect(socket.body).toMatchObject({ accessToken: ACCESS_TOKEN, tokenType: "Bearer" });
    expect(socket.headers["cache-control"]).toBe("no-store");
    expect(socket.headers.pragma).toBe("no-cache");
    expect(socket).toEqual(await inProcess("POST", target, key));
    // Query strings and an empty body change nothing.
    expect(await overSocket("POST", `${target}?x=1`, key)).toEqual(socket);
    expect(await overSocket("POST", target, [...key, ["content-length", "0"]], "")).toEqual(socket);
    const line = logLines.findLast((l) => l.msg === "http request" && l.path === target);
    expect(line).toMatchObject({ method: "POST", status: 200 });
    expect(JSON.stringify(logLines)).not.toContain(ACCESS_TOKEN);
  });

  it("answers the app's problems: an unknown or malformed id, a grant that cannot be refreshed", async () => {
    for (const id of ["conn_doesNotExist", "not-a-connection", "conn_!"]) {
      const target = `/v1/connections/${id}/token`;
      const socket = await overSocket("POST", target, key);
      expect(socket.status).toBe(404);
      expect(socket.body).toMatchObject({ code: "connection_not_found" });
      expect(socket.headers["content-type"]).toBe("application/problem+json");
      expect(socket).toEqual(await inProcess("POST", target, key));
    }
    const socket = await overSocket("POST", `/v1/connections/${expired}/token`, key);
    expect(socket.status).toBeGreaterThanOrEqual(400);
    expect(socket.headers["content-type"]).toBe("application/problem+json");
    expect(JSON.stringify(socket.body)).not.toContain(ACCESS_TOKEN);
    const app = await inProcess("POST", `/v1/connections/${expired}/token`, key);
    expect({ status: socket.status, code: (socket.body as { code: string }).code }).toEqual({ status: app.status, code: (app.body as { code: string }).code });
  });

  it("leaves to the app what the app must judge: no key, a wrong or doubled key, a body, escapes, other methods", async () => {
    const target = `/v1/connections/${fresh}/token`;
    const refused: Array<[string, string, Array<[string, string]>]> = [
      ["POST", target, []],
      ["POST", target, [["authorization", "Bearer wrong"]]],
      ["POST", target, [...key, ...key]],
      ["POST", target, [["authorization", `Basic ${API_KEY}`]]],
    ];
    for (const [method, t, headers] of refused) {
      const socket = await overSocket(method, t, headers);
      expect(socket.status).toBe(401);
      expect(JSON.stringify(socket.body)).not.toContain(ACCESS_TOKEN);
    }
    // Escaped or non-canonical spellings of the same route: the app's first middleware refuses them (in process, the URL
    // parser would have normalised them away, so there is nothing to compare with).
    for (const t of [`/v1/connections/${fresh.replace("conn_", "conn%5F")}/token`, `/v1/connections/${fresh}/./token`, `/v1/connections//${fresh}/token`]) {
      const socket = await overSocket("POST", t, key);
      expect(socket.status, t).toBe(400);
      expect(socket.body).toMatchObject({ code: "non_canonical_path" });
    }
    // Not the route at all.
    const slash = await overSocket("POST", `${target}/`, key);
    expect(slash).toMatchObject({ status: 404, body: { code: "not_found" } });
    expect(slash).toEqual(await inProcess("POST", `${target}/`, key));
    // A body goes through the app's limit, then the same handler.
    const withBody = await overSocket("POST", target, [...key, ["content-type", "application/json"]], "{}");
    expect(withBody).toEqual(await inProcess("POST", target, [...key, ["content-type", "application/json"]], "{}"));
    expect(withBody.status).toBe(200);
    // GET is not a route.
    expect((await overSocket("GET", target, key)).status).toBe(404);
  });
});
