/**
 * API auth failures (issue 12 item 4) through the one `authorizedFetch`, with
 * real refreshes at oidc-provider (rotating refresh tokens: a second refresh
 * with the same token would kill the grant, so "refreshed once" is visible):
 * a 401 or a provider's `apiAuthFailure` match refreshes once — once for many
 * concurrent rejections — and retries once; a second rejection goes back to
 * the caller and counts; `authFailuresToDegrade` (3) in a row make the
 * connection `degraded` (`api_auth_rejected`), still usable, never `error`;
 * an accepted call makes it `ready` again. The proxy and `ctx.fetch` behave
 * the same, and share the count.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAuthError } from "../../src/jobs/errors.js";
import { contextOf } from "../../src/jobs/context.js";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { issueGrant } from "../support/issueGrant.js";
import { rawRequest } from "../support/upstream.js";

const REDIRECT = "http://127.0.0.1:9/cb";
const SLACK_AUTH_ERRORS = ["token_expired", "invalid_auth", "token_revoked", "not_authed"];

describe("API auth failures", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let t: GrantkeeperUnderTest;
  let slack: Server;
  let slackOrigin: string;
  /** `accept`: answers like Slack for the token the authorization server says is valid; `revoked`: the workspace removed the app. */
  let slackMode: "accept" | "revoked" = "accept";
  const slackSeen: Array<{ method: string; bytes: number }> = [];
  let barrier: { size: number; waiting: Array<() => void> } | undefined;
  let n = 0;
  const key = () => ({ authorization: `Bearer ${t.apiKey}` });

  beforeAll(async () => {
    db = await testDatabase();
    // No rate limit between forced refreshes: "once" must come from single-flight, not from the limit.
    t = await startGrantkeeper(db, { refresh: { minIntervalMs: 0, jitterMs: 0 } });
    as = await startAuthServer({ accessTokenTtlSeconds: 600, clients: [{ clientId: "c", clientSecret: "api-auth-client-secret", redirectUris: [REDIRECT] }] });
    // A Slack-like Web API: HTTP 200 always, `ok:false` with an error code when the token is no good;
    // under /api/rest a plain REST API answering 401 instead. Tokens are checked at the authorization server.
    slack = createServer(async (req, res) => {
      let bytes = 0;
      for await (const c of req) bytes += (c as Buffer).length;
      slackSeen.push({ method: req.method!, bytes });
      if (barrier) {
        // Hold every answer until `barrier.size` requests are in: they were all sent with the same token.
        const b = barrier;
        await new Promise<void>((r) => {
          b.waiting.push(r);
          if (b.waiting.length === b.size) {
            barrier = undefined;
            for (const w of b.waiting) w();
          }
        });
      }
      const who = await fetch(`${as.issuer}/me`, { headers: { authorization: req.headers.authorization ?? "" } });
      if (req.url!.startsWith("/api/rest/")) {
        res.writeHead(who.ok ? 200 : 401, { "content-type": "application/json" }).end(who.ok ? await who.text() : '{"error":"invalid_token"}');
        return;
      }
      const body = slackMode === "revoked" ? { ok: false, error: "token_revoked" } : who.ok ? { ok: true, user: ((await who.json()) as { sub: string }).sub, bytes } : { ok: false, error: "token_expired" };
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => slack.listen(0, "127.0.0.1", r));
    slackOrigin = `http://127.0.0.1:${(slack.address() as { port: number }).port}`;
    const endpoints = { issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, clientId: "c", clientSecret: "api-auth-client-secret", scopes: ["openid", "offline_access"] };
    expect((await t.api("PUT", "/v1/providers/oidc", { ...endpoints, apiBaseUrl: as.issuer })).status).toBe(200);
    expect((await t.api("PUT", "/v1/providers/slackish", { ...endpoints, apiBaseUrl: `${slackOrigin}/api`, apiAuthFailure: { json: [{ path: "error", in: SLACK_AUTH_ERRORS }] } })).status).toBe(200);
  });

  afterAll(async () => {
    await t?.close();
    await as?.close();
    await new Promise<void>((r) => (slack ? (slack.closeAllConnections(), slack.close(() => r())) : r()));
    await db?.cleanup();
  });

  /** A real grant whose stored access token the API no longer accepts (it was replaced elsewhere, or expired early). */
  async function staleConnection(providerId: string): Promise<{ id: string; sub: string }> {
    const sub = `user-${++n}`;
    const g = await issueGrant(as, { clientId: "c", clientSecret: "api-auth-client-secret", redirectUri: REDIRECT }, { accountId: sub, scope: "openid offline_access" });
    const res = await t.api("POST", "/v1/connections", { providerId, entityId: sub, accessToken: `stale-${sub}`, refreshToken: g.refreshToken, expiresIn: 3600 });
    expect(res.status).toBe(201);
    return { id: res.body.id, sub };
  }

  const connection = async (id: string) => (await t.api("GET", `/v1/connections/${id}`)).body;
  /** The alerts raised about one connection so far (`GET /v1/alerts`), oldest first. */
  const alertsOf = async (id: string) => {
    await t.gk.alerts.idle();
    const res = await t.api("GET", "/v1/alerts?since=1970-01-01T00:00:00Z");
    expect(res.status).toBe(200);
    return (res.body.items as Array<{ kind: string; severity: string; subject: { connectionId?: string } }>).filter((a) => a.subject.connectionId === id).map(({ kind, severity }) => ({ kind, severity }));
  };
  const metric = async (name: string, provider: string) => Number(new RegExp(`^${name}\\{provider="${provider}"\\} (\\d+)`, "m").exec(await t.gk.telemetry.metrics.render())?.[1] ?? 0);

  it("a 401 refreshes once and retries once (oidc-provider's userinfo, a rotating refresh token)", async () => {
    const c = await staleConnection("oidc");
    const refreshes = as.refreshRequests();
    const res = await rawRequest(t.url, "GET", `/v1/proxy/${c.id}/me`, key());
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).sub).toBe(c.sub);
    expect(as.refreshRequests() - refreshes).toBe(1);
    expect(await connection(c.id)).toMatchObject({ state: "ready", usable: true });
  });

  it("ten concurrent 401s with the same token share one refresh; every call then succeeds", async () => {
    const c = await staleConnection("slackish");
    const refreshes = as.refreshRequests();
    const before = await metric("grantkeeper_api_unauthorized_total", "slackish");
    barrier = { size: 10, waiting: [] };
    const answers = await Promise.all(Array.from({ length: 10 }, () => rawRequest(t.url, "GET", `/v1/proxy/${c.id}/rest/me`, key())));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(answers.every((a) => JSON.parse(a.body).sub === c.sub)).toBe(true);
    // A second refresh with the rotated-away token would have been invalid_grant and killed the grant.
    expect(as.refreshRequests() - refreshes).toBe(1);
    expect(await connection(c.id)).toMatchObject({ state: "ready" });
    expect((await metric("grantkeeper_api_unauthorized_total", "slackish")) - before).toBe(10);
  });

  describe.each(["proxy", "ctx.fetch"] as const)("through %s", (caller) => {
    /** One call the way `caller` makes it: the status, the JSON body, and whether ctx.fetch threw AuthError. */
    async function call(id: string, init: { method?: string; body?: string } = {}): Promise<{ status?: number; json?: any; authError?: boolean }> {
      if (caller === "proxy") {
        const res = await rawRequest(t.url, init.method ?? "GET", `/v1/proxy/${id}/users.info`, { ...key(), ...(init.body ? { "content-type": "application/octet-stream" } : {}) }, init.body);
        return { status: res.status, json: JSON.parse(res.body) };
      }
      try {
        const res = await contextOf(t.gk, [id]).fetch(id, "/users.info", { method: init.method ?? "GET", ...(init.body ? { body: init.body } : {}) });
        return { status: res.status, json: await res.json() };
      } catch (e) {
        if (isAuthError(e)) return { authError: true };
        throw e;
      }
    }

    it("Slack's 200 ok:false token_expired is an auth failure: refreshed once, retried once, the caller sees the good answer", async () => {
      slackMode = "accept";
      const c = await staleConnection("slackish");
      const refreshes = as.refreshRequests();
      slackSeen.length = 0;
      expect(await call(c.id)).toEqual({ status: 200, json: { ok: true, user: c.sub, bytes: 0 } });
      expect(slackSeen).toHaveLength(2);
      expect(as.refreshRequests() - refreshes).toBe(1);
    });

    it("a small body is sent again after the refresh; one over 64 KiB is not (refreshed, rejection back to the caller)", async () => {
      slackMode = "accept";
      const c = await staleConnection("slackish");
      slackSeen.length = 0;
      const small = "x".repeat(1_000);
      expect(await call(c.id, { method: "POST", body: small })).toEqual({ status: 200, json: { ok: true, user: c.sub, bytes: 1_000 } });
      expect(slackSeen).toEqual([{ method: "POST", bytes: 1_000 }, { method: "POST", bytes: 1_000 }]);

      const d = await staleConnection("slackish");
      const refreshes = as.refreshRequests();
      slackSeen.length = 0;
      const big = "y".repeat(100_000);
      const first = await call(d.id, { method: "POST", body: big });
      if (caller === "proxy") expect(first).toEqual({ status: 200, json: { ok: false, error: "token_expired" } });
      else expect(first).toEqual({ authError: true });
      expect(slackSeen).toEqual([{ method: "POST", bytes: 100_000 }]);
      expect(as.refreshRequests() - refreshes).toBe(1);
      // The caller's own retry carries the fresh token; a streamed rejection does not count toward degraded.
      expect(await call(d.id, { method: "POST", body: big })).toEqual({ status: 200, json: { ok: true, user: d.sub, bytes: 100_000 } });
      expect(await connection(d.id)).toMatchObject({ state: "ready" });
    });

    it("an answer that is not about the token passes through untouched, without a refresh", async () => {
      slackMode = "accept";
      const c = await staleConnection("slackish");
      await call(c.id); // refreshes the stale token
      const refreshes = as.refreshRequests();
      slackSeen.length = 0;
      expect(await call(c.id)).toEqual({ status: 200, json: { ok: true, user: c.sub, bytes: 0 } });
      expect(slackSeen).toHaveLength(1);
      expect(as.refreshRequests()).toBe(refreshes);
    });

    it("3 rejections in a row make the connection degraded (api_auth_rejected), still usable; 2 do not; an accepted call makes it ready", async () => {
      const c = await staleConnection("slackish");
      slackMode = "revoked";
      const rejectedBefore = await metric("grantkeeper_api_auth_rejected_total", "slackish");
      const rejected = caller === "proxy" ? { status: 200, json: { ok: false, error: "token_revoked" } } : { authError: true };
      expect(await call(c.id)).toEqual(rejected);
      expect(await call(c.id)).toEqual(rejected);
      expect(await connection(c.id)).toMatchObject({ state: "ready", usable: true });
      expect((await connection(c.id)).lastError).toBeUndefined();
      expect(await call(c.id)).toEqual(rejected);
      const degraded = await connection(c.id);
      expect(degraded).toMatchObject({ state: "degraded", usable: true, lastError: { class: "transient", code: "api_auth_rejected" } });
      expect((await metric("grantkeeper_api_auth_rejected_total", "slackish")) - rejectedBefore).toBe(3);
      // Never error by itself, however many follow; the grant still hands out tokens.
      expect(await call(c.id)).toEqual(rejected);
      expect(await connection(c.id)).toMatchObject({ state: "degraded" });
      expect((await t.api("POST", `/v1/connections/${c.id}/token`)).status).toBe(200);
      expect((await t.api("POST", "/v1/preflight", { entityId: c.sub, providers: ["slackish"] })).body.providers[0]).toMatchObject({ usable: true, action: "none" });
      const events = (await t.api("GET", `/v1/connections/${c.id}/events`)).body.items.map((e: { type: string }) => e.type);
      expect(events.filter((e: string) => e === "api_auth_rejected")).toHaveLength(1);
      // One alert for the episode, however many rejections follow.
      expect(await alertsOf(c.id)).toEqual([{ kind: "api_auth_rejected", severity: "warning" }]);

      slackMode = "accept";
      expect(await call(c.id)).toMatchObject({ status: 200, json: { ok: true, user: c.sub } });
      expect(await connection(c.id)).toMatchObject({ state: "ready" });
      expect((await connection(c.id)).lastError).toBeUndefined();
      // The first accepted call ends the episode with the all-clear.
      expect(await alertsOf(c.id)).toEqual([
        { kind: "api_auth_rejected", severity: "warning" },
        { kind: "recovered", severity: "info" },
      ]);
      // The count starts again from 0.
      slackMode = "revoked";
      await call(c.id);
      await call(c.id);
      expect(await connection(c.id)).toMatchObject({ state: "ready" });
      slackMode = "accept";
    });
  });

  it("the proxy and ctx.fetch share one count", async () => {
    const c = await staleConnection("slackish");
    slackMode = "revoked";
    expect((await rawRequest(t.url, "GET", `/v1/proxy/${c.id}/a`, key())).status).toBe(200);
    expect((await rawRequest(t.url, "GET", `/v1/proxy/${c.id}/a`, key())).status).toBe(200);
    const e = await contextOf(t.gk, [c.id]).fetch(c.id, "/a").then(() => undefined, (err: unknown) => err);
    expect(isAuthError(e)).toBe(true);
    expect(await connection(c.id)).toMatchObject({ state: "degraded", lastError: { code: "api_auth_rejected" } });
    slackMode = "accept";
  });

  it("a grant revoked at the provider: the 401's refresh finds it dead, 409 connection_error, state error", async () => {
    const c = await staleConnection("oidc");
    await as.revokeGrantsOf(c.sub);
    const res = await rawRequest(t.url, "GET", `/v1/proxy/${c.id}/me`, key());
    expect(res.status).toBe(409);
    expect(JSON.parse(res.body).code).toBe("connection_error");
    expect(await connection(c.id)).toMatchObject({ state: "error" });
  });
});
