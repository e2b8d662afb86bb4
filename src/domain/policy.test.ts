import { describe, expect, it } from "vitest";
import { defaultRefreshPolicy, policyForProvider } from "./policy.js";

const DAY_S = 86_400;

describe("policyForProvider", () => {
  const policy = defaultRefreshPolicy;

  it("changes nothing for a provider that says nothing (the same object)", () => {
    expect(policyForProvider(policy, {})).toBe(policy);
  });

  it("uses the provider's refresh margin, 0 included", () => {
    expect(policyForProvider(policy, { refreshMarginSeconds: 600 })).toEqual({ ...policy, marginMs: 600_000 });
    expect(policyForProvider(policy, { refreshMarginSeconds: 0 }).marginMs).toBe(0);
  });

  it("keeps idle grants alive twice per refresh-token idle lifetime, on both sides of idle = 2 × keepAlive", () => {
    // keepAlive 24 h: an idle lifetime of 48 h is exactly at the threshold
    expect(policyForProvider(policy, { refreshTokenIdleExpirySeconds: 2 * DAY_S }).keepAliveMs).toBe(DAY_S * 1000);
    expect(policyForProvider(policy, { refreshTokenIdleExpirySeconds: 2 * DAY_S - 2 }).keepAliveMs).toBe(DAY_S * 1000 - 1000);
    expect(policyForProvider(policy, { refreshTokenIdleExpirySeconds: 2 * DAY_S + 2 })).toBe(policy);
  });

  it("leaves a keep-alive shorter than half the idle lifetime alone (Xero's 60 days vs 24 h)", () => {
    expect(policyForProvider(policy, { refreshTokenIdleExpirySeconds: 60 * DAY_S })).toBe(policy);
    expect(policyForProvider({ ...policy, keepAliveMs: 90 * DAY_S * 1000 }, { refreshTokenIdleExpirySeconds: 60 * DAY_S }).keepAliveMs).toBe(30 * DAY_S * 1000);
  });
});
