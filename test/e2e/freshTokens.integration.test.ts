/**
 * Fresh tokens from memory (issue 16 item 2) on two instances sharing one
 * store, each with its own manual clock, against the real authorization
 * server: a refresh by the other instance is seen within one margin, an
 * expired token is never handed out from memory, and this instance's own
 * revocation, re-authorization and dead grant take effect at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/domain/clock.js";
import { internalsOf } from "../../src/internals.js";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { connectEntity } from "../support/connect.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const MARGIN_MS = 10_000;

describe("fresh tokens from memory, two instances on one store", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let a: GrantkeeperUnderTest;
  let b: GrantkeeperUnderTest;
  let provider: Record<string, unknown>;
  let upstream: Upstream;
  /** The one token the provider's API accepts; undefined: any. */
  let accepted: string | undefined;

  beforeAll(async () => {
    db = await testDatabase();
    const key = testKey();
    const start = Date.now();
    const refresh = { marginMs: MARGIN_MS, jitterMs: 0, timeoutMs: 2_000, minIntervalMs: 0 };
    a = await startGrantkeeper(db, { encryptionKey: key, instanceId: "instance-a", clock: new ManualClock(start), refresh, logName: "a.log" });
    b = await startGrantkeeper(db, { encryptionKey: key, instanceId: "instance-b", clock: new ManualClock(start), refresh, logName: "b.log" });
    as = await startAuthServer({ accessTokenTtlSeconds: 60, clients: [{ clientId: "c", clientSecret: "fresh-tokens-secret", redirectUris: [`${a.url}/v1/oauth/callback`] }] });
    upstream = await startUpstream();
    upstream.handle((req, res) => {
      const ok = accepted === undefined || req.headers.authorization === `Bearer ${accepted}`;
      res.writeHead(ok ? 200 : 401, { "content-type": "application/json" }).end(JSON.stringify({ ok }));
    });
    provider = { apiBaseUrl: upstream.origin, issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, clientId: "c", clientSecret: "fresh-tokens-secret", scopes: ["openid"] };
    expect((await a.api("PUT", "/v1/providers/acme", provider)).status).toBe(200);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await as?.close();
    await upstream?.close();
    await db?.cleanup();
  });

  function advance(ms: number): void {
    a.clock.advance(ms);
    b.clock.advance(ms);
  }

  async function connect(entityId: string): Promise<string> {
    return (await connectEntity(a.gk, "acme", entityId)).body.connection.id;
  }

  it("serves repeated calls from memory, and sees another instance's refresh within one margin", async () => {
    const id = await connect("seen-user");
    const first = await a.api("POST", `/v1/connections/${id}/token`);
    expect(first.status).toBe(200);
    const t1 = first.body.accessToken as string;
    // B refreshes the grant: the store now holds a new token; A's memory still holds t1.
    const refreshed = await internalsOf(b.gk).engine.refresh(id, "forced");
    expect(refreshed.outcome).toBe("refreshed");
    const t2 = (await b.gk.connections.ensureFresh(id)).accessToken;
    expect(t2).not.toBe(t1);
    // Within the margin A may still hand out t1 (it is valid: 60 s lifetime, fresh for 50 s).
    expect((await a.gk.connections.ensureFresh(id)).accessToken).toBe(t1);
    // One margin later A has read the store again and hands out B's token, without a token call of its own.
    advance(MARGIN_MS);
    const callsBefore = internalsOf(a.gk).engine.tokenCalls;
    expect((await a.api("POST", `/v1/connections/${id}/token`)).body.accessToken).toBe(t2);
    expect((await a.gk.connections.ensureFresh(id)).accessToken).toBe(t2);
    expect(internalsOf(a.gk).engine.tokenCalls).toBe(callsBefore);
  });

  it("never hands out a token from memory once it is within the margin of its expiry, even when the provider is down", async () => {
    const id = await connect("expiry-user");
    const t1 = (await a.gk.connections.ensureFresh(id)).accessToken;
    expect(internalsOf(a.gk).freshTokens.get(id, a.clock.now())?.token.accessToken).toBe(t1);
    // B (another instance) points the provider at a closed port: A's memory is not told.
    expect((await b.api("PUT", "/v1/providers/acme", { ...provider, tokenEndpoint: "http://127.0.0.1:9/token" })).status).toBe(200);
    try {
      // Past the expiry: the refresh fails, and A answers 503, never the expired token it remembers.
      advance(61_000);
      const r = await a.api("POST", `/v1/connections/${id}/token`);
      expect(r.status).toBe(503);
      expect(r.body.code).toBe("token_unavailable");
      expect(JSON.stringify(r.body)).not.toContain(t1);
    } finally {
      expect((await b.api("PUT", "/v1/providers/acme", provider)).status).toBe(200);
    }
    // Provider back: the due refresh happens and a new token is handed out.
    const after = await a.api("POST", `/v1/connections/${id}/token`);
    expect(after.status).toBe(200);
    expect(after.body.accessToken).not.toBe(t1);
  });

  it("a token within the margin is refreshed, not served from memory", async () => {
    const id = await connect("margin-user");
    const t1 = (await a.gk.connections.ensureFresh(id)).accessToken;
    // 60 s lifetime, 10 s margin: at 51 s the token is due.
    advance(51_000);
    const callsBefore = as.refreshRequests();
    const t2 = (await a.gk.connections.ensureFresh(id)).accessToken;
    expect(t2).not.toBe(t1);
    expect(as.refreshRequests() - callsBefore).toBe(1);
  });

  it("a delete (with revocation) takes effect at once on the instance that did it", async () => {
    const id = await connect("delete-user");
    expect((await a.api("POST", `/v1/connections/${id}/token`)).status).toBe(200);
    expect((await a.api("DELETE", `/v1/connections/${id}`)).status).toBe(200);
    const r = await a.api("POST", `/v1/connections/${id}/token`);
    expect(r.status).toBe(404);
    expect(r.body.code).toBe("connection_not_found");
    // The other instance sees the delete within one margin.
    advance(MARGIN_MS);
    expect((await b.api("POST", `/v1/connections/${id}/token`)).status).toBe(404);
  });

  it("a re-authorization replaces the remembered token at once", async () => {
    const imported = await a.api("POST", "/v1/connections", { providerId: "acme", entityId: "reauth-user", accessToken: "imported-token-1", refreshToken: "r1", expiresIn: 3600 });
    expect(imported.status).toBe(201);
    const id = imported.body.id as string;
    expect((await a.gk.connections.ensureFresh(id)).accessToken).toBe("imported-token-1");
    expect((await b.gk.connections.ensureFresh(id)).accessToken).toBe("imported-token-1");
    expect((await a.api("POST", "/v1/connections", { providerId: "acme", entityId: "reauth-user", accessToken: "imported-token-2", refreshToken: "r2", expiresIn: 3600 })).status).toBe(200);
    expect((await a.gk.connections.ensureFresh(id)).accessToken).toBe("imported-token-2");
    // B learns within one margin.
    advance(MARGIN_MS);
    expect((await b.gk.connections.ensureFresh(id)).accessToken).toBe("imported-token-2");
  });

  it("a grant that dies on this instance is never handed out from memory", async () => {
    const id = await connect("dead-user");
    expect((await a.gk.connections.ensureFresh(id)).accessToken).toBeTruthy();
    await as.revokeAllGrants();
    // The forced refresh meets invalid_grant: the connection turns `error`.
    await a.gk.connections.refresh(id).catch(() => undefined);
    expect((await a.gk.connections.get(id)).state).toBe("error");
    const r = await a.api("POST", `/v1/connections/${id}/token`);
    expect(r.status).toBe(409);
    expect(r.body.code).toBe("connection_error");
  });

  it("a proxied call whose remembered token the API rejects reads the store again, and uses another instance's refresh without one of its own", async () => {
    const id = await connect("rejected-user");
    const proxied = () => fetch(`${a.url}/v1/proxy/${id}/me`, { headers: { authorization: `Bearer ${a.apiKey}` } });
    expect((await proxied()).status).toBe(200);
    const t1 = (await a.gk.connections.ensureFresh(id)).accessToken;
    // B refreshes; from now on the API accepts only B's token. A still remembers t1.
    await internalsOf(b.gk).engine.refresh(id, "forced");
    const t2 = (await b.gk.connections.ensureFresh(id)).accessToken;
    accepted = t2;
    try {
      const callsBefore = internalsOf(a.gk).engine.tokenCalls;
      const seenBefore = upstream.seen.length;
      const r = await proxied();
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ ok: true });
      // t1 was rejected once, then t2 (read from the store) accepted; A made no token call.
      expect(upstream.seen.slice(seenBefore).map((x) => x.headers.authorization)).toEqual([`Bearer ${t1}`, `Bearer ${t2}`]);
      expect(internalsOf(a.gk).engine.tokenCalls).toBe(callsBefore);
      expect((await a.gk.connections.ensureFresh(id)).accessToken).toBe(t2);
    } finally {
      accepted = undefined;
    }
  });
});
