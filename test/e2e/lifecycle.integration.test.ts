/**
 * The main job end to end: a real authorization server (panva's
 * oidc-provider, refresh-token rotation on, PKCE required, 120 s access
 * tokens), grantkeeper served on a real socket, the connect flow through the
 * provider's real login and consent pages, proactive refresh, ensureFresh, a
 * token endpoint outage ridden out as `degraded`, revocation detected as
 * `error`, re-authorization, deletion with RFC 7009 revocation — on SQLite and
 * on PostgreSQL (vitest projects). Time moves by an injected clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startFaultProxy, type FaultProxy } from "../support/faultProxy.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { connectEntity, connectInBrowser } from "../support/connect.js";
import { browserFetch } from "../support/login.js";

const TTL_S = 120;
const MARGIN_S = 30;

describe("grant lifecycle on a real authorization server", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let proxy: FaultProxy;
  let t: GrantkeeperUnderTest;
  let connectionId: string;

  /** Complete the connect flow as a user would: open the link, log in, consent, land on the callback. */
  async function connectAs(entityId: string, accountId = entityId) {
    const { callback, response, body } = await connectEntity(t.gk, "acme", entityId, { accountId });
    expect(callback.startsWith(`${t.url}/v1/oauth/callback?`)).toBe(true);
    return { status: response.status, body };
  }

  async function tick(ms: number) {
    t.clock.advance(ms);
    await t.gk.scheduler.runDue();
  }

  async function connection() {
    return (await t.api("GET", `/v1/connections/${connectionId}`)).body;
  }

  async function dueIn(): Promise<number> {
    const c = await connection();
    return Date.parse(c.nextRefreshAt) - t.clock.now();
  }

  beforeAll(async () => {
    db = await testDatabase();
    // The redirect URI must be known before the authorization server starts; grantkeeper picks its port first.
    t = await startGrantkeeper(db, {
      refresh: { marginMs: MARGIN_S * 1000, jitterMs: 0, timeoutMs: 1_000, minIntervalMs: 1_000, backoffBaseMs: 2_000, backoffMaxMs: 10_000, maxRetries: 3, recoveryIntervalMs: 60_000 },
      // One connection's own retries and active recovery are the subject here: the provider's token endpoint
      // breaker, which would take over after 3 faults, is tested in providerBreaker.integration.test.ts.
      extra: { breaker: { maxConsecutiveFailures: 100, cooldownMs: 120_000 } },
    });
    as = await startAuthServer({ accessTokenTtlSeconds: TTL_S, clients: [{ clientId: "gk-client", clientSecret: "gk-client-secret-value", redirectUris: [`${t.url}/v1/oauth/callback`] }] });
    proxy = await startFaultProxy(as.issuer);
    t.secrets.add("gk-client-secret-value");
    await t.gk.start();
  });

  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await as?.close();
    await db?.cleanup();
  });

  it("defines the provider through the API; the secret is never returned", async () => {
    const put = await t.api("PUT", "/v1/providers/acme", {
      displayName: "Acme (oidc-provider)",
      issuer: as.issuer,
      authorizationEndpoint: as.authorizationEndpoint,
      tokenEndpoint: `${proxy.url}/token`,
      revocationEndpoint: as.revocationEndpoint,
      clientId: "gk-client",
      clientSecret: "gk-client-secret-value",
      tokenEndpointAuthMethod: "client_secret_basic",
      scopes: ["openid"],
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ id: "acme", hasClientSecret: true, tokenEndpoint: `${proxy.url}/token` });
    const list = await t.api("GET", "/v1/providers");
    expect(JSON.stringify(list.body)).not.toContain("gk-client-secret-value");
  });

  it("connects a grant through the provider's real login and consent (code + PKCE S256 + state)", async () => {
    const { status, body } = await connectAs("user-1");
    expect(status).toBe(200);
    expect(body.status).toBe("connected");
    expect(body.connection).toMatchObject({ providerId: "acme", entityId: "user-1", state: "pending", usable: true, consecutiveFailures: 0 });
    connectionId = body.connection.id;
    expect(Date.parse(body.connection.expiresAt) - t.clock.now()).toBe(TTL_S * 1000);
    expect(await dueIn()).toBe((TTL_S - MARGIN_S) * 1000);
    expect(as.tokenRequests()).toBe(1);
    expect(as.refreshRequests()).toBe(0);
  });

  it("hands out the access token without a refresh while it is fresh", async () => {
    const res = await t.api("POST", `/v1/connections/${connectionId}/token`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body.tokenType).toBe("Bearer");
    expect(t.secrets.has(res.body.accessToken)).toBe(true);
    expect(as.refreshRequests()).toBe(0);
  });

  it("refreshes proactively at expiry − margin, not a millisecond before", async () => {
    await tick((TTL_S - MARGIN_S) * 1000 - 1);
    expect(as.refreshRequests()).toBe(0);
    const before = (await t.api("POST", `/v1/connections/${connectionId}/token`)).body.accessToken;
    await tick(1);
    expect(as.refreshRequests()).toBe(1);
    const c = await connection();
    expect(c.state).toBe("ready");
    expect(c.lastRefreshedAt).toBe(new Date(t.clock.now()).toISOString());
    expect(Date.parse(c.expiresAt) - t.clock.now()).toBe(TTL_S * 1000);
    const after = (await t.api("POST", `/v1/connections/${connectionId}/token`)).body.accessToken;
    expect(after).not.toBe(before);
    const events = (await t.api("GET", `/v1/connections/${connectionId}/events`)).body.items;
    expect(events[0]).toMatchObject({ type: "refreshed", detail: { rotated: true } });
  });

  it("ensureFresh refreshes an expired token before handing it out", async () => {
    await t.gk.scheduler.stop();
    t.clock.advance(TTL_S * 1000 + 1);
    const res = await t.api("POST", `/v1/connections/${connectionId}/token`);
    expect(res.status).toBe(200);
    expect(as.refreshRequests()).toBe(2);
    expect(Date.parse(res.body.expiresAt)).toBe(t.clock.now() + TTL_S * 1000);
    await t.gk.start();
  });

  it("rides out a token endpoint outage (503, hang, reset, HTML 500) as degraded, never error", async () => {
    const modes = ["503", "hang", "reset", "html500"] as const;
    const codes = ["http_503", "timeout", "network_error", "http_500"];
    for (const [i, mode] of modes.entries()) {
      proxy.setMode(mode);
      await tick(await dueIn());
      const c = await connection();
      expect(c).toMatchObject({ state: "degraded", usable: true, consecutiveFailures: i + 1, lastError: { class: "transient", code: codes[i] } });
    }
    expect(as.refreshRequests()).toBe(2); // nothing reached the server
    const events = (await t.api("GET", `/v1/connections/${connectionId}/events`)).body.items;
    expect(events.filter((e: any) => e.type === "recovery_entered")).toHaveLength(1);
    expect(await dueIn()).toBe(60_000); // active recovery: every recoveryInterval
  });

  it("answers 503 with Retry-After for an expired token during the outage: the grant is still usable", async () => {
    t.clock.advance(TTL_S * 1000);
    proxy.setMode("503");
    const res = await t.api("POST", `/v1/connections/${connectionId}/token`);
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body.code).toBe("token_unavailable");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await connection()).usable).toBe(true);
  });

  it("rate-limits forced refreshes (Retry-After), then recovers to ready when the endpoint is back", async () => {
    proxy.setMode("pass");
    t.clock.advance(1_000);
    const first = await t.api("POST", `/v1/connections/${connectionId}/refresh`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ state: "ready", consecutiveFailures: 0, usable: true });
    expect(first.body.lastError).toBeUndefined();
    const second = await t.api("POST", `/v1/connections/${connectionId}/refresh`);
    expect(second.status).toBe(429);
    expect(second.body.code).toBe("refresh_rate_limited");
    expect(second.headers.get("retry-after")).toBe("1");
    expect(as.refreshRequests()).toBe(3);
  });

  it("detects a revoked grant as error (invalid_grant) and refuses tokens with 409", async () => {
    expect(await as.revokeAllGrants()).toBeGreaterThan(0);
    await tick(await dueIn());
    const c = await connection();
    expect(c).toMatchObject({ state: "error", usable: false, nextRefreshAt: null, lastError: { class: "permanent", code: "invalid_grant" } });
    const token = await t.api("POST", `/v1/connections/${connectionId}/token`);
    expect(token.status).toBe(409);
    expect(token.body.code).toBe("connection_error");
    const events = (await t.api("GET", `/v1/connections/${connectionId}/events`)).body.items;
    expect(events.map((e: any) => e.type)).toContain("invalidated");
    const refreshesBefore = as.refreshRequests();
    await tick(24 * 3600 * 1000);
    expect(as.refreshRequests()).toBe(refreshesBefore); // a dead grant is never retried
  });

  it("re-authorization through the real login gives the same connection a working grant", async () => {
    const { status, body } = await connectAs("user-1");
    expect(status).toBe(200);
    expect(body.connection).toMatchObject({ id: connectionId, state: "pending", usable: true, consecutiveFailures: 0 });
    expect(body.connection.lastError).toBeUndefined();
    const token = await t.api("POST", `/v1/connections/${connectionId}/token`);
    expect(token.status).toBe(200);
    const events = (await t.api("GET", `/v1/connections/${connectionId}/events`)).body.items;
    expect(events[0]).toMatchObject({ type: "reauthorized", detail: { previousState: "error" } });
  });

  it("a callback state is single use", async () => {
    const { connectUrl } = await t.gk.connectSessions.create({ providerId: "acme", entityId: "user-2" });
    const first = await connectInBrowser(connectUrl, { accountId: "user-2" });
    expect(first.response.status).toBe(200);
    // The same browser delivers the same callback again.
    const replay = await browserFetch(first.jar, first.callback, { headers: { accept: "application/json" } });
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as any).code).toBe("invalid_state");
  });

  it("delete revokes at the provider (RFC 7009), then the connection is gone", async () => {
    const res = await t.api("DELETE", `/v1/connections/${connectionId}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ deleted: true, revoked: true });
    expect((await t.api("GET", `/v1/connections/${connectionId}`)).status).toBe(404);
  });

  it("never logs a token, secret or key", async () => {
    const logs = t.logText();
    expect(logs).toContain('"msg":"refresh attempt"');
    expect(t.secrets.size).toBeGreaterThan(6);
    for (const s of t.secrets) expect(logs.includes(s), `a secret leaked into the logs`).toBe(false);
  });
});
