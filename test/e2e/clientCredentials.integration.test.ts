/**
 * Client credentials (RFC 6749 §4.4) against oidc-provider with the grant
 * enabled: a connection without a user grant is created by asking for its
 * first token, renewed proactively by the scheduler (there is no refresh
 * token), and never turned into `error` — whatever the token endpoint
 * refuses is the client's configuration (a user complaint elsewhere: a
 * client-credentials token that was never renewed).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { internalsOf } from "../../src/internals.js";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";

const MIN = 60_000;
const HOUR = 60 * MIN;

describe("client credentials", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let t: GrantkeeperUnderTest;
  let refuse: "invalid_grant" | undefined;
  const machine = (clientSecret: string) => ({ grantType: "client_credentials", tokenEndpoint: as.tokenEndpoint, clientId: "machine", clientSecret, scopes: ["api:read"], apiBaseUrl: as.issuer });

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db, { refresh: { jitterMs: 0, minIntervalMs: 1_000, marginMs: 5 * MIN } });
    as = await startAuthServer({
      accessTokenTtlSeconds: 3600,
      clientCredentials: true,
      extraScopes: ["api:read"],
      clients: [{ clientId: "machine", clientSecret: "machine-secret-123", redirectUris: [`${t.url}/v1/oauth/callback`] }],
      tokenResponse: ({ grantType }) => (refuse && grantType === "client_credentials" ? { status: 400, body: { error: refuse } } : undefined),
    });
    const put = await t.api("PUT", "/v1/providers/machine", machine("machine-secret-123"));
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ grantType: "client_credentials" });
    expect(put.body).not.toHaveProperty("authorizationEndpoint");
  });

  afterAll(async () => {
    await t?.close();
    await as?.close();
    await db?.cleanup();
  });

  const token = async (id: string) => (await t.api("POST", `/v1/connections/${id}/token`)).body.accessToken as string;
  const get = async (id: string) => (await t.api("GET", `/v1/connections/${id}`)).body;

  it("POST /v1/connections {providerId, entityId} obtains the first token at once", async () => {
    const before = as.tokenRequests();
    const res = await t.api("POST", "/v1/connections", { providerId: "machine", entityId: "tenant-1" });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ providerId: "machine", entityId: "tenant-1", state: "pending", usable: true, scope: "api:read", expiresAtAssumed: false });
    expect(Date.parse(res.body.expiresAt) - t.clock.now()).toBe(HOUR);
    expect(Date.parse(res.body.nextRefreshAt) - t.clock.now()).toBe(HOUR - 5 * MIN);
    expect(as.tokenRequests()).toBe(before + 1);
    const row = await internalsOf(t.gk).store.db.selectFrom("connections").select(["refresh_token_ct"]).where("id", "=", res.body.id).executeTakeFirstOrThrow();
    expect(row.refresh_token_ct).toBeNull();
  });

  it("renews proactively before each expiry, for a whole day, with no refresh token", async () => {
    const { id } = (await t.api("POST", "/v1/connections", { providerId: "machine", entityId: "tenant-2" })).body;
    const first = await token(id);
    for (let minute = 0; minute < 24 * 60; minute += 5) {
      t.clock.advance(5 * MIN);
      await t.gk.scheduler.runDue();
    }
    // Every 55 minutes (1-hour tokens, 5-minute margin): 26 in 24 hours.
    const history = (await t.api("GET", `/v1/connections/${id}/events?limit=500`)).body.items as Array<{ type: string }>;
    expect(history.filter((e) => e.type === "refreshed")).toHaveLength(26);
    expect(history.filter((e) => e.type === "refresh_failed")).toHaveLength(0);
    const after = await get(id);
    expect(after).toMatchObject({ state: "ready", consecutiveFailures: 0 });
    expect(Date.parse(after.expiresAt)).toBeGreaterThan(t.clock.now());
    expect(await token(id)).not.toBe(first);
  });

  it("a refusal is the client's configuration, never a dead grant: degraded and usable, back to ready when it works", async () => {
    const { id } = (await t.api("POST", "/v1/connections", { providerId: "machine", entityId: "tenant-3" })).body;
    refuse = "invalid_grant";
    t.clock.advance(2_000);
    const failed = (await t.api("POST", `/v1/connections/${id}/refresh`)).body;
    refuse = undefined;
    expect(failed).toMatchObject({ state: "degraded", usable: true, lastError: { class: "permanent", code: "invalid_grant" } });
    t.clock.advance(2_000);
    expect((await t.api("POST", `/v1/connections/${id}/refresh`)).body).toMatchObject({ state: "ready", usable: true });
  });

  it("a wrong client secret is invalid_client: degraded, and renewed at once when the provider is fixed", async () => {
    const { id } = (await t.api("POST", "/v1/connections", { providerId: "machine", entityId: "tenant-4" })).body;
    await t.api("PUT", "/v1/providers/machine", machine("wrong-secret-000"));
    t.clock.advance(2_000);
    expect((await t.api("POST", `/v1/connections/${id}/refresh`)).body).toMatchObject({ state: "degraded", usable: true, lastError: { class: "permanent", code: "invalid_client" } });
    await t.api("PUT", "/v1/providers/machine", machine("machine-secret-123"));
    expect(Date.parse((await get(id)).nextRefreshAt)).toBe(t.clock.now());
    await t.gk.scheduler.runDue();
    expect(await get(id)).toMatchObject({ state: "ready" });
  });

  it("when the first token is refused, the answer is 502 token_request_failed and nothing is stored", async () => {
    await t.api("PUT", "/v1/providers/machine", machine("wrong-secret-000"));
    try {
      const res = await t.api("POST", "/v1/connections", { providerId: "machine", entityId: "tenant-5" });
      expect(res).toMatchObject({ status: 502, body: { code: "token_request_failed", failureClass: "permanent", failureCode: "invalid_client" } });
      expect((await t.api("GET", "/v1/connections?entityId=tenant-5")).body.items).toEqual([]);
    } finally {
      await t.api("PUT", "/v1/providers/machine", machine("machine-secret-123"));
    }
  });

  it("POST again for the same entity renews now (200), within the refresh rate limit", async () => {
    const created = (await t.api("POST", "/v1/connections", { providerId: "machine", entityId: "tenant-6" })).body;
    t.clock.advance(2_000);
    const again = await t.api("POST", "/v1/connections", { providerId: "machine", entityId: "tenant-6" });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(created.id);
    expect(await token(created.id)).not.toBe(undefined);
    expect((await t.api("POST", "/v1/connections", { providerId: "machine", entityId: "tenant-6" })).status).toBe(429);
  });

  it("has no connect flow; preflight offers no link for it", async () => {
    const connect = await t.api("GET", "/v1/connect/machine?entityId=tenant-1");
    expect(connect).toMatchObject({ status: 422, body: { code: "grant_type_mismatch" } });
    const session = await t.api("POST", "/v1/connect-sessions", { providerId: "machine", entityId: "tenant-1" });
    expect(session).toMatchObject({ status: 422, body: { code: "grant_type_mismatch" } });
    const pf = (await t.api("POST", "/v1/preflight", { entityId: "nobody", providers: ["machine"] })).body;
    expect(pf.providers[0]).toEqual({ providerId: "machine", usable: false, action: "connect" });
  });

  it("the dashboard offers Refresh now but no Reconnect for a client-credentials connection (there is no end user)", async () => {
    const { id } = (await t.api("POST", "/v1/connections", { providerId: "machine", entityId: "tenant-7" })).body;
    // Sign in as an operator would: the form's cookie and token, then the API key.
    const form = await fetch(`${t.url}/dashboard/sign-in`);
    const nonceCookie = form.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? "";
    const signIn = await fetch(`${t.url}/dashboard/sign-in`, { method: "POST", redirect: "manual", headers: { cookie: nonceCookie, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ _csrf: csrf, apiKey: t.apiKey }) });
    expect(signIn.status).toBe(303);
    const session = signIn.headers.getSetCookie().map((c) => c.split(";")[0]).filter((c): c is string => c !== undefined && !c.endsWith("=")).join("; ");
    const page = await fetch(`${t.url}/dashboard/connections/${id}`, { headers: { cookie: session } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Refresh now");
    expect(html).not.toContain(`/dashboard/connections/${id}/reconnect`);
    expect(html).toContain("uses client credentials: there is no end user to reconnect");
  });
});
