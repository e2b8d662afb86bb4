/**
 * Slow bodies at the token endpoint (issue 12, chaos "slow bodies"): the
 * status line and headers come at once, the body trickles in. The refresh
 * timeout (`refresh.timeoutSeconds`) must cover reading the body, not only
 * the headers: an answer still trickling at the timeout is abandoned there and
 * classified transient — the refresh never hangs on it — and an answer that
 * trickles in within the timeout is a success like any other (the rotated
 * refresh token is kept: the grant survives).
 *
 * oidc-provider (refresh-token rotation on) behind the fault proxy; real
 * grants from its login; wall-clock bounds, because the timeout is a real
 * one (the domain clock is a manual one and never moves here).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startFaultProxy, type FaultProxy } from "../support/faultProxy.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { issueGrant } from "../support/issueGrant.js";

const SECRET = "slow-body-client-secret";
const TIMEOUT_MS = 1_000;
/** Far past the timeout: a client that waits for it would hang the test. */
const TRICKLE_PAST_MS = 8_000;

describe("slow token endpoint bodies", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let proxy: FaultProxy;
  let t: GrantkeeperUnderTest;
  let id: string;
  const client = { clientId: "slow", clientSecret: SECRET, redirectUri: "http://127.0.0.1:9/cb" };

  /** A forced refresh through the API, timed on the wall clock. */
  async function refresh(): Promise<{ body: any; ms: number }> {
    const t0 = performance.now();
    const res = await t.api("POST", `/v1/connections/${id}/refresh`);
    expect(res.status).toBe(200);
    return { body: res.body, ms: performance.now() - t0 };
  }

  beforeAll(async () => {
    db = await testDatabase();
    as = await startAuthServer({ accessTokenTtlSeconds: 600, clients: [{ clientId: client.clientId, clientSecret: SECRET, redirectUris: [client.redirectUri] }] });
    proxy = await startFaultProxy(as.issuer);
    t = await startGrantkeeper(db, {
      refresh: { timeoutMs: TIMEOUT_MS, minIntervalMs: 0, jitterMs: 0, marginMs: 60_000 },
      // The subject is one call's timeout; the provider breaker would take over after 3 faults in a row.
      extra: { breaker: { maxConsecutiveFailures: 100, cooldownMs: 120_000 } },
    });
    t.secrets.add(SECRET);
    const put = await t.api("PUT", "/v1/providers/acme", {
      displayName: "Acme (oidc-provider, slow)",
      issuer: as.issuer,
      authorizationEndpoint: as.authorizationEndpoint,
      tokenEndpoint: `${proxy.url}/token`,
      clientId: client.clientId,
      clientSecret: SECRET,
      tokenEndpointAuthMethod: "client_secret_basic",
    });
    expect(put.status).toBe(200);
    const g = await issueGrant(as, client);
    t.secrets.add(g.accessToken);
    t.secrets.add(g.refreshToken);
    const res = await t.api("POST", "/v1/connections", { providerId: "acme", entityId: "e-slow", accessToken: g.accessToken, refreshToken: g.refreshToken, expiresIn: 600 });
    expect(res.status).toBe(201);
    id = res.body.id;
  });

  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await as?.close();
    await db?.cleanup();
  });

  it("a real answer trickling in within the timeout is a success: the rotated refresh token is kept", async () => {
    proxy.setMode("slowBody", { slowBody: { durationMs: TIMEOUT_MS * 0.4 } });
    const before = as.refreshRequests();
    const { body, ms } = await refresh();
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS * 0.4 - 20);
    expect(body).toMatchObject({ state: "ready", consecutiveFailures: 0, usable: true });
    expect(as.refreshRequests()).toBe(before + 1);
    // The grant survived: the refresh token stored from the slow answer works.
    proxy.setMode("pass");
    expect((await refresh()).body).toMatchObject({ state: "ready", consecutiveFailures: 0 });
    expect(as.refreshRequests()).toBe(before + 2);
  });

  it("a 503 whose body trickles past the timeout: its status is the answer, transient at once, nothing waits for the body", async () => {
    proxy.setMode("slowBody", { slowBody: { durationMs: TRICKLE_PAST_MS, canned: { status: 503, body: { error: "temporarily_unavailable", error_description: "x".repeat(200) } } } });
    const { body, ms } = await refresh();
    // A 5xx is transient whatever its body says: the body is not read (and the call's end tears its stream down).
    expect(ms).toBeLessThan(TIMEOUT_MS);
    expect(body).toMatchObject({ state: "degraded", usable: true, consecutiveFailures: 1, lastError: { class: "transient", code: "http_503" } });
  });

  it("a 200 token response still trickling at the timeout is abandoned at the timeout: transient timeout, the late token never stored", async () => {
    proxy.setMode("slowBody", { slowBody: { durationMs: TRICKLE_PAST_MS, canned: { status: 200, body: { access_token: "at-too-late", token_type: "Bearer", expires_in: 600, refresh_token: "rt-too-late" } } } });
    const { body, ms } = await refresh();
    // At the timeout, not at the end of the body (8 s): the timeout covers reading the body, not only the headers.
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(ms).toBeLessThan(TIMEOUT_MS + 1_500);
    expect(body).toMatchObject({ state: "degraded", usable: true, consecutiveFailures: 2, lastError: { class: "transient", code: "timeout", message: "token endpoint answered 200 but its body did not arrive in time" } });
    expect((await t.api("POST", `/v1/connections/${id}/token`)).body.accessToken).not.toBe("at-too-late");
  });

  it("a 400 invalid_grant still trickling at the timeout is a timeout, not a dead grant: the error was never received", async () => {
    proxy.setMode("slowBody", { slowBody: { durationMs: TRICKLE_PAST_MS, canned: { status: 400, body: { error: "invalid_grant", error_description: "y".repeat(200) } } } });
    const { body, ms } = await refresh();
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
    expect(ms).toBeLessThan(TIMEOUT_MS + 1_500);
    expect(body).toMatchObject({ state: "degraded", usable: true, consecutiveFailures: 3, lastError: { class: "transient", code: "timeout" } });
    const events = (await t.api("GET", `/v1/connections/${id}/events`)).body.items;
    expect(events[0]).toMatchObject({ type: "refresh_failed", class: "transient", code: "timeout", detail: { reason: "timeout" } });
    expect(events.some((e: { type: string }) => e.type === "invalidated")).toBe(false);
  });

  it("the refresh token was never spent by the abandoned calls: the next refresh through a healthy endpoint works", async () => {
    proxy.setMode("pass");
    expect((await refresh()).body).toMatchObject({ state: "ready", consecutiveFailures: 0 });
    const row = (await t.api("GET", `/v1/connections/${id}`)).body;
    expect(row.lastError).toBeUndefined();
  });

  it("never logs a token or the client secret", async () => {
    const logs = t.logText();
    for (const s of t.secrets) expect(logs.includes(s)).toBe(false);
  });
});
