/**
 * Provider token endpoint breakers on a real store, from two connections to
 * it on PostgreSQL (two instances): concurrent faults each count once and exactly one of
 * them opens the breaker; exactly one caller claims the half-open probe per
 * cooldown; an answer resets it once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase, type TestDatabase } from "../../test/support/backend.js";
import { onFault, onSuccess } from "../domain/breaker.js";
import { openStore, type Store } from "./database.js";
import { migrateToLatest } from "./migrations.js";
import { ProviderBreakerRepository } from "./providerBreakers.js";

const T = 1_700_000_000_000;
const policy = { maxConsecutiveFailures: 3, cooldownMs: 120_000 };

describe("ProviderBreakerRepository on a real store, two instances", () => {
  let tdb: TestDatabase;
  let one: Store;
  let two: Store;
  let a: ProviderBreakerRepository;
  let b: ProviderBreakerRepository;

  beforeAll(async () => {
    tdb = await testDatabase();
    one = await openStore(tdb.url);
    await migrateToLatest(one);
    // Two connections on PostgreSQL. On SQLite two stores in one process would block each other in
    // better-sqlite3's synchronous busy wait (separate processes do not): one store, its queue interleaves the calls.
    two = tdb.backend === "postgres" ? await openStore(tdb.url) : one;
    a = new ProviderBreakerRepository(one.db, one.dialect);
    b = new ProviderBreakerRepository(two.db, two.dialect);
  });

  afterAll(async () => {
    await one?.close();
    if (two !== one) await two?.close();
    await tdb?.cleanup();
  });

  it("a provider never seen is closed, and absent from the list", async () => {
    expect(await a.get("never")).toEqual({ state: "closed", consecutiveFailures: 0, cooldownUntil: null });
    expect((await a.providerBreakers()).has("never")).toBe(false);
    expect(await a.settle("never", T, (s) => onSuccess(s))).toBeUndefined();
  });

  it("concurrent faults from both instances each count once; exactly one opens it", async () => {
    const faults = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).countFault("acme", T, (before) => onFault(before, T, policy)));
    const results = await Promise.all(faults);
    expect(results.filter((t) => t.opened)).toHaveLength(1);
    expect(await b.get("acme")).toEqual({ state: "open", consecutiveFailures: 12, openedAt: T, cooldownUntil: T + 120_000 });
    expect((await a.providerBreakers()).get("acme")).toMatchObject({ state: "open", consecutiveFailures: 12 });
  });

  it("no probe while the cooldown runs; after it, exactly one of many concurrent callers gets it", async () => {
    expect(await a.claimProbe("acme", T + 119_999, policy.cooldownMs)).toBe(false);
    const now = T + 120_000;
    const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).claimProbe("acme", now, policy.cooldownMs)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    // The claim moved the cooldown: the next probe is one cooldown later.
    expect(await a.get("acme")).toMatchObject({ state: "open", cooldownUntil: now + 120_000 });
    expect(await b.claimProbe("acme", now + 119_999, policy.cooldownMs)).toBe(false);
  });

  it("an answer closes it once, however many instances report one", async () => {
    const now = T + 130_000;
    const settled = await Promise.all([a, b, a, b].map((r) => r.settle("acme", now, (s) => onSuccess(s))));
    expect(settled.filter((t) => t?.closed)).toHaveLength(1);
    expect(await a.get("acme")).toEqual({ state: "closed", consecutiveFailures: 0, cooldownUntil: null });
    // Clean again: nothing to settle, no claim possible.
    expect(await b.settle("acme", now, (s) => onSuccess(s))).toBeUndefined();
    expect(await b.claimProbe("acme", now + 10 * 120_000, policy.cooldownMs)).toBe(false);
  });
});
