/**
 * A provider token endpoint breaker closing while another instance is
 * deciding about one of its connections (issue 12: on PostgreSQL, two
 * instances counted 21 token calls for 20 connections after recovery).
 *
 * Two writes raced the close. The close makes the deferred connections due
 * (read them, then write `next_refresh_at = now`): a connection the other
 * instance refreshed between that read and that write was made due again and
 * refreshed twice. And a deferral decided on the open breaker but written
 * after the close undid the close's rescheduling: the connection waited out a
 * whole cooldown more. Both writes are now fenced: the reschedule is a
 * compare-and-set on what it read, the deferral lands only while the breaker
 * is open (share-locked on PostgreSQL until the deferral commits).
 *
 * One grantkeeper ("instance-a", manual clock) against a scripted token
 * endpoint; the other instance is played through the store's statements, at
 * the moments the race needs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { onFault, onSuccess } from "../../src/domain/breaker.js";
import { ManualClock } from "../../src/domain/clock.js";
import { BREAKER_OPEN_CODE } from "../../src/domain/providerBreaker.js";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { internalsOf } from "../../src/internals.js";
import { ConnectionRepository, type ConnectionRow } from "../../src/store/connections.js";
import { openStore, type Store } from "../../src/store/database.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { hookedFetch } from "../support/hookedFetch.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";

const policy = { maxConsecutiveFailures: 2, cooldownMs: 120_000 };

describe("a provider breaker closing while another instance decides", () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let gk: Grantkeeper;
  let repo: ConnectionRepository;
  const clock = new ManualClock(Date.parse("2026-12-05T07:00:00Z"));
  /** Instance A's fetch: a hook runs when its token request is about to leave. */
  const hooked = hookedFetch();
  let n = 0;

  beforeAll(async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    const provider = { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "race-secret" };
    gk = await createGrantkeeper({
      databaseUrl: db.url,
      encryptionKey: testKey(),
      clock,
      fetch: hooked.fetch,
      instanceId: "instance-a",
      random: () => 0.5,
      refresh: { timeoutMs: 2_000, minIntervalMs: 0, jitterMs: 0, marginMs: 60_000 },
      breaker: policy,
      scheduler: { concurrency: 1 },
      // One provider per test: each has its own breaker and its own connections.
      providers: { p1: provider, p2: provider, p3: provider },
    });
    repo = new ConnectionRepository(internalsOf(gk).store.db);
  });

  afterAll(async () => {
    await gk?.close();
    await ep?.close();
    await db?.cleanup();
  });

  const breakers = () => internalsOf(gk).providerBreakers;
  const engine = () => internalsOf(gk).engine;
  const callsWith = (refreshToken: string) => ep.requests.filter((r) => r.params.get("refresh_token") === refreshToken).length;
  const ok = (i: number) => ({ status: 200, body: { access_token: `at-new-${i}`, token_type: "Bearer", expires_in: 3600, refresh_token: `rt-new-${i}` } });
  const codeOf = (row: ConnectionRow) => (JSON.parse(row.last_error ?? "{}") as { code?: string }).code;

  /** The provider's breaker opens, as another instance's faults would open it. */
  async function openBreaker(providerId: string): Promise<void> {
    for (let i = 0; i < policy.maxConsecutiveFailures; i++) await breakers().countFault(providerId, clock.now(), (before) => onFault(before, clock.now(), policy));
    expect(await breakers().get(providerId)).toMatchObject({ state: "open" });
  }

  /** A connection whose token expires within the margin: due now. @returns its id and refresh token */
  async function dueConnection(providerId: string): Promise<{ id: string; rt: string }> {
    n++;
    const rt = `rt-${n}`;
    const stored = await gk.connections.storeGrant({ providerId, entityId: `race-${n}`, source: "import", tokens: { accessToken: `at-${n}`, tokenType: "Bearer", refreshToken: rt, expiresInSeconds: 30 } });
    return { id: stored.connection.id, rt };
  }

  it("a connection another instance refreshed between the close's read and its write is not made due again (no second call)", async () => {
    await openBreaker("p1");
    const [x, y, z] = [await dueConnection("p1"), await dueConnection("p1"), await dueConnection("p1")];
    for (const c of [x, y, z]) expect((await engine().refresh(c.id, "scheduled")).breakerOpenForMs).toBe(policy.cooldownMs);
    // The close reads the deferred connections ...
    const candidates = await repo.rescheduleCandidates("p1", [BREAKER_OPEN_CODE]);
    expect(candidates.map((c) => c.id).sort()).toEqual([x.id, y.id, z.id].sort());
    // ... and before it writes, the closed breaker is visible to the other instance, which refreshes X (ok) and Z (fails).
    await breakers().settle("p1", clock.now(), (s) => onSuccess(s));
    ep.push(ok(1));
    expect((await engine().refresh(x.id, "forced")).outcome).toBe("refreshed");
    ep.push({ status: 503, body: { error: "temporarily_unavailable" } });
    expect((await engine().refresh(z.id, "forced")).outcome).toBe("failed");
    const [xAfter, zAfter] = [(await repo.get(x.id))!, (await repo.get(z.id))!];
    expect(xAfter.next_refresh_at).toBeGreaterThan(clock.now() + 60_000);
    expect(zAfter.next_refresh_at).toBeGreaterThan(clock.now());

    // Only Y, still deferred, is made due; X keeps its new schedule and Z its backoff.
    expect(await repo.makeDue(candidates, clock.now())).toBe(1);
    expect((await repo.get(y.id))!.next_refresh_at).toBe(clock.now());
    expect((await repo.get(x.id))!.next_refresh_at).toBe(xAfter.next_refresh_at);
    expect((await repo.get(z.id))!.next_refresh_at).toBe(zAfter.next_refresh_at);

    ep.push(ok(2));
    await gk.scheduler.runDue();
    // One call per connection: X's refresh token was sent once, Y's once (now), Z's once (its backoff is running).
    expect([callsWith(x.rt), callsWith(y.rt), callsWith(z.rt)]).toEqual([1, 1, 1]);
    expect((await repo.get(y.id))!.state).toBe("ready");
  });

  it("a failed half-open probe is not deferred once another instance closed the breaker: it is the grant's own failure", async () => {
    await openBreaker("p2");
    const x = await dueConnection("p2");
    await engine().refresh(x.id, "scheduled");
    expect(codeOf((await repo.get(x.id))!)).toBe(BREAKER_OPEN_CODE);
    clock.advance(policy.cooldownMs + 15_000);
    // X sends the probe; while it is out, another instance's call answers and closes the breaker (and reschedules).
    hooked.beforeNext(async () => {
      await breakers().settle("p2", clock.now(), (s) => onSuccess(s));
      await repo.rescheduleProvider("p2", clock.now(), [BREAKER_OPEN_CODE]);
    });
    const result = await engine().refresh(x.id, "scheduled");
    expect(result.outcome).toBe("failed");
    const row = (await repo.get(x.id))!;
    // Not held back for another cooldown by a deferral the close can no longer undo: its own short backoff.
    expect(codeOf(row)).toBe("http_500");
    expect(row.consecutive_failures).toBe(1);
    expect(row.next_refresh_at).toBeLessThan(clock.now() + policy.cooldownMs);
    expect(row.lease_owner).toBeNull();
    expect(await breakers().get("p2")).toMatchObject({ state: "closed", consecutiveFailures: 1 });
  });

  // SQLite needs no lock: its UPDATE holds the store's single write lock while it checks the breaker. (And a second
  // store holding a write transaction in this process would block the first in better-sqlite3's busy wait.)
  it.skipIf(process.env.GK_TEST_BACKEND !== "postgres")("a deferral decided on the open breaker waits for a close in progress, then refreshes instead of deferring", async () => {
    await openBreaker("p3");
    const x = await dueConnection("p3");
    const other: Store = await openStore(db.url);
    let commitClose = (): void => undefined;
    try {
      // The other instance is closing the breaker: its transaction holds the row.
      let closing!: () => void;
      const closeHeld = new Promise<void>((r) => (commitClose = r));
      const rowLocked = new Promise<void>((r) => (closing = r));
      const close = other.db.transaction().execute(async (trx) => {
        await trx.updateTable("provider_breakers").set({ state: "closed", consecutive_failures: 0, opened_at: null, cooldown_until: null, updated_at: clock.now() }).where("provider_id", "=", "p3").execute();
        closing();
        await closeHeld;
      });
      await rowLocked;
      ep.push(ok(3));
      // A still reads the breaker open (the close is not committed) and decides to defer X.
      const refreshing = engine().refresh(x.id, "scheduled");
      // Its deferral waits on the breaker row: it must not land before the close is known.
      for (let i = 0; i < 200 && !(await deferralWaiting(other)); i++) await new Promise((r) => setTimeout(r, 10));
      expect(await deferralWaiting(other)).toBe(true);
      commitClose();
      await close;
      await repo.rescheduleProvider("p3", clock.now(), [BREAKER_OPEN_CODE]);
      const result = await refreshing;
      // The deferral was refused; A read the breaker again (closed) and refreshed X now.
      expect(result.outcome).toBe("refreshed");
      expect(callsWith(x.rt)).toBe(1);
      const row = (await repo.get(x.id))!;
      expect(row).toMatchObject({ state: "ready", lease_owner: null });
      expect((await gk.connections.events(x.id)).items.map((e) => e.type)).not.toContain("refresh_deferred");
    } finally {
      commitClose();
      await other.close();
    }
  });
});

/** True when a backend waits on a row lock for a fenced deferral (`… provider_breakers … for share`). */
async function deferralWaiting(store: Store): Promise<boolean> {
  const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%provider_breakers%for share%'`.execute(store.db);
  return (r.rows[0]?.n ?? 0) > 0;
}
