/**
 * Single-flight across instances and the rotation race (Frigg ADR-031): two
 * grantkeeper instances on one store, each with its own clock, against the
 * real authorization server with refresh-token rotation on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { ManualClock } from "../../src/domain/clock.js";
import { ConnectionRepository } from "../../src/store/connections.js";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { connectEntity } from "../support/connect.js";
import { internalsOf } from "../../src/internals.js";

describe("two instances on one store", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let a: GrantkeeperUnderTest;
  let b: GrantkeeperUnderTest;
  let hookBeforeA: ((url: string) => Promise<void>) | undefined;

  beforeAll(async () => {
    db = await testDatabase();
    const key = testKey();
    const start = Date.now();
    const refresh = { marginMs: 10_000, jitterMs: 0, timeoutMs: 2_000, minIntervalMs: 0 };
    a = await startGrantkeeper(db, { encryptionKey: key, instanceId: "instance-a", clock: new ManualClock(start), refresh, beforeFetch: async (u) => hookBeforeA?.(u), logName: "a.log" });
    b = await startGrantkeeper(db, { encryptionKey: key, instanceId: "instance-b", clock: new ManualClock(start), refresh, logName: "b.log" });
    as = await startAuthServer({ accessTokenTtlSeconds: 60, clients: [{ clientId: "c", clientSecret: "multi-instance-secret", redirectUris: [`${a.url}/v1/oauth/callback`] }] });
    const provider = { issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, clientId: "c", clientSecret: "multi-instance-secret", scopes: ["openid"] };
    expect((await a.api("PUT", "/v1/providers/acme", provider)).status).toBe(200);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await as?.close();
    await db?.cleanup();
  });

  async function connect(entityId: string): Promise<string> {
    return (await connectEntity(a.gk, "acme", entityId)).body.connection.id;
  }

  it("200 concurrent ensureFresh calls across two instances on an expired grant make one token call", async () => {
    const id = await connect("race-user");
    a.clock.advance(61_000);
    b.clock.advance(61_000);
    const before = as.refreshRequests();
    const calls = Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).gk.connections.ensureFresh(id));
    const tokens = await Promise.all(calls);
    expect(as.refreshRequests() - before).toBe(1);
    expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
    expect(internalsOf(a.gk).engine.tokenCalls + internalsOf(b.gk).engine.tokenCalls).toBe(1);
  });

  it("adopts the grant another instance rotated instead of declaring it dead on invalid_grant", async () => {
    const id = await connect("rotation-user");
    // A starts a refresh; while its request is about to leave, A's lease expires (A stalled)
    // and B refreshes first, rotating the refresh token A is holding.
    hookBeforeA = async (url) => {
      if (!url.endsWith("/token")) return;
      hookBeforeA = undefined;
      b.clock.advance(internalsOf(a.gk).engine.leaseTtlMs + 1);
      const r = await internalsOf(b.gk).engine.refresh(id, "forced");
      expect(r.outcome).toBe("refreshed");
    };
    const result = await internalsOf(a.gk).engine.refresh(id, "forced");
    expect(result.outcome).toBe("adopted");
    expect(result.verdict).toMatchObject({ class: "permanent", code: "invalid_grant" });
    const c = await a.gk.connections.get(id);
    expect(c.state).not.toBe("error");
    expect(c.usable).toBe(true);
    const events = (await a.gk.connections.events(id)).items.map((e) => e.type);
    expect(events).toContain("adopted");
    expect(events).not.toContain("invalidated");
    // Lease released: nothing holds the row.
    const row = await sql<{ lease_owner: string | null }>`select lease_owner from connections where id = ${id}`.execute(internalsOf(a.gk).store.db);
    expect(row.rows[0]?.lease_owner).toBeNull();
  });

  it("a grant leased by another instance does not make this scheduler spin: its next wake-up ignores leased rows", async () => {
    const id = await connect("lease-user");
    const repo = new ConnectionRepository(internalsOf(a.gk).store.db);
    const now = a.clock.now();
    await internalsOf(a.gk).store.db.updateTable("connections").set({ next_refresh_at: now - 1_000 }).where("id", "=", id).execute();
    expect(await repo.nextDueAt(now)).toBeLessThanOrEqual(now - 1_000);
    await repo.acquireLease(id, "some-other-instance", now, 30_000);
    const next = await repo.nextDueAt(now);
    expect(next === undefined || next > now).toBe(true);
    expect(await repo.nextDueAt(now + 30_000)).toBe(now - 1_000); // the lease expired: due again
  });
});
