import { describe, expect, it } from "vitest";
import type { Classification } from "./classify.js";
import { defaultRefreshPolicy, resolveRefreshPolicy, type RefreshPolicy } from "./policy.js";
import { CONNECTION_STATES, HOST_REPORTED_STATES, type ConnectionState } from "./states.js";
import { afterApiAuthAccepted, afterApiAuthRejected, afterRefreshFailure, afterRefreshSuccess, API_AUTH_REJECTED, applyHostReport, backoffDelayMs, nextRefreshAfterSuccess } from "./transitions.js";

const policy: RefreshPolicy = resolveRefreshPolicy();
const NOW = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const transient: Classification = { class: "transient", reason: "server_error", code: "http_503" };
const grantDead: Classification = { class: "permanent", scope: "grant", reason: "invalid_grant", code: "invalid_grant" };
const providerBroken: Classification = { class: "permanent", scope: "provider", reason: "invalid_client", code: "invalid_client" };

describe("defaultRefreshPolicy", () => {
  it("holds the documented defaults and is what resolveRefreshPolicy() returns", () => {
    expect(resolveRefreshPolicy()).toEqual({
      marginMs: 300_000,
      jitterMs: 30_000,
      timeoutMs: 30_000,
      maxRetries: 5,
      backoffBaseMs: 5_000,
      backoffMaxMs: 300_000,
      recoveryIntervalMs: 1_800_000,
      minIntervalMs: 5_000,
      assumedLifetimeMs: 3_600_000,
      keepAliveMs: 86_400_000,
    });
    expect(Object.isFrozen(defaultRefreshPolicy)).toBe(true);
  });
});

describe("resolveRefreshPolicy", () => {
  it("merges a partial policy over the defaults, ignoring undefined values", () => {
    const p = resolveRefreshPolicy({ marginMs: 60_000, maxRetries: undefined });
    expect(p.marginMs).toBe(60_000);
    expect(p.maxRetries).toBe(5);
  });

  it("accepts 0 (the lower edge) for a non-negative value", () => {
    expect(resolveRefreshPolicy({ marginMs: 0, maxRetries: 0 })).toMatchObject({ marginMs: 0, maxRetries: 0 });
  });

  it.each<[string, Partial<RefreshPolicy>]>([
    ["marginMs", { marginMs: -1 }],
    ["jitterMs", { jitterMs: Number.NaN }],
    ["keepAliveMs", { keepAliveMs: Number.POSITIVE_INFINITY }],
    ["backoffMaxMs", { backoffMaxMs: -0.5 }],
    ["maxRetries", { maxRetries: 2.5 }],
    ["maxRetries", { maxRetries: -1 }],
    ["timeoutMs", { timeoutMs: 0 }],
  ])("throws a RangeError naming %s for %o", (key, partial) => {
    expect(() => resolveRefreshPolicy(partial)).toThrow(RangeError);
    expect(() => resolveRefreshPolicy(partial)).toThrow(new RegExp(`\\b${key}\\b`));
  });
});

describe("nextRefreshAfterSuccess", () => {
  const withRt = (expiresAtMs: number | null) => ({ expiresAtMs, renewable: true });

  it("refreshes margin before expiry with no jitter when random = 0", () => {
    expect(nextRefreshAfterSuccess(withRt(NOW + HOUR), NOW, policy, 0)).toBe(NOW + HOUR - 300_000);
  });

  it("refreshes up to jitter earlier when random → 1", () => {
    // floor(0.999 × 30 000) = 29 970
    expect(nextRefreshAfterSuccess(withRt(NOW + HOUR), NOW, policy, 0.999)).toBe(NOW + HOUR - 300_000 - 29_970);
  });

  it("never waits longer than keepAlive when expiry is far away", () => {
    expect(nextRefreshAfterSuccess(withRt(NOW + 30 * DAY), NOW, policy, 0)).toBe(NOW + DAY);
  });

  it("uses the due time when it is just inside the keep-alive window", () => {
    const expires = NOW + DAY + 300_000 - 1; // due = now + keepAlive − 1
    expect(nextRefreshAfterSuccess(withRt(expires), NOW, policy, 0)).toBe(NOW + DAY - 1);
  });

  it("waits at least minInterval when expiry is already within the margin", () => {
    expect(nextRefreshAfterSuccess(withRt(NOW + 60_000), NOW, policy, 0)).toBe(NOW + 5_000);
    expect(nextRefreshAfterSuccess(withRt(NOW - HOUR), NOW, policy, 0)).toBe(NOW + 5_000); // already expired
  });

  it("applies the minInterval floor on both sides of its threshold", () => {
    // due = expires − margin: exactly now + minInterval, then 1 ms later
    expect(nextRefreshAfterSuccess(withRt(NOW + 305_000), NOW, policy, 0)).toBe(NOW + 5_000);
    expect(nextRefreshAfterSuccess(withRt(NOW + 305_001), NOW, policy, 0)).toBe(NOW + 5_001);
    expect(nextRefreshAfterSuccess(withRt(NOW + 304_999), NOW, policy, 0)).toBe(NOW + 5_000);
  });

  it("without a refresh token, acts at expiry (to mark it not refreshable)", () => {
    expect(nextRefreshAfterSuccess({ expiresAtMs: NOW + HOUR, renewable: false }, NOW, policy, 0.5)).toBe(NOW + HOUR);
  });

  it("without a refresh token and without expiry, never acts", () => {
    expect(nextRefreshAfterSuccess({ expiresAtMs: null, renewable: false }, NOW, policy, 0.5)).toBeNull();
  });

  it("with a refresh token but no expiry, refreshes at keep-alive", () => {
    expect(nextRefreshAfterSuccess(withRt(null), NOW, policy, 0.5)).toBe(NOW + DAY);
  });

  it("a token just issued is refreshed no earlier than half its lifetime, on both sides of margin = lifetime / 2", () => {
    const fresh = (lifetimeMs: number) => ({ expiresAtMs: NOW + lifetimeMs, renewable: true, issuedAtMs: NOW });
    // margin 300 s: a 600 s token is exactly at the threshold, a 599 s one is capped, a 601 s one is not
    expect(nextRefreshAfterSuccess(fresh(600_000), NOW, policy, 0)).toBe(NOW + 300_000);
    expect(nextRefreshAfterSuccess(fresh(599_000), NOW, policy, 0)).toBe(NOW + 299_500);
    expect(nextRefreshAfterSuccess(fresh(601_000), NOW, policy, 0)).toBe(NOW + 301_000);
    // HubSpot / Xero: a 30-minute token with a 1-hour margin is refreshed after 15 minutes, not every minInterval
    expect(nextRefreshAfterSuccess(fresh(1_800_000), NOW, { ...policy, marginMs: 3_600_000 }, 0)).toBe(NOW + 900_000);
    // jitter counts toward the lead: capped the same way
    expect(nextRefreshAfterSuccess(fresh(600_000), NOW, policy, 0.999)).toBe(NOW + 300_000);
  });
});

describe("backoffDelayMs", () => {
  const noFloor = resolveRefreshPolicy({ minIntervalMs: 0 });

  it("doubles per attempt from backoffBase (full jitter, random = 0.5)", () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, noFloor, 0.5))).toEqual([2_500, 5_000, 10_000, 20_000, 40_000]);
  });

  it("is capped at backoffMax", () => {
    // attempt 6: 0.999 × 160 000; attempt 7: 5 000 × 2^6 = 320 000 > 300 000, so 0.999 × 300 000
    expect(backoffDelayMs(6, noFloor, 0.999)).toBe(159_840);
    expect(backoffDelayMs(7, noFloor, 0.999)).toBe(299_700);
    expect(backoffDelayMs(50, noFloor, 0.999)).toBe(299_700);
    expect(backoffDelayMs(5_000, noFloor, 0.999)).toBe(299_700);
  });

  it("is floored at minInterval (random = 0)", () => {
    expect(backoffDelayMs(1, policy, 0)).toBe(5_000);
    expect(backoffDelayMs(10, policy, 0)).toBe(5_000);
  });

  it("is never below minInterval nor above backoffMax for any random in [0, 1)", () => {
    for (const r of [0, 0.25, 0.5, 0.999999]) {
      for (let attempt = 1; attempt <= 12; attempt++) {
        const d = backoffDelayMs(attempt, policy, r);
        expect(d).toBeGreaterThanOrEqual(policy.minIntervalMs);
        expect(d).toBeLessThanOrEqual(policy.backoffMaxMs);
      }
    }
  });
});

describe("afterRefreshFailure", () => {
  it("permanent (grant) → error, no further schedule, phase dead", () => {
    expect(afterRefreshFailure({ consecutiveFailures: 2 }, grantDead, NOW, policy, 0.5)).toEqual({
      state: "error",
      consecutiveFailures: 3,
      nextRefreshAtMs: null,
      phase: "dead",
    });
  });

  it("permanent (provider) → degraded, retried at the recovery interval, phase provider_misconfigured", () => {
    expect(afterRefreshFailure({ consecutiveFailures: 0 }, providerBroken, NOW, policy, 0.5)).toEqual({
      state: "degraded",
      consecutiveFailures: 1,
      nextRefreshAtMs: NOW + 1_800_000,
      phase: "provider_misconfigured",
    });
  });

  // random = 0.5, default policy: max(5 000, 0.5 × 5 000 × 2^(n−1))
  it.each([
    [0, 5_000],
    [1, 5_000],
    [2, 10_000],
    [3, 20_000],
    [4, 40_000],
  ])("transient with %i previous failures → degraded, backoff %i ms", (previous, delay) => {
    expect(afterRefreshFailure({ consecutiveFailures: previous }, transient, NOW, policy, 0.5)).toEqual({
      state: "degraded",
      consecutiveFailures: previous + 1,
      nextRefreshAtMs: NOW + delay,
      phase: "backoff",
      enteredRecovery: false,
    });
  });

  it("failure number maxRetries + 1 enters active recovery (once)", () => {
    expect(afterRefreshFailure({ consecutiveFailures: policy.maxRetries }, transient, NOW, policy, 0.5)).toEqual({
      state: "degraded",
      consecutiveFailures: 6,
      nextRefreshAtMs: NOW + 1_800_000,
      phase: "recovery",
      enteredRecovery: true,
    });
  });

  it("the failure after that stays in recovery without entering it again", () => {
    expect(afterRefreshFailure({ consecutiveFailures: policy.maxRetries + 1 }, transient, NOW, policy, 0.5)).toEqual({
      state: "degraded",
      consecutiveFailures: 7,
      nextRefreshAtMs: NOW + 1_800_000,
      phase: "recovery",
      enteredRecovery: false,
    });
  });

  it("with maxRetries 0 the first transient failure enters recovery", () => {
    const p = resolveRefreshPolicy({ maxRetries: 0 });
    expect(afterRefreshFailure({ consecutiveFailures: 0 }, transient, NOW, p, 0.5)).toMatchObject({ phase: "recovery", enteredRecovery: true, nextRefreshAtMs: NOW + 1_800_000 });
  });

  it("a Retry-After longer than the backoff wins", () => {
    const verdict: Classification = { class: "transient", reason: "rate_limited", code: "http_429", retryAfterMs: 60_000 };
    expect(afterRefreshFailure({ consecutiveFailures: 0 }, verdict, NOW, policy, 0.5).nextRefreshAtMs).toBe(NOW + 60_000);
  });

  it("a Retry-After shorter than the backoff does not shorten it", () => {
    const verdict: Classification = { class: "transient", reason: "rate_limited", code: "http_429", retryAfterMs: 1_000 };
    expect(afterRefreshFailure({ consecutiveFailures: 0 }, verdict, NOW, policy, 0.5).nextRefreshAtMs).toBe(NOW + 5_000);
  });

  it("a Retry-After longer than the recovery interval wins in recovery too", () => {
    const verdict: Classification = { class: "transient", reason: "server_error", code: "http_503", retryAfterMs: 2 * HOUR };
    expect(afterRefreshFailure({ consecutiveFailures: 10 }, verdict, NOW, policy, 0.5).nextRefreshAtMs).toBe(NOW + 2 * HOUR);
  });
});

describe("afterRefreshSuccess", () => {
  const subject = (state: ConnectionState) => ({ state, expiresAtMs: NOW + HOUR, renewable: true });

  it.each<[ConnectionState, ConnectionState]>([
    ["degraded", "ready"],
    ["pending", "ready"],
    ["ready", "ready"],
    ["syncing", "syncing"],
  ])("%s → %s, failures reset, next refresh scheduled", (from, to) => {
    expect(afterRefreshSuccess(subject(from), NOW, policy, 0)).toEqual({
      state: to,
      consecutiveFailures: 0,
      nextRefreshAtMs: NOW + HOUR - 300_000,
    });
  });

  it("keeps a connection degraded by API rejections degraded: a new token does not show the API accepts it", () => {
    expect(afterRefreshSuccess({ ...subject("degraded"), lastErrorCode: API_AUTH_REJECTED }, NOW, policy, 0).state).toBe("degraded");
    expect(afterRefreshSuccess({ ...subject("degraded"), lastErrorCode: "http_503" }, NOW, policy, 0).state).toBe("ready");
    expect(afterRefreshSuccess({ ...subject("ready"), lastErrorCode: API_AUTH_REJECTED }, NOW, policy, 0).state).toBe("ready");
  });
});

describe("applyHostReport", () => {
  it.each(HOST_REPORTED_STATES)("error refuses a report of %s with connection_error", (reported) => {
    expect(applyHostReport("error", reported)).toEqual({ ok: false, code: "connection_error" });
  });

  it.each(HOST_REPORTED_STATES)("degraded refuses a report of %s with connection_degraded", (reported) => {
    expect(applyHostReport("degraded", reported)).toEqual({ ok: false, code: "connection_degraded" });
  });

  const accepting = CONNECTION_STATES.filter((s) => s !== "error" && s !== "degraded");
  it.each(accepting.flatMap((current) => HOST_REPORTED_STATES.map((reported) => [current, reported] as const)))(
    "%s accepts a report of %s",
    (current, reported) => {
      expect(applyHostReport(current, reported)).toEqual({ ok: true, state: reported });
    },
  );
});

describe("Retry-After cap", () => {
  it("caps a Retry-After beyond keepAlive at keepAlive, so a bogus header cannot park a grant for years", () => {
    const policy = defaultRefreshPolicy;
    const now = Date.UTC(2026, 0, 1);
    const huge: Classification = { class: "transient", reason: "rate_limited", code: "http_429", retryAfterMs: 1e16 };
    expect(afterRefreshFailure({ consecutiveFailures: 0 }, huge, now, policy, 0.5).nextRefreshAtMs).toBe(now + policy.keepAliveMs);
    const justUnder: Classification = { ...huge, retryAfterMs: policy.keepAliveMs - 1 };
    expect(afterRefreshFailure({ consecutiveFailures: 0 }, justUnder, now, policy, 0.5).nextRefreshAtMs).toBe(now + policy.keepAliveMs - 1);
  });
});

describe("afterApiAuthRejected", () => {
  const three = { authFailuresToDegrade: 3 };
  it.each<[ConnectionState, number, ConnectionState, boolean]>([
    ["ready", 1, "ready", false],
    ["ready", 2, "ready", false],
    ["ready", 3, "degraded", true],
    ["ready", 4, "degraded", true],
    ["pending", 2, "pending", false],
    ["pending", 3, "degraded", true],
    ["syncing", 3, "degraded", true],
    ["degraded", 3, "degraded", false],
    ["degraded", 9, "degraded", false],
    ["error", 3, "error", false],
  ])("%s with %i rejections in a row → %s (degrade now: %s)", (state, apiAuthRejections, next, degrade) => {
    expect(afterApiAuthRejected({ state, apiAuthRejections }, three)).toEqual({ state: next, degrade });
  });

  it("never answers error, whatever the count", () => {
    for (const state of CONNECTION_STATES) for (const n of [1, 3, 1000]) expect(afterApiAuthRejected({ state, apiAuthRejections: n }, three).state === "error").toBe(state === "error");
  });

  it("degrades on the first rejection when the threshold is 1", () => {
    expect(afterApiAuthRejected({ state: "ready", apiAuthRejections: 1 }, { authFailuresToDegrade: 1 })).toEqual({ state: "degraded", degrade: true });
  });
});

describe("afterApiAuthAccepted", () => {
  it.each<[ConnectionState, string | undefined, ConnectionState, boolean]>([
    ["degraded", API_AUTH_REJECTED, "ready", true],
    ["degraded", "http_503", "degraded", false],
    ["degraded", undefined, "degraded", false],
    ["ready", undefined, "ready", false],
    ["syncing", API_AUTH_REJECTED, "syncing", false],
    ["error", API_AUTH_REJECTED, "error", false],
  ])("%s with lastError %s → %s (recovered: %s)", (state, lastErrorCode, next, recovered) => {
    expect(afterApiAuthAccepted({ state, lastErrorCode })).toEqual({ state: next, recovered });
  });
});
