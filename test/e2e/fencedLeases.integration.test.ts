/**
 * Fenced refresh leases (issue 12 item 3, the Frigg ADR-031 race): an
 * instance that stalls past its lease must neither spend the refresh token
 * the instance that took the lease over is spending, nor overwrite or free
 * that instance's state — else a third instance refreshes with the same
 * rotating refresh token and the provider revokes the grant.
 *
 * One grantkeeper ("instance-a", manual clock) against a scripted token
 * endpoint; the other instances are played through the store's lease
 * statements, at the exact moments the race needs.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/domain/clock.js";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { internalsOf } from "../../src/internals.js";
import { ConnectionRepository } from "../../src/store/connections.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { hookedFetch } from "../support/hookedFetch.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";

describe("fenced refresh leases", () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let gk: Grantkeeper;
  let repo: ConnectionRepository;
  const clock = new ManualClock(Date.parse("2026-12-05T04:00:00Z"));
  /** Instance A's fetch: a hook runs when its token request is about to leave. */
  const hooked = hookedFetch();
  let n = 0;

  beforeAll(async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    gk = await createGrantkeeper({
      databaseUrl: db.url,
      encryptionKey: testKey(),
      clock,
      fetch: hooked.fetch,
      instanceId: "instance-a",
      random: () => 0.5,
      refresh: { timeoutMs: 2_000, minIntervalMs: 0, jitterMs: 0 },
      providers: { rot: { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "fence-secret", quirks: { rotatesRefreshTokens: true } } },
    });
    repo = new ConnectionRepository(internalsOf(gk).store.db);
  });

  afterAll(async () => {
    await gk?.close();
    await ep?.close();
    await db?.cleanup();
  });

  let id: string;
  beforeEach(async () => {
    n++;
    id = (await gk.connections.storeGrant({ providerId: "rot", entityId: `fence-${n}`, source: "import", tokens: { accessToken: `at-${n}`, tokenType: "Bearer", refreshToken: `rt-${n}`, expiresInSeconds: 3600 } })).connection.id;
  });

  const engine = () => internalsOf(gk).engine;
  const ttl = () => engine().leaseTtlMs;
  const refreshTokensSent = () => ep.requests.map((r) => r.params.get("refresh_token"));

  it("an instance that stalled past its lease before the call does not call: the refresh token is spent once", async () => {
    // A takes the lease (the scheduler's batch statement), then stalls past it; B takes it over.
    const [stale] = await repo.acquireLeases([id], "instance-a", clock.now(), ttl());
    clock.advance(ttl() + 1);
    expect(await repo.acquireLease(id, "instance-b", clock.now(), ttl())).toBeDefined();
    const before = ep.requests.length;
    const [result] = await Promise.all(engine().refreshLeased([stale!], "forced"));
    expect(result!.outcome).toBe("skipped");
    expect(ep.requests.length).toBe(before);
    // B's lease is intact: a third instance cannot take it.
    expect((await repo.get(id))!.lease_owner).toBe("instance-b");
    expect(await repo.acquireLease(id, "instance-c", clock.now(), ttl())).toBeUndefined();
  });

  it("a stale instance's failure is not written and does not free the lease another instance took", async () => {
    ep.push({ status: 503, body: { error: "temporarily_unavailable" } });
    hooked.beforeNext(async () => {
      // A's request is leaving; A then stalls past its lease and B takes it over (B is mid-refresh).
      clock.advance(ttl() + 1);
      expect(await repo.acquireLease(id, "instance-b", clock.now(), ttl())).toBeDefined();
    });
    const result = await engine().refresh(id, "forced");
    expect(result.outcome).toBe("skipped");
    const row = (await repo.get(id))!;
    // Refused: neither A's failure nor its release landed.
    expect(row.state).toBe("pending");
    expect(row.consecutive_failures).toBe(0);
    expect(row.last_error).toBeNull();
    expect(row.lease_owner).toBe("instance-b");
    expect((await gk.connections.events(id)).items.map((e) => e.type)).not.toContain("refresh_failed");
    // Without the fence a third instance would now take the lease and spend rt-n alongside B.
    expect(await repo.acquireLease(id, "instance-c", clock.now(), ttl())).toBeUndefined();
    expect(refreshTokensSent().filter((t) => t === `rt-${n}`)).toHaveLength(1);
  });

  it("a stale instance's unexpected error does not free the lease another instance took", async () => {
    hooked.beforeNext(async () => {
      clock.advance(ttl() + 1);
      expect(await repo.acquireLease(id, "instance-b", clock.now(), ttl())).toBeDefined();
      // Something unexpected (not a token endpoint answer) ends A's refresh.
      throw new TypeError("a bug in the instance, not an answer of the provider");
    });
    ep.push({ status: 200, body: { access_token: "never", token_type: "Bearer" } });
    await engine().refresh(id, "forced").catch(() => undefined);
    expect((await repo.get(id))!.lease_owner).toBe("instance-b");
    expect(await repo.acquireLease(id, "instance-c", clock.now(), ttl())).toBeUndefined();
  });

  it("the scheduler's push-back after a crashed refresh is a compare-and-set: a grant stored meanwhile keeps its schedule", async () => {
    const [leased] = await repo.acquireLeases([id], "instance-a", clock.now(), ttl());
    // The user reconnects while the refresh is out (new tokens, their own schedule); then the refresh crashes.
    await gk.connections.storeGrant({ providerId: "rot", entityId: `fence-${n}`, source: "import", tokens: { accessToken: `at-${n}-re`, tokenType: "Bearer", refreshToken: `rt-${n}-re`, expiresInSeconds: 3600 } });
    const scheduled = (await repo.get(id))!.next_refresh_at;
    expect(await repo.postpone(id, leased!, clock.now() + 30_000)).toBe(false);
    expect((await repo.get(id))!.next_refresh_at).toBe(scheduled);
    // Nothing moved meanwhile: pushed back.
    expect(await repo.postpone(id, (await repo.get(id))!, clock.now() + 30_000)).toBe(true);
    expect((await repo.get(id))!.next_refresh_at).toBe(clock.now() + 30_000);
  });

  it("new tokens won after the lease was lost are kept (the sent refresh token is spent), and the other instance's lease stays", async () => {
    ep.push({ status: 200, body: { access_token: `at-${n}-new`, token_type: "Bearer", refresh_token: `rt-${n}-new`, expires_in: 3600 } });
    hooked.beforeNext(async () => {
      clock.advance(ttl() + 1);
      expect(await repo.acquireLease(id, "instance-b", clock.now(), ttl())).toBeDefined();
    });
    const versionBefore = (await repo.get(id))!.token_version;
    const result = await engine().refresh(id, "forced");
    expect(result.outcome).toBe("refreshed");
    const row = (await repo.get(id))!;
    expect(row.token_version).toBe(versionBefore + 1);
    expect(row.lease_owner).toBe("instance-b");
    // B, finishing with the old token, sees newer tokens stored and adopts them instead of declaring the grant dead.
    expect((await gk.connections.get(id)).state).toBe("ready");
  });
});
