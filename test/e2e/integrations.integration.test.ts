/**
 * Integration status on a real authorization server: a 10-minute token
 * endpoint outage leaves every integration ENABLED; a revoked grant moves its
 * dependents to ERROR with the right cause (a DISABLED one stays DISABLED,
 * other causes are untouched); re-authorization through the real login
 * resets exactly the integrations it should. Preflight over every state.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startFaultProxy, type FaultProxy } from "../support/faultProxy.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { connectEntity } from "../support/connect.js";
import { IntegrationRepository } from "../../src/store/integrations.js";
import { internalsOf } from "../../src/internals.js";

describe("integration status propagation", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let proxy: FaultProxy;
  let t: GrantkeeperUnderTest;
  const conn: Record<string, string> = {};
  const int: Record<string, string> = {};

  async function connect(entityId: string): Promise<string> {
    const { response, body } = await connectEntity(t.gk, "acme", entityId);
    expect(response.status).toBe(200);
    return body.connection.id;
  }
  async function createIntegration(name: string, entityId: string, connectionIds: string[]): Promise<string> {
    const res = await t.api("POST", "/v1/integrations", { name, entityId, connectionIds });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe("ENABLED");
    return res.body.id;
  }
  const integration = async (name: string) => (await t.api("GET", `/v1/integrations/${int[name]}`)).body;
  const connection = async (name: string) => (await t.api("GET", `/v1/connections/${conn[name]}`)).body;
  async function tick(ms: number) {
    t.clock.advance(ms);
    await t.gk.scheduler.runDue();
  }

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db, { refresh: { marginMs: 30_000, jitterMs: 0, timeoutMs: 1_000, minIntervalMs: 1_000, backoffBaseMs: 5_000, backoffMaxMs: 60_000, maxRetries: 3, recoveryIntervalMs: 120_000 } });
    as = await startAuthServer({ accessTokenTtlSeconds: 300, clients: [{ clientId: "c", clientSecret: "integration-secret", redirectUris: [`${t.url}/v1/oauth/callback`] }] });
    proxy = await startFaultProxy(as.issuer);
    const provider = { issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: `${proxy.url}/token`, clientId: "c", clientSecret: "integration-secret", scopes: ["openid"] };
    expect((await t.api("PUT", "/v1/providers/acme", provider)).status).toBe(200);
    expect((await t.api("PUT", "/v1/providers/other", { ...provider, tokenEndpoint: as.tokenEndpoint })).status).toBe(200);
    await t.gk.start();
    for (const who of ["alice", "bob", "carol"]) conn[who] = await connect(who);
    int.sync = await createIntegration("alice sync", "alice", [conn.alice!]);
    int.agent = await createIntegration("alice agent", "alice", [conn.alice!]);
    int.off = await createIntegration("alice paused", "alice", [conn.alice!]);
    int.both = await createIntegration("alice+bob bridge", "team", [conn.alice!, conn.bob!]);
    int.bob = await createIntegration("bob sync", "bob", [conn.bob!]);
    int.breaker = await createIntegration("alice webhook target", "alice", [conn.alice!]);
    expect((await t.api("POST", `/v1/integrations/${int.off}/disable`)).body.status).toBe("DISABLED");
    // An ERROR for another reason (a delivery breaker, from the jobs part) must never be touched by credential events.
    await new IntegrationRepository(internalsOf(t.gk).store.db).transaction((trx) =>
      new IntegrationRepository(internalsOf(t.gk).store.db).setStatus(int.breaker!, "ENABLED", { actor: "system", to: "ERROR", reason: "circuit_open", causeConnectionId: null, message: "breaker open", nowMs: t.clock.now() }, trx),
    );
  });

  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await as?.close();
    await db?.cleanup();
  });

  it("a 10-minute token endpoint outage leaves every integration as it was (self-heal needs no status change)", async () => {
    const before = Object.fromEntries(await Promise.all(Object.keys(int).map(async (k) => [k, (await integration(k)).status])));
    t.clock.advance(270_000); // every connection is now due
    proxy.setMode("503");
    let sawDegraded = false;
    for (let elapsed = 0; elapsed < 600_000; elapsed += 10_000) {
      await tick(10_000);
      if ((await connection("alice")).state === "degraded") sawDegraded = true;
      for (const k of Object.keys(int)) expect((await integration(k)).status).toBe(before[k]);
    }
    expect(sawDegraded).toBe(true);
    // The provider's token endpoint breaker took over after 3 faults: one probe per cooldown, no connection's budget spent.
    expect((await connection("alice")).consecutiveFailures).toBeGreaterThanOrEqual(1);
    expect((await t.api("GET", "/v1/providers/acme")).body.tokenEndpointBreaker.state).toBe("open");
    proxy.setMode("pass");
    // The next probe (within one cooldown, 120 s, plus its spread) closes it and every deferred connection refreshes.
    for (let i = 0; i < 15; i++) await tick(10_000);
    expect(await connection("alice")).toMatchObject({ state: "ready", consecutiveFailures: 0 });
    for (const k of Object.keys(int)) expect((await integration(k)).status).toBe(before[k]);
  });

  it("revoking alice's grant moves every ENABLED integration that depends on it to ERROR, caused by her connection", async () => {
    await as.revokeGrantsOf("alice");
    t.clock.advance(1_000); // past the per-connection rate limit
    await t.api("POST", `/v1/connections/${conn.alice}/refresh`);
    expect((await connection("alice")).state).toBe("error");
    for (const k of ["sync", "agent", "both"]) {
      expect(await integration(k)).toMatchObject({ status: "ERROR", statusReason: "credential_invalidated", statusCause: { connectionId: conn.alice } });
    }
    expect(await integration("off")).toMatchObject({ status: "DISABLED" });
    expect((await integration("off")).statusReason).toBeUndefined();
    expect(await integration("breaker")).toMatchObject({ status: "ERROR", statusReason: "circuit_open" });
    expect(await integration("bob")).toMatchObject({ status: "ENABLED" });
    const history = (await t.api("GET", `/v1/integrations/${int.sync}/events`)).body.items;
    expect(history[0]).toMatchObject({ actor: "system", from: "ENABLED", to: "ERROR", reason: "credential_invalidated", cause: { connectionId: conn.alice } });
  });

  it("enabling by hand is refused while a dependency is dead", async () => {
    const res = await t.api("POST", `/v1/integrations/${int.sync}/enable`);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: "connection_error", connectionId: conn.alice });
  });

  it("preflight: missing → connect, error → reconnect, usable in every other state → none", async () => {
    await as.revokeGrantsOf("bob");
    t.clock.advance(1_000);
    await t.api("POST", `/v1/connections/${conn.bob}/refresh`);
    expect(await integration("bob")).toMatchObject({ status: "ERROR", statusCause: { connectionId: conn.bob } });
    expect(await integration("both")).toMatchObject({ status: "ERROR", statusCause: { connectionId: conn.alice } });

    const alice = (await t.api("POST", "/v1/preflight", { entityId: "alice", providers: ["acme", "other"] })).body;
    expect(alice.ok).toBe(false);
    expect(alice.providers[0]).toMatchObject({ providerId: "acme", usable: false, state: "error", action: "reconnect", connectionId: conn.alice });
    expect(alice.providers[1]).toMatchObject({ providerId: "other", usable: false, action: "connect" });
    expect(alice.providers[1].state).toBeUndefined();
    for (const p of alice.providers) expect(p.connectUrl).toMatch(new RegExp(`^${t.url}/v1/connect/${p.providerId}\\?connectToken=`));

    expect((await t.api("PATCH", `/v1/connections/${conn.carol}`, { state: "syncing" })).status).toBe(200);
    const states: Record<string, string> = {};
    for (const s of ["syncing", "ready", "pending"] as const) {
      await t.api("PATCH", `/v1/connections/${conn.carol}`, { state: s });
      const carol = (await t.api("POST", "/v1/preflight", { entityId: "carol", providers: ["acme"] })).body;
      expect(carol).toMatchObject({ ok: true, providers: [{ usable: true, action: "none", state: s }] });
      expect(carol.providers[0].connectUrl).toBeUndefined();
      states[s] = carol.providers[0].state;
    }
    proxy.setMode("503");
    t.clock.advance(1_000);
    await t.api("POST", `/v1/connections/${conn.carol}/refresh`);
    proxy.setMode("pass");
    const degraded = (await t.api("POST", "/v1/preflight", { entityId: "carol", providers: ["acme"] })).body;
    expect(degraded).toMatchObject({ ok: true, providers: [{ usable: true, action: "none", state: "degraded" }] });
    const unknown = await t.api("POST", "/v1/preflight", { entityId: "carol", providers: ["nope"] });
    expect(unknown.status).toBe(422);
    expect(unknown.body.code).toBe("provider_not_found");
  });

  it("re-authorizing alice through the real login re-enables exactly what her connection had stopped", async () => {
    expect(await connect("alice")).toBe(conn.alice);
    for (const k of ["sync", "agent"]) expect(await integration(k)).toMatchObject({ status: "ENABLED" });
    for (const k of ["sync", "agent"]) expect((await integration(k)).statusReason).toBeUndefined();
    // still blocked by bob's dead connection: stays ERROR, now naming bob
    expect(await integration("both")).toMatchObject({ status: "ERROR", statusReason: "credential_invalidated", statusCause: { connectionId: conn.bob } });
    expect(await integration("off")).toMatchObject({ status: "DISABLED" });
    expect(await integration("breaker")).toMatchObject({ status: "ERROR", statusReason: "circuit_open" });
    expect(await integration("bob")).toMatchObject({ status: "ERROR", statusCause: { connectionId: conn.bob } });
    const history = (await t.api("GET", `/v1/integrations/${int.sync}/events`)).body.items;
    expect(history[0]).toMatchObject({ actor: "reauthorization", from: "ERROR", to: "ENABLED" });
  });

  it("deleting a connection puts its ENABLED dependents in ERROR(connection_deleted)", async () => {
    const carolSync = await createIntegration("carol sync", "carol", [conn.carol!]);
    expect((await t.api("DELETE", `/v1/connections/${conn.carol}`)).status).toBe(200);
    expect((await t.api("GET", `/v1/integrations/${carolSync}`)).body).toMatchObject({ status: "ERROR", statusReason: "connection_deleted", statusCause: { connectionId: conn.carol } });
    const late = await t.api("POST", "/v1/integrations", { name: "late", entityId: "carol", connectionIds: [conn.carol] });
    expect(late.status).toBe(422);
    expect(late.body.code).toBe("connection_not_found");
  });
});
