/**
 * Provider-level failures against a real authorization server (oidc-provider):
 * a wrong client secret sent with client_secret_basic is answered the way
 * RFC 6749 §5.2 says it MUST be — `401`, `WWW-Authenticate: Basic …`,
 * `{"error":"invalid_client"}` — and must be classified permanent at the
 * provider's scope: every connection stays usable (`degraded`), ops get ONE
 * alert for the provider and its episode (not one per connection), and fixing
 * the secret brings every connection back with one all-clear. (Issue 12: the
 * challenge made oauth4webapi raise a WWWAuthenticateChallengeError that was
 * read as a bare `http_401`, transient, alerted per connection.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { issueGrant } from "../support/issueGrant.js";

const SECRET = "classification-client-secret";
const CONNECTIONS = 8;

describe("provider-level failures on a real authorization server", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let t: GrantkeeperUnderTest;
  const client = { clientId: "cls", clientSecret: SECRET, redirectUri: "http://127.0.0.1:9/cb" };
  const ids: string[] = [];

  const define = (clientSecret: string) =>
    t.api("PUT", "/v1/providers/acme", {
      displayName: "Acme",
      issuer: as.issuer,
      authorizationEndpoint: as.authorizationEndpoint,
      tokenEndpoint: as.tokenEndpoint,
      clientId: client.clientId,
      clientSecret,
      tokenEndpointAuthMethod: "client_secret_basic",
    });

  async function runDue() {
    await t.gk.scheduler.runDue();
    await t.gk.alerts.idle();
  }

  beforeAll(async () => {
    db = await testDatabase();
    as = await startAuthServer({ accessTokenTtlSeconds: 600, clients: [{ clientId: client.clientId, clientSecret: SECRET, redirectUris: [client.redirectUri] }] });
    t = await startGrantkeeper(db, { refresh: { marginMs: 60_000, jitterMs: 0, minIntervalMs: 1_000, recoveryIntervalMs: 600_000 } });
    t.secrets.add(SECRET);
    expect((await define(SECRET)).status).toBe(200);
    for (let i = 0; i < CONNECTIONS; i++) {
      const g = await issueGrant(as, client, { accountId: `user-${i}` });
      t.secrets.add(g.accessToken);
      t.secrets.add(g.refreshToken);
      // Due within the margin: the scheduler refreshes each at once.
      const res = await t.api("POST", "/v1/connections", { providerId: "acme", entityId: `e-${i}`, accessToken: g.accessToken, refreshToken: g.refreshToken, expiresIn: 30 });
      expect(res.status).toBe(201);
      ids.push(res.body.id);
    }
  });

  afterAll(async () => {
    await t?.close();
    await as?.close();
    await db?.cleanup();
  });

  it("oidc-provider answers a wrong client_secret_basic with 401, a Basic challenge and invalid_client", async () => {
    const res = await fetch(as.tokenEndpoint, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:wrong`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=refresh_token&refresh_token=x",
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm="[^"]+", error="invalid_client"/);
    expect(await res.json()).toMatchObject({ error: "invalid_client" });
  });

  it("a wrong secret: every connection degraded and usable, classified permanent provider invalid_client", async () => {
    expect((await define("the-wrong-secret")).status).toBe(200);
    await runDue();
    for (const id of ids) {
      const c = (await t.api("GET", `/v1/connections/${id}`)).body;
      expect(c).toMatchObject({ state: "degraded", usable: true, consecutiveFailures: 1, lastError: { class: "permanent", code: "invalid_client" } });
      // The access token is still valid: the user's work goes on.
      expect((await t.api("POST", `/v1/connections/${id}/token`)).status).toBe(200);
    }
    const events = (await t.api("GET", `/v1/connections/${ids[0]}/events`)).body.items;
    expect(events[0]).toMatchObject({ type: "refresh_failed", class: "permanent", code: "invalid_client", detail: { phase: "provider_misconfigured" } });
  });

  it("ops get one alert for the provider, none per connection — also when the failures go on", async () => {
    t.clock.advance(600_000);
    await runDue();
    const alerts = await t.gk.alerts.list(0);
    expect(alerts.map((a) => [a.kind, a.subject])).toEqual([["provider_misconfigured", { providerId: "acme" }]]);
    expect(alerts[0]!.message).toContain("invalid_client");
    for (const id of ids) expect((await t.api("GET", `/v1/connections/${id}`)).body).toMatchObject({ state: "degraded", consecutiveFailures: 2 });
  });

  it("fixing the secret retries every connection at once: all ready, one all-clear for the provider", async () => {
    expect((await define(SECRET)).status).toBe(200);
    await runDue();
    for (const id of ids) expect((await t.api("GET", `/v1/connections/${id}`)).body).toMatchObject({ state: "ready", consecutiveFailures: 0 });
    const alerts = await t.gk.alerts.list(0);
    expect(alerts.map((a) => [a.kind, a.subject])).toEqual([
      ["provider_misconfigured", { providerId: "acme" }],
      ["recovered", { providerId: "acme" }],
    ]);
  });

  it("a revoked grant at the same server is still permanent for that grant only", async () => {
    expect(await as.revokeGrantsOf("user-0")).toBeGreaterThan(0);
    t.clock.advance(1_000);
    const c = (await t.api("POST", `/v1/connections/${ids[0]}/refresh`)).body;
    expect(c).toMatchObject({ state: "error", usable: false, lastError: { class: "permanent", code: "invalid_grant" } });
    expect((await t.api("GET", `/v1/connections/${ids[1]}`)).body.state).toBe("ready");
  });

  it("never logs a token or the secret", async () => {
    const logs = t.logText();
    for (const s of t.secrets) expect(logs.includes(s)).toBe(false);
  });
});
