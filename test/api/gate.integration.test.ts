/**
 * The API-key gate, tried as an attacker would, on a real socket (raw request
 * targets, exactly as a client sends them): every route the app registers —
 * read from the app itself, so a new route is covered without editing this
 * file — is called without the key under many spellings of its path. None may
 * answer below 400 or carry a token, and the store must not change. The
 * spellings include the `/%761/…` bypass (the gate compared encoded paths, the
 * router decoded them) and every other way to write one path twice.
 */
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/domain/clock.js";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { createApp } from "../../src/http/app.js";
import { isPublicHandler, isSessionHandler, isSessionOrKeyHandler } from "../../src/http/auth.js";
import { listen, type RunningServer } from "../../src/http/server.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { internalsOf } from "../../src/internals.js";

const API_KEY = "gate-test-key";
const ACCESS_TOKEN = "at-gate-secret-0123456789";

let db: TestDatabase;
let gk: Grantkeeper;
let app: ReturnType<typeof createApp>;
let server: RunningServer;
const ids: Record<string, string> = {};

/** One raw HTTP exchange: the target is sent byte for byte, no client-side normalization. */
function raw(method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; text: string; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: server.port, method, path: target, headers: { ...headers, ...(body !== undefined ? { "content-length": String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8"), ...(res.headers.location ? { location: res.headers.location } : {}) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Everything a request could change, read straight from the store. */
async function snapshot(): Promise<string> {
  const db = internalsOf(gk).store.db;
  const [providers, connections, integrations, jobs, states, events, alerts] = await Promise.all([
    db.selectFrom("providers").selectAll().orderBy("id").execute(),
    db.selectFrom("connections").selectAll().orderBy("id").execute(),
    db.selectFrom("integrations").selectAll().orderBy("id").execute(),
    db.selectFrom("jobs").selectAll().orderBy("seq").execute(),
    db.selectFrom("oauth_states").selectAll().orderBy("state_hash").execute(),
    db.selectFrom("connection_events").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
    db.selectFrom("alerts").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return JSON.stringify({ providers, connections, integrations, jobs, states, events: Number(events.n), alerts: Number(alerts.n) });
}

/** A concrete path for a route pattern, with real ids so a gate failure would reach real data. */
function concrete(pattern: string): string {
  return pattern
    .replace(/:connectionId|(?<=\/connections\/):id/g, ids.connection!)
    .replace(/(?<=\/integrations\/):id|:integrationId/g, ids.integration!)
    .replace(/(?<=\/jobs\/):id/g, ids.job!)
    .replace(/:providerId/g, "acme")
    .replace(/\*$/g, "records");
}

/**
 * At least ten other spellings of `path`: percent-encoded unreserved
 * characters in the first and a later segment, encoded and doubled slashes,
 * dot segments (plain and encoded), case changes, a backslash, an encoded NUL
 * and the absolute-form request target.
 */
function spellings(path: string): string[] {
  const segs = path.split("/").slice(1);
  const first = segs[0]!;
  const rest = segs.slice(1).join("/");
  const tail = rest ? `/${rest}` : "";
  const enc = (s: string, i: number) => s.slice(0, i) + "%" + s.charCodeAt(i).toString(16).toUpperCase() + s.slice(i + 1);
  const out = [
    `/${enc(first, 0)}${tail}`,
    `/${enc(first, first.length - 1)}${tail}`,
    `/${enc(enc(first, 0), 3)}${tail}`,
    `/${first.toLowerCase() === first ? first.toUpperCase() : first.toLowerCase()}${tail}`,
    `//${first}${tail}`,
    `/${first}/${tail ? `/${rest}` : ""}`,
    `/./${first}${tail}`,
    `/x/../${first}${tail}`,
    `/${first}/%2E${tail}`,
    `/${first}/%2e%2e/${first}${tail}`,
    `/%2F${first}${tail}`,
    `/${first}%2F${rest}`,
    `/${first}\\${rest}`,
    `/${first}%00${tail}`,
    `http://127.0.0.1:${server.port}/${enc(first, 0)}${tail}`,
  ];
  if (segs.length > 1) out.push(`/${first}/${enc(segs[1]!, 0)}${segs.length > 2 ? `/${segs.slice(2).join("/")}` : ""}`);
  return [...new Set(out)].filter((s) => s !== path);
}

/** Routes as the app registered them; the middleware mount points are not routes. `isSession`: a dashboard page (session cookie, not the key). */
function registeredRoutes(): Array<{ method: string; path: string; isPublic: boolean; isSession: boolean; orKey: boolean }> {
  const seen = new Set<string>();
  const out: Array<{ method: string; path: string; isPublic: boolean; isSession: boolean; orKey: boolean }> = [];
  for (const r of app.routes) {
    if (r.path === "*" || r.path === "/v1/*" || r.path === "/dashboard/*") continue;
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ method: r.method === "ALL" ? "GET" : r.method, path: r.path, isPublic: isPublicHandler(r.handler), isSession: isSessionHandler(r.handler), orKey: isSessionOrKeyHandler(r.handler) });
  }
  return out;
}

/** The dashboard's refusal without a session: a GET is sent to the sign-in page, anything else is 401. */
function refusedBySessionGate(method: string, res: { status: number; location?: string }): boolean {
  return method === "GET" || method === "HEAD" ? res.status === 303 && res.location === "/dashboard/sign-in" : res.status === 401;
}

beforeAll(async () => {
  db = await testDatabase();
  gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: testKey(), clock: new ManualClock(Date.UTC(2026, 11, 3)), publicUrl: "http://127.0.0.1:7420", fetch: async () => new Response("no outbound calls in this test", { status: 599 }) });
  app = createApp(gk, { apiKey: API_KEY });
  server = await listen(app, "127.0.0.1", 0);
  await gk.providers.put("acme", { authorizationEndpoint: "https://auth.example.com/authorize", tokenEndpoint: "https://auth.example.com/token", clientId: "c", clientSecret: "s", apiBaseUrl: "https://api.example.com/v2" });
  const { connection } = await gk.connections.storeGrant({ providerId: "acme", entityId: "e1", source: "import", tokens: { accessToken: ACCESS_TOKEN, tokenType: "Bearer", refreshToken: "rt-gate-secret", expiresInSeconds: 3600 } });
  ids.connection = connection.id;
  const { integration } = await gk.integrations.create({ name: "gate", entityId: "e1", connectionIds: [connection.id], webhook: { signing: "github", secret: "gate-webhook-secret" } });
  ids.integration = integration.id;
  ids.job = "job_000000000000000000000000";
}, 60_000);

afterAll(async () => {
  await server?.close();
  await gk?.close();
  await db?.cleanup();
});

describe("the API-key gate", () => {
  it("knows the public routes by name, and every other route is protected", () => {
    const routes = registeredRoutes();
    expect(routes.length).toBeGreaterThan(25);
    expect(routes.filter((r) => r.isPublic).map((r) => `${r.method} ${r.path}`).sort()).toEqual(
      ["GET /healthz", "GET /metrics", "GET /openapi.json", "GET /readyz", "GET /v1/connect/:providerId", "GET /v1/oauth/callback", "POST /v1/webhooks/:integrationId", "GET /dashboard/assets/:file", "GET /dashboard/sign-in", "POST /dashboard/sign-in"].sort(),
    );
    // The dashboard's pages and forms need its session; none is both public and a session route.
    const session = routes.filter((r) => r.isSession).map((r) => `${r.method} ${r.path}`);
    expect(session).toEqual(expect.arrayContaining(["GET /", "GET /dashboard/connections", "POST /dashboard/connections/:id/reconnect", "POST /dashboard/integrations/:id/replay", "POST /dashboard/sign-out"]));
    expect(routes.filter((r) => r.isSession && r.isPublic)).toEqual([]);
    // Only the API reference page opens with either the session or the key.
    expect(routes.filter((r) => r.orKey).map((r) => `${r.method} ${r.path}`)).toEqual(["GET /reference"]);
  });

  it("refuses every dashboard route without a session — with nothing, a bearer key, or a forged cookie — and changes nothing", async () => {
    const before = await snapshot();
    for (const r of registeredRoutes().filter((x) => x.isSession && !x.orKey)) {
      const path = concrete(r.path);
      const attempts: Array<Record<string, string>> = [{}, { authorization: `Bearer ${API_KEY}` }, { cookie: "gk_dashboard=v1.AAAA.99999999999999.BBBB.CCCC" }];
      for (const headers of attempts) {
        const body = r.method === "POST" ? "_csrf=x" : undefined;
        const res = await raw(r.method, path, { ...headers, ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}) }, body);
        expect({ route: `${r.method} ${r.path}`, refused: refusedBySessionGate(r.method, res) }).toEqual({ route: `${r.method} ${r.path}`, refused: true });
        expect(res.text).not.toContain(ACCESS_TOKEN);
      }
    }
    expect(await snapshot()).toBe(before);
  });

  it("answers every protected route 401 without a key, and lets it through with one", async () => {
    const before = await snapshot();
    for (const r of registeredRoutes().filter((x) => !x.isPublic && (!x.isSession || x.orKey))) {
      const path = concrete(r.path);
      const res = await raw(r.method, path);
      expect({ route: `${r.method} ${r.path}`, status: res.status }).toEqual({ route: `${r.method} ${r.path}`, status: 401 });
      expect(res.text).not.toContain(ACCESS_TOKEN);
      const wrong = await raw(r.method, path, { authorization: `Bearer ${API_KEY}x` });
      expect({ route: `${r.method} ${r.path}`, status: wrong.status }).toEqual({ route: `${r.method} ${r.path}`, status: 401 });
      // HEAD is dispatched as GET, OPTIONS matches nothing: neither opens a route.
      for (const method of r.method === "GET" ? ["HEAD", "OPTIONS"] : ["OPTIONS"]) expect({ route: `${method} ${r.path}`, status: (await raw(method, path)).status }).toEqual({ route: `${method} ${r.path}`, status: 401 });
    }
    expect(await snapshot()).toBe(before);
    // The key opens the canonical spelling (so the 401s above were the gate, not a broken route).
    const token = await raw("POST", `/v1/connections/${ids.connection}/token`, { authorization: `Bearer ${API_KEY}` });
    expect(token.status).toBe(200);
    expect(JSON.parse(token.text).accessToken).toBe(ACCESS_TOKEN);
  });

  it("refuses every other spelling of every route, public or not, with or without a key: never < 400, never a token, nothing changed", async () => {
    const before = await snapshot();
    let tried = 0;
    for (const r of registeredRoutes()) {
      const variants = spellings(concrete(r.path));
      expect(variants.length).toBeGreaterThanOrEqual(10);
      for (const target of variants) {
        for (const headers of <Array<Record<string, string>>>[{}, { authorization: `Bearer ${API_KEY}` }]) {
          const body = r.method === "GET" || r.method === "DELETE" ? undefined : "{}";
          const res = await raw(r.method, target, { ...headers, ...(body ? { "content-type": "application/json" } : {}) }, body);
          tried++;
          if ((res.status < 400 && !(r.isSession && !r.orKey && refusedBySessionGate(r.method, res))) || res.text.includes(ACCESS_TOKEN)) throw new Error(`${r.method} ${target} answered ${res.status}: ${res.text.slice(0, 200)}`);
        }
      }
    }
    expect(tried).toBeGreaterThan(25 * 10 * 2);
    expect(await snapshot()).toBe(before);
  });

  it("names the reason of a non-canonical path and refuses it before routing", async () => {
    for (const [target, reason] of [
      ["/%761/connections", "encoded_unreserved"],
      ["/v1/connections%2Fx", "encoded_separator"],
      ["/v1/./connections", "dot_segment"],
      ["/v1//connections", "empty_segment"],
      ["/v1/connections%", "malformed_escape"],
    ] as const) {
      const res = await raw("GET", target, { authorization: `Bearer ${API_KEY}` });
      expect(res.status).toBe(400);
      expect(JSON.parse(res.text)).toMatchObject({ code: "non_canonical_path", reason });
    }
  });

  it("keeps the public routes public, each authenticated its own way", async () => {
    expect((await raw("GET", "/healthz")).status).toBe(200);
    expect((await raw("GET", "/v1/oauth/callback?state=nope&code=x")).status).toBe(400);
    expect((await raw("POST", `/v1/webhooks/${ids.integration}`, { "content-type": "application/json" }, "{}")).status).toBe(401);
    // A connect link without its token is server-side use: the key is required.
    expect((await raw("GET", "/v1/connect/acme?entityId=e1")).status).toBe(401);
    // With a connect session's token it is public (and with a made-up one, refused).
    const link = new URL((await gk.connectSessions.create({ providerId: "acme", entityId: "e1" })).connectUrl);
    expect((await raw("GET", link.pathname + link.search)).status).toBe(302);
    expect((await raw("GET", `/v1/connect/acme?connectToken=gkcs_${"x".repeat(43)}`)).status).toBe(401);
  });

  it("accepts any of several comma-separated keys (rotation) and none other", async () => {
    const rotating = createApp(gk, { apiKey: "old-key, new-key" });
    for (const key of ["old-key", "new-key"]) expect((await rotating.request("/v1/providers", { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    for (const key of ["old-key,new-key", "", "old", "new-key "]) {
      const status = (await rotating.request("/v1/providers", { headers: { authorization: `Bearer ${key}` } })).status;
      expect({ key, status }).toEqual({ key, status: key === "new-key " ? 200 : 401 });
    }
  });
});
