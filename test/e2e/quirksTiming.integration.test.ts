/**
 * Catalogue quirks that change *when and with what* grantkeeper refreshes,
 * each against oidc-provider configured to behave like the provider:
 * refresh-token rotation (QuickBooks, Xero), refresh tokens that die when
 * idle (keep-alive), short access-token lifetimes (HubSpot, Xero: 30 min) and
 * grants without refresh tokens. Providers start from the catalogue template
 * (its quirks are what is tested) with the endpoints pointed at oidc-provider.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer, type AuthServerOptions } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { connectWith } from "../support/connect.js";

const MIN = 60_000;
const HOUR = 60 * MIN;

describe("timing quirks on oidc-provider", () => {
  let db: TestDatabase;
  let t: GrantkeeperUnderTest;
  const servers: AuthServer[] = [];
  let n = 0;

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db, { refresh: { jitterMs: 0, minIntervalMs: 1_000, marginMs: 5 * MIN, keepAliveMs: 24 * HOUR } });
  });

  afterAll(async () => {
    await t?.close();
    await Promise.all(servers.map((s) => s.close()));
    await db?.cleanup();
  });

  /** An oidc-provider with one client whose redirect URI is this grantkeeper's callback. */
  async function authServer(opts: Omit<AuthServerOptions, "clients"> = {}): Promise<AuthServer> {
    const as = await startAuthServer({ ...opts, clients: [{ clientId: "quirks", clientSecret: "quirks-secret-123", redirectUris: [`${t.url}/v1/oauth/callback`] }] });
    servers.push(as);
    return as;
  }

  /** Define `id` from a catalogue template, pointed at `as`. */
  async function provider(id: string, template: string, as: AuthServer, extra: Record<string, unknown> = {}): Promise<void> {
    const body = { template, clientId: "quirks", clientSecret: "quirks-secret-123", tokenEndpointAuthMethod: "client_secret_basic", authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, revocationEndpoint: as.revocationEndpoint, apiBaseUrl: as.issuer, scopes: ["openid"], ...extra };
    const res = await t.api("PUT", `/v1/providers/${id}`, body);
    expect(res.status).toBe(200);
  }

  /** Connect a new user through the real login and consent pages. */
  function connect(providerId: string) {
    const user = `user-${++n}`;
    return connectWith(t.gk, { providerId, entityId: user });
  }

  const get = async (id: string) => (await t.api("GET", `/v1/connections/${id}`)).body;
  const events = async (id: string) => ((await t.api("GET", `/v1/connections/${id}/events`)).body.items as Array<{ type: string }>).map((e) => e.type);
  const userinfo = async (id: string) => (await fetch(`${t.url}/v1/proxy/${id}/me`, { headers: { authorization: `Bearer ${t.apiKey}` } })).status;

  describe("rotatesRefreshTokens (QuickBooks): a refresh answer without a new refresh token", () => {
    let as: AuthServer;
    let dropRefreshToken = false;

    beforeAll(async () => {
      // oidc-provider rotates and detects reuse: a consumed refresh token presented again revokes the whole grant.
      as = await authServer({ accessTokenTtlSeconds: 3600, tokenResponse: ({ grantType, status, body }) => {
        if (dropRefreshToken && grantType === "refresh_token" && status === 200) {
          const { refresh_token: _dropped, ...rest } = body;
          return { body: rest };
        }
      } });
      await provider("qb", "quickbooks", as);
      await provider("no-quirk", "quickbooks", as, { quirks: { rotatesRefreshTokens: false } });
    });

    it("uses each rotated refresh token once, as the provider requires", async () => {
      dropRefreshToken = false;
      const conn = await connect("qb");
      for (let i = 0; i < 3; i++) {
        t.clock.advance(2_000);
        expect((await t.api("POST", `/v1/connections/${conn.id}/refresh`)).body).toMatchObject({ state: "ready" });
      }
      expect(await userinfo(conn.id)).toBe(200);
    });

    it("is flagged, and the consumed token is never presented again: the grant survives until its access token expires", async () => {
      const conn = await connect("qb");
      dropRefreshToken = true;
      t.clock.advance(2_000);
      const after = (await t.api("POST", `/v1/connections/${conn.id}/refresh`)).body;
      dropRefreshToken = false;
      expect(after).toMatchObject({ state: "ready", usable: true });
      expect(await events(conn.id)).toContain("refresh_token_not_rotated");
      // Nothing left to refresh with: due at expiry, where it becomes not_refreshable without a call.
      expect(after.nextRefreshAt).toBe(after.expiresAt);
      expect(await userinfo(conn.id)).toBe(200);
      t.clock.set(Date.parse(after.expiresAt) + 1_000);
      await t.gk.scheduler.runDue();
      // not_refreshable is decided without a call (a call would have presented the consumed token).
      expect(await get(conn.id)).toMatchObject({ state: "error", lastError: { code: "not_refreshable" } });
    });

    it("without the quirk the consumed token is kept and presented again: reuse detection kills the grant at once", async () => {
      const conn = await connect("no-quirk");
      dropRefreshToken = true;
      t.clock.advance(2_000);
      await t.api("POST", `/v1/connections/${conn.id}/refresh`);
      dropRefreshToken = false;
      expect(await events(conn.id)).not.toContain("refresh_token_not_rotated");
      t.clock.advance(2_000);
      expect((await t.api("POST", `/v1/connections/${conn.id}/refresh`)).body).toMatchObject({ state: "error", lastError: { code: "invalid_grant" } });
    });
  });

  describe("refreshTokenIdleExpirySeconds (Xero, QuickBooks, Box): keep-alive before the refresh token dies unused", () => {
    let as: AuthServer;

    beforeAll(async () => {
      // Refresh tokens live 2 h and each rotation gives the new one 2 h again; access tokens outlive them (1 day).
      as = await authServer({ accessTokenTtlSeconds: 86_400, refreshTokenTtlSeconds: 7_200 });
      await provider("idle", "xero", as, { quirks: { refreshTokenIdleExpirySeconds: 7_200 } });
      await provider("idle-unknown", "xero", as, { quirks: { refreshTokenIdleExpirySeconds: undefined } });
    });

    it("schedules the keep-alive at half the idle lifetime, and the provider accepts it", async () => {
      const conn = await connect("idle");
      expect(Date.parse(conn.nextRefreshAt!) - t.clock.now()).toBe(HOUR);
      const calls = as.refreshRequests();
      t.clock.advance(HOUR);
      await t.gk.scheduler.runDue();
      expect(as.refreshRequests()).toBe(calls + 1);
      const after = await get(conn.id);
      expect(after.state).toBe("ready");
      expect(Date.parse(after.nextRefreshAt) - t.clock.now()).toBe(HOUR);
    });

    it("without it the grant would wait for the general keep-alive, long after its refresh token died", async () => {
      const conn = await connect("idle-unknown");
      expect(Date.parse(conn.nextRefreshAt!) - t.clock.now()).toBeGreaterThan(2 * HOUR);
    });
  });

  describe("short access-token lifetimes (HubSpot, Xero: 30 minutes) with a margin longer than that", () => {
    let as: AuthServer;

    beforeAll(async () => {
      as = await authServer({ accessTokenTtlSeconds: 1_800 });
      await provider("hubspot", "hubspot", as, { refreshMarginSeconds: 3_600 });
    });

    it("refreshes at half the lifetime, not every minInterval", async () => {
      const conn = await connect("hubspot");
      expect(Date.parse(conn.nextRefreshAt!) - t.clock.now()).toBe(15 * MIN);
      const calls = as.refreshRequests();
      // Two hours, one scheduler pass a minute: 8 refreshes, each 15 minutes apart.
      for (let minute = 0; minute < 120; minute++) {
        t.clock.advance(MIN);
        await t.gk.scheduler.runDue();
      }
      expect(as.refreshRequests() - calls).toBe(8);
      expect(await get(conn.id)).toMatchObject({ state: "ready", consecutiveFailures: 0 });
      expect(await userinfo(conn.id)).toBe(200);
    });
  });

  describe("refreshTokenOptional (GitHub OAuth apps, Slack without rotation)", () => {
    let as: AuthServer;

    beforeAll(async () => {
      as = await authServer({ accessTokenTtlSeconds: 3600, issueRefreshTokens: false });
      await provider("gh-like", "github", as);
      await provider("google-like", "google", as, { authorizationParams: {} });
    });

    it("is expected where the provider says so, and flagged elsewhere (offline access was probably not asked for)", async () => {
      const gh = await connect("gh-like");
      const google = await connect("google-like");
      expect(await events(gh.id)).not.toContain("refresh_token_missing");
      expect(await events(google.id)).toContain("refresh_token_missing");
      // Either way nothing can renew it: due at expiry, to be marked not_refreshable then.
      for (const c of [gh, google]) expect(c.nextRefreshAt).toBe(c.expiresAt);
      expect(t.logText()).toContain("grant stored without a refresh token");
    });
  });
});
