/**
 * Proxy confinement (issue 10 item 4, contract v1.1 "Proxy") on real sockets:
 * the forwarded path stays under `apiBaseUrl`'s path however it is spelled;
 * only API methods; hop-by-hop headers (RFC 9110 §7.6.1, those named in
 * `Connection` too) dropped both ways; the caller's credentials and the
 * provider's cookies never cross; answers are marked nosniff and sandboxed;
 * redirects come back unfollowed. The same rules hold for a handler's
 * `ctx.fetch`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isGrantkeeperError } from "../../src/domain/errors.js";
import { contextOf } from "../../src/jobs/context.js";
import { ALLOW_HEADER } from "../../src/lifecycle/api/target.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { rawExchange, rawRequest, startUpstream, type Upstream } from "../support/upstream.js";

describe("proxy confinement", () => {
  let db: TestDatabase;
  let t: GrantkeeperUnderTest;
  let up: Upstream;
  let conn: string;
  const key = () => ({ authorization: `Bearer ${t.apiKey}` });

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db);
    up = await startUpstream();
    expect((await t.api("PUT", "/v1/providers/x", { authorizationEndpoint: `${up.origin}/auth`, tokenEndpoint: `${up.origin}/token`, clientId: "c", clientSecret: "s", apiBaseUrl: `${up.origin}/v2` })).status).toBe(200);
    conn = (await t.api("POST", "/v1/connections", { providerId: "x", entityId: "e", accessToken: "at-confined", refreshToken: "rt", expiresIn: 3600 })).body.id;
  });

  afterAll(async () => {
    await t?.close();
    await up?.close();
    await db?.cleanup();
  });

  beforeEach(() => {
    up.seen.length = 0;
    up.handle((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ method: req.method, url: req.url }));
    });
  });

  // Every attempt: the status the caller gets, and where (if anywhere) the upstream was reached.
  it.each<[string, number, string | null]>([
    ["/records", 200, "/v2/records"],
    ["/records?limit=3&next=..%2F..%2Fadmin", 200, "/v2/records?limit=3&next=..%2F..%2Fadmin"],
    ["", 200, "/v2"],
    ["/", 200, "/v2"],
    ["/a/b/", 200, "/v2/a/b/"],
    ["/%252e%252e/admin", 200, "/v2/%252e%252e/admin"],
    ["/..;/admin", 200, "/v2/..;/admin"],
    ["/https:%2F%2Fevil.example", 400, null],
    ["//admin", 400, null],
    ["///admin", 400, null],
    ["/../admin", 400, null],
    ["/a/../../admin", 400, null],
    ["/./admin", 400, null],
    ["/%2e%2e/admin", 400, null],
    ["/%2E%2E/admin", 400, null],
    ["/.%2e/admin", 400, null],
    ["/..%2Fadmin", 400, null],
    ["/..%2fadmin", 400, null],
    ["/a%2F..%2F..%2Fadmin", 400, null],
    ["/..%5Cadmin", 400, null],
    ["/..\\admin", 400, null],
    ["/%00/admin", 400, null],
    ["/%zz", 400, null],
  ])("%s → %i, upstream %s", async (suffix, status, reached) => {
    const res = await rawRequest(t.url, "GET", `/v1/proxy/${conn}${suffix}`, key());
    expect(res.status).toBe(status);
    expect(up.seen.map((s) => s.url)).toEqual(reached === null ? [] : [reached]);
    // A raw backslash is refused by the HTTP server itself, before any route (400 without a body).
    if (status === 400 && res.body) expect(JSON.parse(res.body).code).toMatch(/^(non_canonical_path|invalid_proxy_path)$/);
  });

  it("ctx.fetch is confined the same way, and never sends the token to another origin", async () => {
    const ctx = contextOf(t.gk, [conn]);
    for (const path of ["../admin", "%2e%2e/admin", "a/..%2F..%2Fadmin", "//evil.example/x", "https://evil.example/steal", "a//b", "..\\admin"]) {
      const e = await ctx.fetch(conn, path).then(() => undefined, (err: unknown) => err);
      expect(isGrantkeeperError(e, "invalid_proxy_path")).toBe(true);
    }
    for (const path of ["http:/evil.example/x", "/records?x=1"]) {
      const res = await ctx.fetch(conn, path);
      expect(res.status).toBe(200);
    }
    expect(up.seen.map((s) => s.url)).toEqual(["/v2/http:/evil.example/x", "/v2/records?x=1"]);
    expect(up.seen.every((s) => s.headers.host === new URL(up.origin).host)).toBe(true);
  });

  it.each(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])("forwards %s", async (method) => {
    const res = await rawRequest(t.url, method, `/v1/proxy/${conn}/m`, { ...key(), "content-type": "text/plain" }, method === "GET" || method === "HEAD" ? undefined : "hello");
    expect(res.status).toBe(200);
    expect(up.seen).toHaveLength(1);
    expect(up.seen[0]).toMatchObject({ method, url: "/v2/m" });
    if (method !== "GET" && method !== "HEAD") expect(up.seen[0]!.body).toBe("hello");
    else expect(up.seen[0]!.headers["content-length"]).toBeUndefined();
    if (method === "HEAD") expect(res.body).toBe("");
  });

  it("forwards a DELETE without a body without one, and an empty POST with Content-Length: 0", async () => {
    expect((await rawRequest(t.url, "DELETE", `/v1/proxy/${conn}/d`, key())).status).toBe(200);
    expect((await rawRequest(t.url, "POST", `/v1/proxy/${conn}/p`, key(), "")).status).toBe(200);
    expect(up.seen.map((s) => [s.method, s.headers["content-length"], s.headers["transfer-encoding"], s.bodyBytes])).toEqual([
      ["DELETE", undefined, undefined, 0],
      ["POST", "0", undefined, 0],
    ]);
  });

  it.each(["TRACE", "PROPFIND", "MKCOL", "LOCK", "PURGE"])("refuses %s with 405 and Allow, reaching nothing", async (method) => {
    const res = await rawRequest(t.url, method, `/v1/proxy/${conn}/m`, key());
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe(ALLOW_HEADER);
    expect(JSON.parse(res.body)).toMatchObject({ code: "method_not_allowed", status: 405 });
    expect(up.seen).toHaveLength(0);
  });

  it("refuses CONNECT with 405, reaching nothing", async () => {
    const answer = await rawExchange(t.url, `CONNECT ${new URL(up.origin).host} HTTP/1.1\r\nHost: ${new URL(up.origin).host}\r\nAuthorization: Bearer ${t.apiKey}\r\n\r\n`);
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 405 Method Not Allowed");
    expect(answer).toContain(`Allow: ${ALLOW_HEADER}`);
    expect(up.seen).toHaveLength(0);
  });

  it("ctx.fetch refuses TRACE and CONNECT with method_not_allowed", async () => {
    const ctx = contextOf(t.gk, [conn]);
    for (const method of ["TRACE", "CONNECT", "PROPFIND"]) {
      const e = await ctx.fetch(conn, "/m", { method }).then(() => undefined, (err: unknown) => err);
      expect(isGrantkeeperError(e, "method_not_allowed")).toBe(true);
    }
    expect(up.seen).toHaveLength(0);
  });

  it("drops hop-by-hop headers and those named in Connection on the way in, and the caller's key and cookies", async () => {
    // Raw bytes: node:http would refuse to send some of these.
    const head = [
      `POST /v1/proxy/${conn}/h HTTP/1.1`,
      `Host: ${new URL(t.url).host}`,
      `Authorization: Bearer ${t.apiKey}`,
      "Connection: close, X-Private-Hop, x-second-hop",
      "Keep-Alive: timeout=5",
      "Proxy-Connection: keep-alive",
      "TE: trailers",
      "Trailer: X-Checksum",
      "Upgrade: websocket",
      "Proxy-Authorization: Basic cHJveHk6c2VjcmV0",
      "X-Private-Hop: internal-user-7",
      "X-Second-Hop: 2",
      "Cookie: gk_session=abc",
      "X-End-To-End: kept",
      "Content-Type: application/json",
      "Content-Length: 2",
    ];
    const answer = await rawExchange(t.url, `${head.join("\r\n")}\r\n\r\n{}`);
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    const h = up.seen[0]!.headers;
    for (const name of ["keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization", "x-private-hop", "x-second-hop", "cookie"]) expect(h[name], name).toBeUndefined();
    expect(h.connection ?? "keep-alive").toBe("keep-alive"); // the proxy's own connection to the upstream, not the caller's
    expect(h.authorization).toBe("Bearer at-confined");
    expect(h["x-end-to-end"]).toBe("kept");
    expect(h["content-type"]).toBe("application/json");
  });

  it("forwards end-to-end headers whatever their names, both ways: constructor, __proto__, toString", async () => {
    up.handle((_req, res) => {
      res.writeHead(200, ["Content-Type", "application/json", "Constructor", "a1", "__proto__", "a2", "toString", "a3"]);
      res.end("{}");
    });
    // Raw bytes both ways: node:http's parsed `headers` drop a field named `__proto__`.
    const head = [`GET /v1/proxy/${conn}/names HTTP/1.1`, `Host: ${new URL(t.url).host}`, `Authorization: Bearer ${t.apiKey}`, "Constructor: r1", "__proto__: r2", "toString: r3", "Connection: close"];
    const answer = await rawExchange(t.url, `${head.join("\r\n")}\r\n\r\n`);
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    const raw = up.seen[0]!.rawHeaders;
    const sent = new Map(Array.from({ length: raw.length / 2 }, (_, i) => [raw[2 * i]!.toLowerCase(), raw[2 * i + 1]!]));
    expect([sent.get("constructor"), sent.get("__proto__"), sent.get("tostring")]).toEqual(["r1", "r2", "r3"]);
    const back = new Map(answer.split("\r\n\r\n")[0]!.split("\r\n").slice(1).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
    expect([back.get("constructor"), back.get("__proto__"), back.get("tostring")]).toEqual(["a1", "a2", "a3"]);
  });

  it("drops hop-by-hop headers, those named in Connection and Set-Cookie on the way out; marks answers nosniff and sandboxed", async () => {
    up.handle((_req, res) => {
      res.writeHead(200, [
        ["Content-Type", "text/html"],
        ["Connection", "keep-alive, X-Upstream-Hop"],
        ["X-Upstream-Hop", "secret-internal"],
        ["Keep-Alive", "timeout=5"],
        ["Proxy-Authenticate", "Basic realm=p"],
        ["Trailer", "X-Checksum"],
        ["Set-Cookie", "provider_session=1; Path=/"],
        ["Set-Cookie", "other=2"],
        ["X-Content-Type-Options", "whatever"],
        ["Link", "<https://api/next>; rel=next"],
      ]);
      res.end("<script>alert(document.cookie)</script>");
    });
    const res = await rawRequest(t.url, "GET", `/v1/proxy/${conn}/page`, key());
    expect(res.status).toBe(200);
    for (const name of ["x-upstream-hop", "keep-alive", "proxy-authenticate", "trailer", "set-cookie"]) expect(res.headers[name], name).toBeUndefined();
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["content-security-policy"]).toBe("sandbox");
    expect(res.headers["content-type"]).toBe("text/html");
    expect(res.headers.link).toBe("<https://api/next>; rel=next");
    expect(res.body).toBe("<script>alert(document.cookie)</script>");
  });

  it("passes a redirect back without following it, and a 204 and a 304 without a body", async () => {
    up.handle((req, res) => {
      if (req.url === "/v2/moved") res.writeHead(302, { location: "https://elsewhere.example/x" }).end();
      else if (req.url === "/v2/none") res.writeHead(204, { "x-n": "1" }).end();
      else res.writeHead(304, { etag: '"e1"' }).end();
    });
    const moved = await rawRequest(t.url, "GET", `/v1/proxy/${conn}/moved`, key());
    expect(moved.status).toBe(302);
    expect(moved.headers.location).toBe("https://elsewhere.example/x");
    const none = await rawRequest(t.url, "DELETE", `/v1/proxy/${conn}/none`, key());
    expect(none).toMatchObject({ status: 204, body: "" });
    expect(none.headers["x-n"]).toBe("1");
    const same = await rawRequest(t.url, "GET", `/v1/proxy/${conn}/same`, { ...key(), "if-none-match": '"e1"' });
    expect(same).toMatchObject({ status: 304, body: "" });
    expect(up.seen.map((s) => s.url)).toEqual(["/v2/moved", "/v2/none", "/v2/same"]);
    expect(up.seen[2]!.headers["if-none-match"]).toBe('"e1"');
  });

  it("answers 401 without the key and 404 for an unknown connection, reaching nothing", async () => {
    expect((await rawRequest(t.url, "GET", `/v1/proxy/${conn}/x`)).status).toBe(401);
    expect((await rawRequest(t.url, "GET", `/v1/proxy/conn_nope/x`, key())).status).toBe(404);
    expect(up.seen).toHaveLength(0);
  });

  it("takes the key only as the gate does: a wrong key, a non-Bearer scheme, or the key sent twice is 401, reaching nothing", async () => {
    expect((await rawRequest(t.url, "GET", `/v1/proxy/${conn}/x`, { authorization: `Bearer ${t.apiKey}x` })).status).toBe(401);
    expect((await rawRequest(t.url, "GET", `/v1/proxy/${conn}/x`, { authorization: `Basic ${t.apiKey}` })).status).toBe(401);
    const twice = await rawExchange(t.url, `GET /v1/proxy/${conn}/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${t.apiKey}\r\nAuthorization: Bearer ${t.apiKey}\r\nConnection: close\r\n\r\n`);
    expect(twice).toMatch(/^HTTP\/1\.1 401 /);
    expect(up.seen).toHaveLength(0);
    // The same request with the key once is proxied.
    expect((await rawRequest(t.url, "GET", `/v1/proxy/${conn}/x`, key())).status).toBe(200);
    expect(up.seen.map((x) => x.url)).toEqual(["/v2/x"]);
  });
});
