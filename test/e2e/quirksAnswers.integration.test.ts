/**
 * Catalogue quirks about *what a provider answers*, each against oidc-provider
 * made to answer that way (its documented middleware post-processes the token
 * endpoint's answers): no `expires_in` (Salesforce), errors with HTTP 200
 * (GitHub), Microsoft's `error_codes` (AADSTS…), and RFC 7009 revocation.
 * Providers start from the catalogue template, endpoints pointed at oidc-provider.
 */
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer, type TokenAnswer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { connectWith } from "../support/connect.js";

type Shape = (answer: TokenAnswer) => { status?: number; body: Record<string, unknown> } | void;

describe("answer quirks on oidc-provider", () => {
  let db: TestDatabase;
  let t: GrantkeeperUnderTest;
  let as: AuthServer;
  /** How the authorization server's token endpoint answers right now. */
  let shape: Shape = () => undefined;
  let n = 0;

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db, { refresh: { jitterMs: 0, minIntervalMs: 1_000, assumedLifetimeMs: 3_600_000 } });
    as = await startAuthServer({
      accessTokenTtlSeconds: 3600,
      // Answers are rewritten after oidc-provider handled the request: without rotation, a rewritten
      // answer does not leave the grant holding a refresh token the provider already consumed.
      rotateRefreshTokens: false,
      clients: [{ clientId: "quirks", clientSecret: "quirks-secret-123", redirectUris: [`${t.url}/v1/oauth/callback`] }],
      tokenResponse: (answer) => shape(answer),
    });
    const at = { clientId: "quirks", clientSecret: "quirks-secret-123", tokenEndpointAuthMethod: "client_secret_basic", authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, scopes: ["openid"] };
    const put = async (id: string, body: Record<string, unknown>) => expect((await t.api("PUT", `/v1/providers/${id}`, { ...at, ...body })).status).toBe(200);
    // Salesforce: its API base is the token response's instance_url (here oidc-provider itself, for userinfo).
    await put("salesforce", { template: "salesforce" });
    await put("plain", { apiBaseUrl: as.issuer });
    await put("github", { template: "github", apiBaseUrl: as.issuer });
    await put("microsoft", { template: "microsoft" });
    await put("google", { template: "google", revocationEndpoint: as.revocationEndpoint, apiBaseUrl: as.issuer, authorizationParams: {} });
  });

  afterAll(async () => {
    await t?.close();
    await as?.close();
    await db?.cleanup();
  });

  function connect(providerId: string) {
    const user = `user-${++n}`;
    return connectWith(t.gk, { providerId, entityId: user });
  }

  const refresh = async (id: string) => {
    t.clock.advance(2_000);
    return (await t.api("POST", `/v1/connections/${id}/refresh`)).body;
  };
  const userinfo = async (id: string) => (await fetch(`${t.url}/v1/proxy/${id}/me`, { headers: { authorization: `Bearer ${t.apiKey}` } })).status;

  describe("expiresInMissing (Salesforce): no expires_in, though tokens do expire", () => {
    const salesforce: Shape = ({ status, body }) => {
      if (status !== 200) return;
      const { expires_in: _gone, ...rest } = body;
      return { body: { ...rest, instance_url: as.issuer } };
    };
    const outage: Shape = () => ({ status: 503, body: { error: "temporarily_unavailable" } });

    it("assumes a lifetime and, past it, still hands the token out while the provider is down: the API's 401 is the signal", async () => {
      shape = salesforce;
      const conn = await connect("salesforce");
      expect(conn).toMatchObject({ expiresAtAssumed: true, connectionConfig: { instance_url: as.issuer } });
      expect(Date.parse(conn.expiresAt!) - t.clock.now()).toBe(3_600_000);

      shape = outage;
      t.clock.set(Date.parse(conn.expiresAt!) + 60_000);
      const token = await t.api("POST", `/v1/connections/${conn.id}/token`);
      expect(token.status).toBe(200);
      expect((await t.api("GET", `/v1/connections/${conn.id}`)).body).toMatchObject({ state: "degraded", usable: true, lastError: { class: "transient", code: "http_503" } });
      // The guess was wrong in the harmless direction: the token still works.
      expect(await userinfo(conn.id)).toBe(200);

      // The grant dies at the provider: the API answers 401, the forced refresh finds it dead.
      shape = salesforce;
      await as.revokeGrantsOf(`user-${n}`);
      t.clock.advance(2_000);
      expect(await userinfo(conn.id)).toBe(409);
      expect((await t.api("GET", `/v1/connections/${conn.id}`)).body).toMatchObject({ state: "error", lastError: { code: "invalid_grant" } });
    });

    it("without the quirk an expired assumed lifetime during an outage answers 503 token_unavailable", async () => {
      shape = salesforce;
      const conn = await connect("plain");
      expect(conn.expiresAtAssumed).toBe(true);
      shape = outage;
      t.clock.set(Date.parse(conn.expiresAt!) + 60_000);
      const token = await t.api("POST", `/v1/connections/${conn.id}/token`);
      expect(token.status).toBe(503);
      expect(token.body.code).toBe("token_unavailable");
      expect(token.headers.get("retry-after")).toMatch(/^\d+$/);
    });
  });

  describe("errorsWithStatus200 (GitHub): an error answered with HTTP 200", () => {
    const errorsWith200: Shape = ({ status, body }) => (status >= 400 ? { status: 200, body } : undefined);

    it("is read as the error it carries: a dead grant is error, classified by the provider's overrides", async () => {
      shape = () => undefined;
      const conn = await connect("github");
      await as.revokeGrantsOf(`user-${n}`);
      shape = errorsWith200;
      expect(await refresh(conn.id)).toMatchObject({ state: "error", usable: false, lastError: { class: "permanent", code: "invalid_grant" } });
    });

    it("elsewhere a 200 without a token is not understood, so it never kills the grant", async () => {
      shape = () => undefined;
      const conn = await connect("plain");
      await as.revokeGrantsOf(`user-${n}`);
      shape = errorsWith200;
      expect(await refresh(conn.id)).toMatchObject({ state: "degraded", usable: true, lastError: { class: "transient" } });
    });
  });

  describe("providerErrorCodes (Microsoft AADSTS…): the structured code outranks the error field", () => {
    it("AADSTS70008 (expired or revoked grant) → error, with the code", async () => {
      shape = () => undefined;
      const conn = await connect("microsoft");
      await as.revokeGrantsOf(`user-${n}`);
      shape = ({ status, body }) => (status === 400 ? { status, body: { ...body, error_codes: [70008] } } : undefined);
      expect(await refresh(conn.id)).toMatchObject({ state: "error", lastError: { class: "permanent", code: "AADSTS70008" } });
    });

    it("invalid_grant with AADSTS90033 (a transient service error) → degraded, the grant is not declared dead", async () => {
      shape = () => undefined;
      const conn = await connect("microsoft");
      shape = ({ grantType }) => (grantType === "refresh_token" ? { status: 400, body: { error: "invalid_grant", error_codes: [90033] } } : undefined);
      expect(await refresh(conn.id)).toMatchObject({ state: "degraded", usable: true, lastError: { class: "transient", code: "AADSTS90033" } });
      shape = () => undefined;
      expect(await refresh(conn.id)).toMatchObject({ state: "ready" });
    });

    it("a wrong client secret's AADSTS7000215 is provider-level: usable, never error", async () => {
      shape = () => undefined;
      const conn = await connect("microsoft");
      shape = ({ grantType }) => (grantType === "refresh_token" ? { status: 401, body: { error: "invalid_client", error_codes: [7000215] } } : undefined);
      expect(await refresh(conn.id)).toMatchObject({ state: "degraded", usable: true, lastError: { class: "permanent", code: "AADSTS7000215" } });
      // Fixing the provider retries it at once, like any provider-level failure.
      shape = () => undefined;
      await t.api("PUT", "/v1/providers/microsoft", { template: "microsoft", clientId: "quirks", clientSecret: "quirks-secret-123", tokenEndpointAuthMethod: "client_secret_basic", authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, scopes: ["openid"] });
      expect(Date.parse((await t.api("GET", `/v1/connections/${conn.id}`)).body.nextRefreshAt)).toBe(t.clock.now());
    });
  });

  describe("apiAuthFailure (Slack): the API refuses a token with HTTP 200 {ok: false}", () => {
    it("is treated like a 401: refreshed once, retried once, the caller sees the good answer", async () => {
      // A Slack-like Web API: the first token it sees for a user is "expired", any later one is fine.
      const seen = new Set<string>();
      const slack = createServer((req, res) => {
        const token = String(req.headers.authorization);
        const fresh = seen.size > 0 && !seen.has(token);
        seen.add(token);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(fresh ? { ok: true, channels: [] } : { ok: false, error: "token_expired" }));
      });
      await new Promise<void>((r) => slack.listen(0, "127.0.0.1", r));
      try {
        const api = `http://127.0.0.1:${(slack.address() as { port: number }).port}/api`;
        const slackAt = { clientId: "quirks", clientSecret: "quirks-secret-123", tokenEndpointAuthMethod: "client_secret_basic", scopeSeparator: " ", authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, scopes: ["openid"] };
        expect((await t.api("PUT", "/v1/providers/slack", { template: "slack", ...slackAt, apiBaseUrl: api })).status).toBe(200);
        shape = () => undefined;
        const conn = await connect("slack");
        const res = await fetch(`${t.url}/v1/proxy/${conn.id}/conversations.list`, { headers: { authorization: `Bearer ${t.apiKey}` } });
        expect(await res.json()).toEqual({ ok: true, channels: [] });
        expect(seen.size).toBe(2);
      } finally {
        await new Promise<void>((r) => (slack.closeAllConnections(), slack.close(() => r())));
      }
    });
  });

  describe("revocation endpoints (RFC 7009)", () => {
    it("DELETE revokes the grant at the provider: its tokens stop working there", async () => {
      shape = () => undefined;
      const conn = await connect("google");
      const { accessToken } = (await t.api("POST", `/v1/connections/${conn.id}/token`)).body;
      const me = (token: string) => fetch(`${as.issuer}/me`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
      expect(await me(accessToken)).toBe(200);
      expect((await t.api("DELETE", `/v1/connections/${conn.id}`)).body).toMatchObject({ deleted: true, revoked: true });
      // Revoking the refresh token revokes its grant, and with it the access token.
      expect(await me(accessToken)).toBe(401);
    });
  });
});
