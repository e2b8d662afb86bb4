import { describe, expect, it } from "vitest";
import type { ConnectionSummaryRow } from "../store/connections.js";
import { cacheableUntil, FreshTokenCache, type CachedGrant } from "./freshTokens.js";

function grant(id: string, token: string, state = "ready", providerId = "acme"): CachedGrant {
  return { token: { accessToken: token, tokenType: "Bearer", expiresAt: null }, connection: { id, provider_id: providerId, state } as ConnectionSummaryRow, provider: undefined };
}

describe("cacheableUntil", () => {
  it("is one margin from now at most", () => {
    expect(cacheableUntil(null, null, 1_000, 300_000)).toBe(301_000);
    expect(cacheableUntil(10_000_000, null, 1_000, 300_000)).toBe(301_000);
  });
  it("ends where the token stops being fresh (expiry minus the margin, or half a known lifetime)", () => {
    expect(cacheableUntil(400_000, null, 0, 300_000)).toBe(100_000);
    // Refreshed at 0 with a 60 s lifetime: the lead is 30 s, not the 300 s margin.
    expect(cacheableUntil(60_000, 0, 0, 300_000)).toBe(30_000);
    // Already within the margin: not cacheable.
    expect(cacheableUntil(200_000, null, 0, 300_000)).toBeLessThanOrEqual(0);
  });
});

describe("FreshTokenCache", () => {
  it("hands a token out until its time, never after", () => {
    const c = new FreshTokenCache();
    c.fill("c1", c.epoch(), grant("c1", "t1"), 5_000, 0);
    expect(c.get("c1", 4_999)?.token.accessToken).toBe("t1");
    expect(c.get("c1", 5_000)).toBeUndefined();
    expect(c.get("c1", 4_000)).toBeUndefined();
  });

  it("refuses a fill that read the store before an invalidation of the same connection", () => {
    const c = new FreshTokenCache();
    const before = c.epoch();
    c.invalidate("c1");
    c.fill("c1", before, grant("c1", "old"), 5_000, 0);
    expect(c.get("c1", 1)).toBeUndefined();
    c.fill("c1", c.epoch(), grant("c1", "new"), 5_000, 0);
    expect(c.get("c1", 1)?.token.accessToken).toBe("new");
  });

  it("never fills a deleted connection again, nor one in error", () => {
    const c = new FreshTokenCache();
    c.invalidate("gone", true);
    c.fill("gone", c.epoch(), grant("gone", "t"), 5_000, 0);
    expect(c.get("gone", 1)).toBeUndefined();
    c.fill("dead", c.epoch(), grant("dead", "t", "error"), 5_000, 0);
    expect(c.get("dead", 1)).toBeUndefined();
  });

  it("keeps at most maxEntries, dropping the least recently used", () => {
    const c = new FreshTokenCache({ maxEntries: 2 });
    c.fill("c1", c.epoch(), grant("c1", "t1"), 5_000, 0);
    c.fill("c2", c.epoch(), grant("c2", "t2"), 5_000, 0);
    expect(c.get("c1", 1)).toBeDefined();
    c.fill("c3", c.epoch(), grant("c3", "t3"), 5_000, 0);
    expect(c.size).toBe(2);
    expect(c.get("c2", 1)).toBeUndefined();
    expect(c.get("c1", 1)?.token.accessToken).toBe("t1");
    expect(c.get("c3", 1)?.token.accessToken).toBe("t3");
  });

  it("forgets every token of a redefined provider", () => {
    const c = new FreshTokenCache();
    c.fill("c1", c.epoch(), grant("c1", "t1", "ready", "acme"), 5_000, 0);
    c.fill("c2", c.epoch(), grant("c2", "t2", "ready", "other"), 5_000, 0);
    c.invalidateProvider("acme");
    expect(c.get("c1", 1)).toBeUndefined();
    expect(c.get("c2", 1)?.token.accessToken).toBe("t2");
  });

  it("keeps the tokens in use however many other connections are invalidated (the scheduler refreshing many grants)", () => {
    const c = new FreshTokenCache({ maxEntries: 2 });
    c.fill("hot", c.epoch(), grant("hot", "t"), 5_000, 0);
    for (let i = 0; i < 10; i++) c.invalidate(`cold-${i}`);
    expect(c.get("hot", 1)?.token.accessToken).toBe("t");
  });
});
