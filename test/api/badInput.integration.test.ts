/**
 * The HTTP API under bad input: every refusal is an RFC 9457
 * `application/problem+json` answer with a stable `code`, and a refused write
 * changes nothing. Runs in process (`app.request`) on SQLite and PostgreSQL.
 *
 * The provider "acme" points at https://auth.example.com, which must never be
 * called: the grantkeeper gets a fetch that records and refuses every call,
 * and each test asserts that none was made.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/domain/clock.js";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { createApp } from "../../src/http/app.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";

const API_KEY = "test-key";
const MAX_BODY = 4096;
const PUBLIC_URL = "http://127.0.0.1:7420";
const auth = { authorization: `Bearer ${API_KEY}` };

const acme = {
  authorizationEndpoint: "https://auth.example.com/authorize",
  tokenEndpoint: "https://auth.example.com/token",
  clientId: "c",
  clientSecret: "s",
};
const validImport = { providerId: "acme", entityId: "e1", accessToken: "at-1", refreshToken: "rt-1", expiresIn: 3600 };

let db: TestDatabase;
let gk: Grantkeeper;
let app: ReturnType<typeof createApp>;
let connectionId: string;
/** Every outbound call the grantkeeper tried (there must be none). */
const outbound: string[] = [];

type Json = Record<string, unknown>;

function request(path: string, init: RequestInit = {}): Promise<Response> {
  return Promise.resolve(app.request(path, init));
}

/** A request with the API key. */
function authed(path: string, init: RequestInit = {}): Promise<Response> {
  return request(path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } });
}

function sendJson(method: string, path: string, body: unknown): Promise<Response> {
  return authed(path, { method, headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

/** Assert an RFC 9457 answer with this status and code; returns the body. */
async function expectProblem(res: Response, status: number, code?: string): Promise<Json> {
  const text = await res.text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  expect(res.headers.get("content-type") ?? "").toMatch(/^application\/problem\+json/);
  const body = JSON.parse(text) as Json;
  expect(typeof body.type).toBe("string");
  expect(body.type).not.toBe("");
  expect(typeof body.title).toBe("string");
  expect(body.title).not.toBe("");
  expect(body.status).toBe(status);
  expect(typeof body.code).toBe("string");
  if (code !== undefined) expect(body.code).toBe(code);
  return body;
}

/** The error paths of a 422 `validation_failed`-style body. */
function errorPaths(body: Json): string[] {
  const errors = body.errors as Array<{ path: string; message: string }> | undefined;
  expect(Array.isArray(errors)).toBe(true);
  return errors!.map((e) => e.path);
}

/** What a refused write must leave untouched. */
async function snapshot(): Promise<{ connections: unknown; providers: unknown }> {
  const [c, p] = await Promise.all([authed("/v1/connections"), authed("/v1/providers")]);
  expect(c.status).toBe(200);
  expect(p.status).toBe(200);
  return { connections: await c.json(), providers: await p.json() };
}

/** Run a refused write and assert that nothing changed. */
async function unchangedBy(write: () => Promise<Response>): Promise<Response> {
  const before = await snapshot();
  const res = await write();
  // Read the body first so the snapshot after cannot race the handler.
  const copy = new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
  expect(await snapshot()).toEqual(before);
  return copy;
}

beforeAll(async () => {
  db = await testDatabase();
  gk = await createGrantkeeper({
    databaseUrl: db.url,
    encryptionKey: testKey(),
    clock: new ManualClock(),
    publicUrl: PUBLIC_URL,
    fetch: async (input: string | URL | Request) => {
      outbound.push(input instanceof Request ? input.url : String(input));
      throw new Error("outbound network is closed in this test");
    },
  });
  app = createApp(gk, { apiKey: API_KEY, maxBodyBytes: MAX_BODY });

  const p = await sendJson("PUT", "/v1/providers/acme", acme);
  expect(p.status).toBe(200);
  // Microsoft without templateParams: each connection brings its own tenant in connectionConfig.
  expect((await sendJson("PUT", "/v1/providers/ms-multi", { template: "microsoft", clientId: "c", clientSecret: "s" })).status).toBe(200);
  const c = await sendJson("POST", "/v1/connections", validImport);
  expect(c.status).toBe(201);
  connectionId = ((await c.json()) as { id: string }).id;
  expect(connectionId).toMatch(/^conn_/);
});

afterEach(() => {
  expect(outbound).toEqual([]);
});

afterAll(async () => {
  await gk?.close();
  await db?.cleanup();
});

describe("authentication", () => {
  it("answers 401 unauthorized with WWW-Authenticate when there is no Authorization", async () => {
    const res = await request("/v1/connections");
    expect(res.headers.get("www-authenticate") ?? "").toMatch(/^Bearer\b/);
    await expectProblem(res, 401, "unauthorized");
  });

  it("answers 401 for a wrong key, and for the right key in another scheme", async () => {
    const wrong = await request("/v1/connections", { headers: { authorization: "Bearer not-the-key" } });
    expect(wrong.headers.get("www-authenticate")).toBeTruthy();
    await expectProblem(wrong, 401, "unauthorized");
    const basic = await request("/v1/connections", { headers: { authorization: `Basic ${API_KEY}` } });
    await expectProblem(basic, 401, "unauthorized");
  });

  it("accepts Bearer with the right key", async () => {
    const res = await request("/v1/connections", { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { items: Array<{ id: string }> };
    expect(body.items.map((i) => i.id)).toEqual([connectionId]);
  });

  it("serves /healthz and /readyz without a key", async () => {
    const health = await request("/healthz");
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = await request("/readyz");
    expect(ready.status).toBe(200);
  });
});

describe("POST /v1/connections", () => {
  it("answers 400 malformed_json for a body that is not JSON", async () => {
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", '{"providerId": "acme", '));
    await expectProblem(res, 400, "malformed_json");
  });

  it("answers 415 unsupported_media_type for text/plain", async () => {
    const res = await unchangedBy(() => authed("/v1/connections", { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ ...validImport, entityId: "e-text" }) }));
    await expectProblem(res, 415, "unsupported_media_type");
  });

  it("answers 422 validation_failed naming accessToken when it is missing", async () => {
    const { accessToken: _omit, ...body } = { ...validImport, entityId: "e-missing" };
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", body));
    const problem = await expectProblem(res, 422, "validation_failed");
    expect(errorPaths(problem)).toContain("accessToken");
  });

  it("answers 422 for a field of the wrong type", async () => {
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", { ...validImport, entityId: "e-type", expiresIn: "soon" }));
    const problem = await expectProblem(res, 422, "validation_failed");
    expect(errorPaths(problem)).toContain("expiresIn");
  });

  it("answers 422 for an unknown field", async () => {
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", { ...validImport, entityId: "e-unknown", color: "blue" }));
    const problem = await expectProblem(res, 422, "validation_failed");
    expect(JSON.stringify(problem.errors)).toContain("color");
  });

  it("answers 422 when both expiresAt and expiresIn are given", async () => {
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", { ...validImport, entityId: "e-both", expiresAt: "2026-01-01T02:00:00Z", expiresIn: 3600 }));
    await expectProblem(res, 422, "validation_failed");
  });

  it("answers 422 provider_not_found for an unknown providerId", async () => {
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", { ...validImport, providerId: "nobody", entityId: "e-noprov" }));
    await expectProblem(res, 422, "provider_not_found");
  });

  it.each(["tomorrow", "2026-01-01", "2026-01-01 02:00:00", "2026-01-01T02:00:00", "2026-13-01T02:00:00Z"])("answers 422 for expiresAt %j (not RFC 3339 with offset)", async (expiresAt) => {
    const { expiresIn: _omit, ...rest } = validImport;
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", { ...rest, entityId: "e-date", expiresAt }));
    const problem = await expectProblem(res, 422, "validation_failed");
    expect(errorPaths(problem)).toContain("expiresAt");
  });

  it("answers 413 payload_too_large for a body over maxBodyBytes, and accepts one just under", async () => {
    const sized = (entityId: string, bytes: number) => {
      const empty = JSON.stringify({ ...validImport, entityId, scope: "" });
      const body = JSON.stringify({ ...validImport, entityId, scope: "x".repeat(bytes - Buffer.byteLength(empty)) });
      expect(Buffer.byteLength(body)).toBe(bytes);
      return body;
    };
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", sized("e-big", MAX_BODY + 1)));
    await expectProblem(res, 413, "payload_too_large");
    const edge = await sendJson("POST", "/v1/connections", sized("e-edge", MAX_BODY));
    expect(edge.status).toBe(201);
  });
});

describe("PUT /v1/providers/{id}", () => {
  it("answers 422 invalid_provider_id for an id outside the grammar", async () => {
    const res = await unchangedBy(() => sendJson("PUT", `/v1/providers/${encodeURIComponent("Bad Id!")}`, acme));
    await expectProblem(res, 422, "invalid_provider_id");
  });

  it("answers 422 invalid_provider for a plain-http token endpoint off loopback", async () => {
    const res = await unchangedBy(() => sendJson("PUT", "/v1/providers/insecure", { ...acme, tokenEndpoint: "http://example.com/token" }));
    const problem = await expectProblem(res, 422, "invalid_provider");
    expect(errorPaths(problem)).toContain("tokenEndpoint");
  });

  it("answers 422 when clientId is missing", async () => {
    const { clientId: _omit, ...body } = acme;
    const res = await unchangedBy(() => sendJson("PUT", "/v1/providers/noclient", body));
    const problem = await expectProblem(res, 422);
    expect(errorPaths(problem)).toContain("clientId");
  });

  it("answers 422 unknown_template for a template the catalogue does not have", async () => {
    const res = await unchangedBy(() => sendJson("PUT", "/v1/providers/tmpl", { template: "nope", clientId: "c", clientSecret: "s" }));
    await expectProblem(res, 422, "unknown_template");
  });

  it("answers 422 invalid_provider for a templateParam the template does not have", async () => {
    const res = await unchangedBy(() => sendJson("PUT", "/v1/providers/ms", { template: "microsoft", clientId: "c", clientSecret: "s", templateParams: { tennant: "contoso" } }));
    const problem = await expectProblem(res, 422, "invalid_provider");
    expect(String(problem.detail)).toContain("tenant");
  });

  it("answers 422 connection_config_missing for a connection without the value its provider's URLs need", async () => {
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", { ...validImport, providerId: "ms-multi", entityId: "e-tenantless" }));
    const problem = await expectProblem(res, 422, "connection_config_missing");
    expect(String(problem.detail)).toContain("connectionConfig.tenant");
  });

  it("answers 422 invalid_connection_config for a value that would move the host", async () => {
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", { ...validImport, providerId: "ms-multi", entityId: "e-evil", connectionConfig: { tenant: "evil.example/x" } }));
    await expectProblem(res, 422, "invalid_connection_config");
  });

  it("answers 422 naming accessToken when an authorization-code provider's connection comes without one", async () => {
    const res = await unchangedBy(() => sendJson("POST", "/v1/connections", { providerId: "acme", entityId: "e-no-token" }));
    const problem = await expectProblem(res, 422, "validation_failed");
    expect(errorPaths(problem)).toContain("accessToken");
  });

  it("never echoes the client secret, in the PUT answer or the list", async () => {
    const secret = "sekret-9f3b2c71d0a4e8";
    const put = await sendJson("PUT", "/v1/providers/vault", { ...acme, clientSecret: secret });
    expect(put.status).toBe(200);
    const putText = await put.text();
    expect(putText).not.toContain(secret);
    const provider = JSON.parse(putText) as Json;
    expect(provider).not.toHaveProperty("clientSecret");
    expect(provider).toMatchObject({ id: "vault", hasClientSecret: true });

    const list = await authed("/v1/providers");
    expect(list.status).toBe(200);
    const listText = await list.text();
    expect(listText).not.toContain(secret);
    expect(listText).not.toContain('"clientSecret"');
    const items = (JSON.parse(listText) as { items: Json[] }).items;
    expect(items.map((i) => i.id).sort()).toEqual(["acme", "ms-multi", "vault"]);
    for (const item of items) expect(item).not.toHaveProperty("clientSecret");

    const one = await authed("/v1/providers/vault");
    expect(one.status).toBe(200);
    expect(await one.text()).not.toContain(secret);
  });
});

describe("reading connections", () => {
  it("answers 404 connection_not_found for an unknown id", async () => {
    await expectProblem(await authed("/v1/connections/conn_doesnotexist"), 404, "connection_not_found");
  });

  it("refuses an encoded traversal as a non-canonical path, and answers 404 for a malformed id", async () => {
    // Encoded, "../../etc" has a second spelling of the path: refused before routing.
    await expectProblem(await authed(`/v1/connections/${encodeURIComponent("../../etc")}`), 400, "non_canonical_path");
    await expectProblem(await authed("/v1/connections/not-an-id"), 404, "connection_not_found");
  });

  it("answers 422 invalid_query for an unknown state filter", async () => {
    const problem = await expectProblem(await authed("/v1/connections?state=bogus"), 422, "invalid_query");
    expect(errorPaths(problem)).toContain("state");
  });

  it("answers 422 invalid_query for limit=0, and 200 for limit=1", async () => {
    const problem = await expectProblem(await authed("/v1/connections?limit=0"), 422, "invalid_query");
    expect(errorPaths(problem)).toContain("limit");
    expect((await authed("/v1/connections?limit=1")).status).toBe(200);
  });

  it("never shows the access or refresh token", async () => {
    const one = await authed(`/v1/connections/${connectionId}`);
    expect(one.status).toBe(200);
    const text = await one.text();
    expect(JSON.parse(text)).toMatchObject({ id: connectionId, providerId: "acme", entityId: "e1" });
    expect(text).not.toContain("at-1");
    expect(text).not.toContain("rt-1");
    const list = await (await authed("/v1/connections")).text();
    expect(list).not.toContain("at-1");
    expect(list).not.toContain("rt-1");
  });
});

describe("PATCH /v1/connections/{id}", () => {
  it("answers 422 for a state the host may not report", async () => {
    const res = await unchangedBy(() => sendJson("PATCH", `/v1/connections/${connectionId}`, { state: "error" }));
    const problem = await expectProblem(res, 422, "validation_failed");
    expect(errorPaths(problem)).toContain("state");
  });

  it("accepts syncing", async () => {
    const res = await sendJson("PATCH", `/v1/connections/${connectionId}`, { state: "syncing" });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ id: connectionId, state: "syncing", usable: true });
    expect(text).not.toContain("at-1");
    expect(text).not.toContain("rt-1");
    const again = (await (await authed(`/v1/connections/${connectionId}`)).json()) as Json;
    expect(again.state).toBe("syncing");
  });
});

describe("GET /v1/oauth/callback", () => {
  it("answers 400 invalid_callback without a state", async () => {
    const body = await expectProblem(await request("/v1/oauth/callback?code=abc"), 400, "invalid_callback");
    expect(body.reason).toBe("missing_state");
  });

  it("answers 400 invalid_state for an unknown state", async () => {
    await expectProblem(await request("/v1/oauth/callback?code=abc&state=not-a-state-we-issued"), 400, "invalid_state");
  });

  it("answers a browser with a plain HTML page: no JSON, no stack trace", async () => {
    const res = await request("/v1/oauth/callback?code=abc&state=not-a-state-we-issued", { headers: { accept: "text/html,application/xhtml+xml" } });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type") ?? "").toMatch(/^text\/html/);
    const text = await res.text();
    expect(text).toMatch(/<html/i);
    expect(() => JSON.parse(text)).toThrow();
    expect(text).not.toMatch(/"(type|title|status|code|detail)"\s*:/);
    expect(text).not.toContain("invalid_state");
    expect(text).not.toMatch(/\bat \S+ \(|\.ts:\d+|node:internal|Error:/);
  });
});

describe("GET /v1/connect/{providerId}", () => {
  /** Open a link without a key; returns the authorization URL's state and the binding cookie the answer set. */
  async function open(link: string): Promise<{ state: string; cookie: string; location: string; setCookie: string }> {
    const u = new URL(link);
    const res = await request(u.pathname + u.search);
    expect(res.status).toBe(302);
    const location = res.headers.get("location") ?? "";
    const setCookie = res.headers.get("set-cookie") ?? "";
    return { state: new URL(location).searchParams.get("state")!, cookie: setCookie.split(";")[0]!, location, setCookie };
  }

  it("answers 422 without an entityId", async () => {
    const problem = await expectProblem(await authed("/v1/connect/acme"), 422, "validation_failed");
    expect(errorPaths(problem)).toContain("entityId");
  });

  it("answers 422 invalid_return_to for another origin (no open redirects)", async () => {
    await expectProblem(await authed(`/v1/connect/acme?entityId=e2&returnTo=${encodeURIComponent("https://evil.example.com/x")}`), 422, "invalid_return_to");
  });

  it("with the key, mints a session and goes through its link: 302 to the authorization endpoint with PKCE S256, a state, the callback as redirect_uri, and a binding cookie", async () => {
    const res = await authed("/v1/connect/acme?entityId=e2");
    expect(res.status).toBe(302);
    const link = res.headers.get("location") ?? "";
    expect(link).toMatch(new RegExp(`^${PUBLIC_URL}/v1/connect/acme\\?connectToken=gkcs_`));
    const { location, setCookie, state } = await open(link);
    expect(location.startsWith("https://auth.example.com/authorize")).toBe(true);
    const q = new URL(location).searchParams;
    expect(q.get("response_type")).toBe("code");
    expect(q.get("client_id")).toBe("c");
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(state).toBeTruthy();
    expect(q.get("redirect_uri")).toBe(`${PUBLIC_URL}/v1/oauth/callback`);
    // http public URL: no Secure, sent under /v1/ only (the link and the callback).
    expect(setCookie).toMatch(/^gk_connect_cs_[A-Za-z0-9]{26}=[A-Za-z0-9_-]{43}; Max-Age=600; Path=\/v1\/; HttpOnly; SameSite=Lax$/);
  });

  it("an error response from the provider: 400 invalid_callback, nothing stored, the state still unused", async () => {
    const { connectUrl } = await gk.connectSessions.create({ providerId: "acme", entityId: "e3" });
    const { state, cookie } = await open(connectUrl);
    const callback = `/v1/oauth/callback?error=access_denied&state=${encodeURIComponent(state)}`;
    for (let i = 0; i < 2; i++) {
      const res = await unchangedBy(() => request(callback, { headers: { cookie } }));
      const body = await expectProblem(res, 400, "invalid_callback");
      expect(body).toMatchObject({ reason: "authorization_error", providerError: "access_denied" });
    }
  });

  it("answers 401 invalid_connect_token for a garbage connect token without a key", async () => {
    await expectProblem(await request("/v1/connect/acme?connectToken=garbage"), 401, "invalid_connect_token");
    await expectProblem(await request("/v1/connect/acme?connectToken=garbage.garbage"), 401, "invalid_connect_token");
    await expectProblem(await request(`/v1/connect/acme?connectToken=gkcs_${"A".repeat(43)}`), 401, "invalid_connect_token");
    const { connectUrl } = await gk.connectSessions.create({ providerId: "acme", entityId: "e8" });
    const token = new URL(connectUrl).searchParams.get("connectToken")!;
    await expectProblem(await request(`/v1/connect/acme?connectToken=${token}&connectToken=${token}`), 401, "invalid_connect_token");
  });

  it("accepts a session link without a key, for its provider only", async () => {
    const { connectUrl } = await gk.connectSessions.create({ providerId: "acme", entityId: "e9" });
    const link = new URL(connectUrl);
    expect(link.origin).toBe(PUBLIC_URL);
    expect((await open(connectUrl)).location).toMatch(/^https:\/\/auth\.example\.com\/authorize\?/);

    const other = await sendJson("PUT", "/v1/providers/globex", { ...acme, clientId: "g" });
    expect(other.status).toBe(200);
    const token = link.searchParams.get("connectToken")!;
    await expectProblem(await request(`/v1/connect/globex?connectToken=${encodeURIComponent(token)}`), 401, "invalid_connect_token");
  });
});

describe("everything else", () => {
  it("answers an unknown route with a 404 not_found problem", async () => {
    await expectProblem(await authed("/v1/nothing-here"), 404, "not_found");
    await expectProblem(await authed("/no/such/page"), 404, "not_found");
    // Deny by default: without the key, a path nobody registered is not even confirmed missing.
    await expectProblem(await request("/no/such/page"), 401, "unauthorized");
  });

  it("hands out the imported, unexpired token without refreshing, uncached", async () => {
    const res = await authed(`/v1/connections/${connectionId}/token`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as Json;
    expect(body).toEqual({ accessToken: "at-1", tokenType: "Bearer", expiresAt: new Date(gk.clock.now() + 3600_000).toISOString() });
  });

  it("serves an OpenAPI 3.1 document of /v1", async () => {
    const res = await request("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi.startsWith("3.1")).toBe(true);
    expect(doc.paths).toHaveProperty(["/v1/connections"]);
    expect(doc.paths).toHaveProperty(["/v1/providers/{providerId}"]);
  });
});
