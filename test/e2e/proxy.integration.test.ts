/**
 * The authenticated proxy: calls the provider's API with a fresh token; on a
 * 401 refreshes once and retries once; a second 401 goes back to the caller.
 * Against oidc-provider's real userinfo endpoint, and a stub API that rejects
 * the old token.
 */
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { connectEntity } from "../support/connect.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";

describe("proxy", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let ep: ScriptedTokenEndpoint;
  let t: GrantkeeperUnderTest;
  let api: { url: string; seen: string[]; close: () => Promise<void> };

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db, { refresh: { minIntervalMs: 0, jitterMs: 0 } });
    as = await startAuthServer({ accessTokenTtlSeconds: 600, clients: [{ clientId: "c", clientSecret: "proxy-secret", redirectUris: [`${t.url}/v1/oauth/callback`] }] });
    ep = await startScriptedTokenEndpoint();
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(String(req.headers.authorization));
      const ok = req.headers.authorization === "Bearer fresh-token";
      res.writeHead(ok ? 200 : 401, { "content-type": "application/json", "set-cookie": "session=provider" });
      res.end(JSON.stringify(ok ? { records: [1, 2, 3], path: req.url } : { error: "invalid_token" }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    api = { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen, close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))) };
    await t.api("PUT", "/v1/providers/acme", { issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, clientId: "c", clientSecret: "proxy-secret", scopes: ["openid"], apiBaseUrl: as.issuer });
    await t.api("PUT", "/v1/providers/stub", { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "s", apiBaseUrl: `${api.url}/v2` });
  });

  afterAll(async () => {
    await t?.close();
    await as?.close();
    await ep?.close();
    await api?.close();
    await db?.cleanup();
  });

  it("calls the real userinfo endpoint with a fresh token", async () => {
    const id = (await connectEntity(t.gk, "acme", "user-9")).body.connection.id;
    const res = await fetch(`${t.url}/v1/proxy/${id}/me`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).sub).toBe("user-9");
    // revoked at the provider: 401, refresh fails (dead grant), the second 401 goes back to the caller
    await as.revokeGrantsOf("user-9");
    const dead = await fetch(`${t.url}/v1/proxy/${id}/me`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(dead.status).toBe(409);
    expect((await t.api("GET", `/v1/connections/${id}`)).body.state).toBe("error");
  });

  it("on a 401 refreshes once and retries once; the caller's key and the provider's cookies never cross", async () => {
    const conn = (await t.api("POST", "/v1/connections", { providerId: "stub", entityId: "e", accessToken: "stale-token", refreshToken: "rt", expiresIn: 3600 })).body;
    ep.push({ status: 200, body: { access_token: "fresh-token", token_type: "Bearer", expires_in: 3600 } });
    const res = await fetch(`${t.url}/v1/proxy/${conn.id}/records?limit=3`, { headers: { authorization: `Bearer ${t.apiKey}`, cookie: "mine=1" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ records: [1, 2, 3], path: "/v2/records?limit=3" });
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(api.seen).toEqual(["Bearer stale-token", "Bearer fresh-token"]);
    expect(ep.requests).toHaveLength(1);
    const escape = await fetch(`${t.url}/v1/proxy/${conn.id}/..%2F..%2Fetc`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(escape.status).toBe(400);
    expect(((await escape.json()) as any).code).toBe("non_canonical_path");
  });
});
