/**
 * Per-connection settings (contract v1.1 `connectionConfig`): a provider's
 * `{placeholders}` resolve per connection, filled from the token response
 * (`tokenResponseConfig`, Salesforce's `instance_url`) or from the connect
 * link / import. Against oidc-provider answering like Salesforce (its token
 * responses carry `instance_url`, added by oidc-provider middleware) and two
 * API servers on loopback standing for two orgs.
 */
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { connectWith } from "../support/connect.js";
import { internalsOf } from "../../src/internals.js";

interface ApiServer {
  url: string;
  seen: Array<{ path: string; authorization: string | undefined }>;
  close(): Promise<void>;
}

/** An org's API: answers who it is and what it was asked. */
async function startApi(name: string): Promise<ApiServer> {
  const seen: ApiServer["seen"] = [];
  const server = createServer((req, res) => {
    seen.push({ path: req.url ?? "", authorization: req.headers.authorization });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ org: name, path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen, close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

describe("connectionConfig", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let t: GrantkeeperUnderTest;
  let acme: ApiServer;
  let globex: ApiServer;
  /** The instance_url the authorization server puts in its next token responses. */
  let instanceUrl = "";

  beforeAll(async () => {
    db = await testDatabase();
    [acme, globex] = await Promise.all([startApi("acme"), startApi("globex")]);
    t = await startGrantkeeper(db, { refresh: { minIntervalMs: 0, jitterMs: 0 } });
    as = await startAuthServer({
      accessTokenTtlSeconds: 3600,
      clients: [{ clientId: "sf-client", clientSecret: "sf-secret-1234", redirectUris: [`${t.url}/v1/oauth/callback`] }],
      // Salesforce: every token response names the org's own API host.
      tokenResponse: ({ status, body }) => (status === 200 ? { body: { ...body, instance_url: instanceUrl } } : undefined),
    });
    const base = { clientId: "sf-client", clientSecret: "sf-secret-1234", scopes: ["openid"] };
    expect((await t.api("PUT", "/v1/providers/sf", { ...base, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, apiBaseUrl: "{instance_url}/services/data", tokenResponseConfig: ["instance_url"] })).status).toBe(200);
    // Every endpoint per connection: the authorization server's origin comes with the connection.
    const put = await t.api("PUT", "/v1/providers/tenanted", { ...base, authorizationEndpoint: "{idp}/auth", tokenEndpoint: "{idp}/token", revocationEndpoint: "{idp}/token/revocation", apiBaseUrl: "{idp}" });
    expect(put.status).toBe(200);
    expect(put.body.tokenEndpoint).toBe("{idp}/token");
  });

  afterAll(async () => {
    await t?.close();
    await as?.close();
    await Promise.all([acme?.close(), globex?.close()]);
    await db?.cleanup();
  });

  const connect = (providerId: string, entityId: string, opts: { connectionConfig?: Record<string, string> } = {}) => connectWith(t.gk, { providerId, entityId, ...opts });

  async function proxy(connectionId: string, path: string) {
    const res = await fetch(`${t.url}/v1/proxy/${connectionId}/${path}`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it("fills connectionConfig from the token response: two orgs, one provider, two API hosts", async () => {
    instanceUrl = acme.url;
    const a = await connect("sf", "user-a");
    instanceUrl = globex.url;
    const b = await connect("sf", "user-b");
    expect(a.connectionConfig).toEqual({ instance_url: acme.url });
    expect(b.connectionConfig).toEqual({ instance_url: globex.url });

    expect(await proxy(a.id, "sobjects?limit=1")).toEqual({ status: 200, body: { org: "acme", path: "/services/data/sobjects?limit=1" } });
    expect(await proxy(b.id, "sobjects")).toEqual({ status: 200, body: { org: "globex", path: "/services/data/sobjects" } });
    expect(acme.seen).toHaveLength(1);
    expect(globex.seen).toHaveLength(1);
    expect(acme.seen[0]!.authorization).not.toBe(globex.seen[0]!.authorization);

    // The connection shows it (API and library alike); it is no secret.
    expect((await t.api("GET", `/v1/connections/${a.id}`)).body.connectionConfig).toEqual({ instance_url: acme.url });
    expect((await t.gk.connections.get(b.id)).connectionConfig).toEqual({ instance_url: globex.url });
  });

  it("a refresh answer updates it (the org moved to another instance)", async () => {
    instanceUrl = acme.url;
    const c = await connect("sf", "user-c");
    instanceUrl = globex.url;
    const refreshed = (await t.api("POST", `/v1/connections/${c.id}/refresh`)).body;
    expect(refreshed).toMatchObject({ state: "ready", connectionConfig: { instance_url: globex.url } });
    expect((await proxy(c.id, "limits")).body.org).toBe("globex");
  });

  it("an import brings its own; without the value the proxy needs, it is refused and nothing is stored", async () => {
    const ok = await t.api("POST", "/v1/connections", { providerId: "sf", entityId: "imported", accessToken: "imported-at", connectionConfig: { instance_url: acme.url } });
    expect(ok.status).toBe(201);
    expect(ok.body.connectionConfig).toEqual({ instance_url: acme.url });
    expect(await proxy(ok.body.id, "x")).toMatchObject({ status: 200, body: { org: "acme" } });
    expect(acme.seen.at(-1)!.authorization).toBe("Bearer imported-at");

    const missing = await t.api("POST", "/v1/connections", { providerId: "sf", entityId: "no-instance", accessToken: "at" });
    expect(missing).toMatchObject({ status: 422, body: { code: "connection_config_missing" } });
    expect(missing.body.detail).toContain("connectionConfig.instance_url");
    expect((await t.api("GET", "/v1/connections?entityId=no-instance")).body.items).toEqual([]);
  });

  it("a connection whose stored value is gone answers 422 at the proxy, and never calls a literal {name} host", async () => {
    const conn = (await t.api("POST", "/v1/connections", { providerId: "sf", entityId: "later-broken", accessToken: "at", connectionConfig: { instance_url: acme.url } })).body;
    await internalsOf(t.gk).store.db.updateTable("connections").set({ connection_config: "{}" }).where("id", "=", conn.id).execute();
    const before = acme.seen.length + globex.seen.length;
    const res = await proxy(conn.id, "x");
    expect(res).toMatchObject({ status: 422, body: { code: "connection_config_missing" } });
    expect(acme.seen.length + globex.seen.length).toBe(before);
  });

  it("resolves the authorization, token and revocation endpoints per connection, from the connect session's connectionConfig", async () => {
    const conn = await connect("tenanted", "user-t", { connectionConfig: { idp: as.issuer } });
    expect(conn.connectionConfig).toEqual({ idp: as.issuer });
    const refreshes = as.refreshRequests();
    const refreshed = (await t.api("POST", `/v1/connections/${conn.id}/refresh`)).body;
    expect(refreshed.state).toBe("ready");
    expect(as.refreshRequests()).toBe(refreshes + 1);
    // oidc-provider's userinfo, through the per-connection apiBaseUrl
    const me = await proxy(conn.id, "me");
    expect(me).toMatchObject({ status: 200, body: { sub: "user-t" } });
    const deleted = (await t.api("DELETE", `/v1/connections/${conn.id}`)).body;
    expect(deleted).toMatchObject({ deleted: true, revoked: true });
  });

  it("a connect session without the value its endpoints need is refused to the host, before any user is sent anywhere", async () => {
    const res = await t.api("POST", "/v1/connect-sessions", { providerId: "tenanted", entityId: "user-u" });
    expect(res).toMatchObject({ status: 422, body: { code: "connection_config_missing" } });
    expect(res.body.detail).toContain("connectionConfig.idp");
    const bad = await t.api("POST", "/v1/connect-sessions", { providerId: "tenanted", entityId: "user-u", connectionConfig: { idp: "https://evil.example/x?y" } });
    expect(bad).toMatchObject({ status: 422, body: { code: "invalid_connection_config" } });
    const secret = await t.api("POST", "/v1/connect-sessions", { providerId: "tenanted", entityId: "user-u", connectionConfig: { idp: as.issuer, apiToken: "x" } });
    expect(secret).toMatchObject({ status: 422, body: { code: "validation_failed" } });
  });

  it("a provider redefined after the session was minted: its link is refused before the user is sent anywhere", async () => {
    const base = { clientId: "sf-client", clientSecret: "sf-secret-1234", scopes: ["openid"], authorizationEndpoint: "{idp}/auth", tokenEndpoint: "{idp}/token", apiBaseUrl: "{idp}" };
    expect((await t.api("PUT", "/v1/providers/moving", base)).status).toBe(200);
    const { connectUrl } = await t.gk.connectSessions.create({ providerId: "moving", entityId: "user-m", connectionConfig: { idp: as.issuer } });
    expect((await t.api("PUT", "/v1/providers/moving", { ...base, tokenEndpoint: "{idp}/{realm}/token" })).status).toBe(200);
    const res = await fetch(connectUrl, { redirect: "manual", headers: { accept: "application/json" } });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { code: string }).code).toBe("connection_config_missing");
  });
});
