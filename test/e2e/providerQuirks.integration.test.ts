/**
 * Provider behaviours from the field, against a scripted token endpoint on a
 * real socket: each case imports a grant, scripts the provider's answer,
 * moves the clock to the due time and checks what the user would see.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";

const ok = (over: Record<string, unknown> = {}) => ({ status: 200, body: { access_token: `at-${Math.random()}`, token_type: "bearer", expires_in: 3600, ...over } });

describe("provider quirks", () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let t: GrantkeeperUnderTest;
  let n = 0;

  beforeAll(async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    t = await startGrantkeeper(db, { refresh: { marginMs: 60_000, jitterMs: 0, minIntervalMs: 1_000, backoffBaseMs: 4_000, assumedLifetimeMs: 3_600_000, timeoutMs: 2_000 } });
    const base = { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "cid", clientSecret: "quirk-client-secret" };
    expect((await t.api("PUT", "/v1/providers/plain", base)).status).toBe(200);
    expect((await t.api("PUT", "/v1/providers/gh", { ...base, quirks: { errorsWithStatus200: true }, errorClassOverrides: { bad_refresh_token: "permanent", incorrect_client_credentials: "provider" } })).status).toBe(200);
  });

  afterAll(async () => {
    await t?.close();
    await ep?.close();
    await db?.cleanup();
  });

  /** Import a grant due for refresh now. */
  async function dueGrant(providerId = "plain", extra: Record<string, unknown> = {}): Promise<string> {
    const res = await t.api("POST", "/v1/connections", { providerId, entityId: `e${++n}`, accessToken: `old-at-${n}`, refreshToken: `rt-${n}`, expiresIn: 30, ...extra });
    expect(res.status).toBe(201);
    return res.body.id;
  }

  async function refresh(id: string) {
    t.clock.advance(1_000);
    return (await t.api("POST", `/v1/connections/${id}/refresh`)).body;
  }

  it("sends the refresh token with client_secret_basic by default", async () => {
    const id = await dueGrant();
    ep.push(ok({ refresh_token: "rt-rotated" }));
    await refresh(id);
    const seen = ep.requests.at(-1)!;
    expect(seen.params.get("grant_type")).toBe("refresh_token");
    expect(seen.params.get("refresh_token")).toBe(`rt-${n}`);
    // RFC 6749 §2.3.1: id and secret are form-encoded before base64; a compliant server decodes them.
    const [user, pass] = Buffer.from(seen.authorization!.replace(/^Basic /, ""), "base64").toString().split(":");
    expect([decodeURIComponent(user!), decodeURIComponent(pass!)]).toEqual(["cid", "quirk-client-secret"]);
  });

  it("keeps the stored refresh token when the response has none (Nango #298)", async () => {
    const id = await dueGrant();
    ep.push(ok(), ok());
    await refresh(id);
    await refresh(id);
    expect(ep.requests.at(-1)!.params.get("refresh_token")).toBe(`rt-${n}`);
  });

  it("uses the rotated refresh token on the next refresh", async () => {
    const id = await dueGrant();
    ep.push(ok({ refresh_token: "rt-next" }), ok());
    await refresh(id);
    await refresh(id);
    expect(ep.requests.at(-1)!.params.get("refresh_token")).toBe("rt-next");
  });

  it("assumes a lifetime when expires_in is missing, never 'never refresh' (Nango #6775)", async () => {
    const id = await dueGrant();
    ep.push({ status: 200, body: { access_token: "no-expiry", token_type: "Bearer" } });
    const c = await refresh(id);
    expect(c.expiresAtAssumed).toBe(true);
    expect(Date.parse(c.expiresAt)).toBe(t.clock.now() + 3_600_000);
    expect(Date.parse(c.nextRefreshAt)).toBe(t.clock.now() + 3_600_000 - 60_000);
  });

  it("records a refresh that returns the same access token as suspicious", async () => {
    const id = await dueGrant();
    ep.push(ok({ access_token: `old-at-${n}` }));
    const c = await refresh(id);
    expect(c.state).toBe("ready");
    const types = (await t.api("GET", `/v1/connections/${id}/events`)).body.items.map((e: any) => e.type);
    expect(types).toContain("suspicious_refresh");
  });

  it("honours Retry-After on 429 when it is longer than the backoff", async () => {
    const id = await dueGrant();
    ep.push({ status: 429, body: { error: "slow_down" }, headers: { "retry-after": "120" } });
    const c = await refresh(id);
    expect(c).toMatchObject({ state: "degraded", usable: true, lastError: { class: "transient", code: "http_429" } });
    expect(Date.parse(c.nextRefreshAt) - t.clock.now()).toBe(120_000);
  });

  it("a 200 with an error body (GitHub) is a failure, classified by the provider's overrides", async () => {
    const id = await dueGrant("gh");
    ep.push({ status: 200, body: { error: "bad_refresh_token", error_description: "The refresh token passed is incorrect or expired." } });
    const c = await refresh(id);
    expect(c).toMatchObject({ state: "error", usable: false, lastError: { class: "permanent", code: "bad_refresh_token" } });
  });

  it("invalid_client never kills the grant: degraded, then retried at once when the provider is fixed", async () => {
    const id = await dueGrant();
    ep.push({ status: 401, body: { error: "invalid_client" } });
    const c = await refresh(id);
    expect(c).toMatchObject({ state: "degraded", usable: true, lastError: { class: "permanent", code: "invalid_client" } });
    expect(Date.parse(c.nextRefreshAt)).toBeGreaterThan(t.clock.now() + 60_000);
    await t.api("PUT", "/v1/providers/plain", { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "cid", clientSecret: "quirk-client-secret-2" });
    const after = (await t.api("GET", `/v1/connections/${id}`)).body;
    expect(Date.parse(after.nextRefreshAt)).toBe(t.clock.now());
  });

  it("an expired token without a refresh token is dead without calling the provider", async () => {
    const own = await startScriptedTokenEndpoint();
    try {
      await t.api("PUT", "/v1/providers/lonely", { authorizationEndpoint: `${own.origin}/auth`, tokenEndpoint: own.tokenEndpoint, clientId: "cid", tokenEndpointAuthMethod: "none" });
      const res = await t.api("POST", "/v1/connections", { providerId: "lonely", entityId: "no-rt", accessToken: "lonely", expiresIn: 10 });
      expect(res.body.nextRefreshAt).toBe(res.body.expiresAt);
      t.clock.advance(10_000);
      await t.gk.scheduler.runDue();
      const c = (await t.api("GET", `/v1/connections/${res.body.id}`)).body;
      expect(c).toMatchObject({ state: "error", lastError: { class: "permanent", code: "not_refreshable" } });
      expect(own.requests).toHaveLength(0);
    } finally {
      await own.close();
    }
  });

  it("a token that never expires and has no refresh token is never scheduled", async () => {
    const res = await t.api("POST", "/v1/connections", { providerId: "plain", entityId: "forever", accessToken: "eternal" });
    expect(res.body).toMatchObject({ expiresAt: null, nextRefreshAt: null, state: "pending" });
    expect((await t.api("POST", `/v1/connections/${res.body.id}/token`)).body).toMatchObject({ accessToken: "eternal", expiresAt: null });
  });

  it("keeps idle grants alive: a long-lived token is still refreshed within keepAlive", async () => {
    const res = await t.api("POST", "/v1/connections", { providerId: "plain", entityId: "idle", accessToken: "x", refreshToken: "y", expiresIn: 30 * 86_400 });
    expect(Date.parse(res.body.nextRefreshAt) - t.clock.now()).toBe(86_400_000);
  });

  it("an HTML error page and a malformed 200 are transient", async () => {
    const id = await dueGrant();
    ep.push({ status: 502, body: "<html>Bad gateway</html>" });
    expect((await refresh(id)).lastError).toMatchObject({ class: "transient", code: "http_502" });
    ep.push({ status: 200, body: { token_type: "Bearer" } });
    expect((await refresh(id)).lastError).toMatchObject({ class: "transient" });
  });
});
