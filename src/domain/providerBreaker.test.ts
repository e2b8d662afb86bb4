import { describe, expect, it } from "vitest";
import { onFault, onSuccess, type BreakerState } from "./breaker.js";
import { classifyRefreshFailure, type RefreshObservation } from "./classify.js";
import { afterDeferred, BREAKER_OPEN_CODE, deferredUntil, isEndpointFault, providerBreakerView, providerGate } from "./providerBreaker.js";
import { API_AUTH_REJECTED } from "./transitions.js";

const NOW = Date.UTC(2026, 0, 1);
const http = (status: number, error?: string, json = true): RefreshObservation => ({ kind: "http", status, json, ...(error ? { error } : {}) });

describe("isEndpointFault: only the token endpoint's own failures count toward its breaker", () => {
  it.each([
    ["network error", { kind: "network" } as RefreshObservation, true],
    ["timeout", { kind: "timeout" } as RefreshObservation, true],
    ["500", http(500), true],
    ["503 JSON temporarily_unavailable", http(503, "temporarily_unavailable"), true],
    ["429", http(429), true],
    ["408", http(408), true],
    ["HTML error page (502 from a gateway)", http(502, undefined, false), true],
    ["HTML 404 page", http(404, undefined, false), true],
    ["400 invalid_grant (one grant is dead: the endpoint answered)", http(400, "invalid_grant"), false],
    ["401 invalid_client (configuration: its own provider alert)", http(401, "invalid_client"), false],
    ["400 unknown error code", http(400, "something_else"), false],
    ["2xx without a usable token", { kind: "invalid_response" } as RefreshObservation, false],
    ["not refreshable (no call)", { kind: "not_refreshable" } as RefreshObservation, false],
  ])("%s → %s", (_name, obs, expected) => {
    expect(isEndpointFault(classifyRefreshFailure(obs))).toBe(expected);
  });

  it("a provider override to transient is an answer, not an outage", () => {
    expect(isEndpointFault(classifyRefreshFailure(http(400, "slow_down"), { slow_down: "transient" }))).toBe(false);
  });
});

describe("providerGate", () => {
  const policy = { maxConsecutiveFailures: 3, cooldownMs: 120_000 };
  const faults = (n: number): BreakerState => {
    let s: BreakerState = { state: "closed", consecutiveFailures: 0, cooldownUntil: null };
    for (let i = 0; i < n; i++) s = onFault(s, NOW, policy).next;
    return s;
  };

  it("closed: call, whatever its failure count or a cooldown left by a fault", () => {
    expect(providerGate(faults(0), NOW)).toEqual({ kind: "call" });
    expect(providerGate(faults(2), NOW)).toEqual({ kind: "call" });
  });

  it("open: blocked until the cooldown ends, then one probe", () => {
    const open = faults(3);
    expect(open.state).toBe("open");
    expect(providerGate(open, NOW)).toEqual({ kind: "blocked", retryAtMs: NOW + 120_000 });
    expect(providerGate(open, NOW + 119_999)).toEqual({ kind: "blocked", retryAtMs: NOW + 120_000 });
    expect(providerGate(open, NOW + 120_000)).toEqual({ kind: "probe" });
  });

  it("a success closes it: calls go out again", () => {
    expect(providerGate(onSuccess(faults(5)).next, NOW)).toEqual({ kind: "call" });
  });
});

describe("deferredUntil", () => {
  it("is the end of the cooldown, spread over at most a tenth of it, at most 30 s", () => {
    expect(deferredUntil(NOW, 120_000, 0)).toBe(NOW);
    expect(deferredUntil(NOW, 120_000, 0.999)).toBe(NOW + 11_988);
    expect(deferredUntil(NOW, 3_600_000, 0.999)).toBe(NOW + 29_970);
  });
});

describe("providerBreakerView", () => {
  it("shows state, count, when it opened and the seconds to the next probe", () => {
    expect(providerBreakerView({ state: "closed", consecutiveFailures: 2, cooldownUntil: NOW + 5 }, NOW)).toEqual({ state: "closed", consecutiveFailures: 2 });
    expect(providerBreakerView({ state: "open", consecutiveFailures: 3, openedAt: NOW - 1_000, cooldownUntil: NOW + 79_001 }, NOW)).toEqual({
      state: "open",
      consecutiveFailures: 3,
      openedAt: new Date(NOW - 1_000).toISOString(),
      retryAfterSeconds: 80,
    });
    expect(providerBreakerView({ state: "open", consecutiveFailures: 3, openedAt: NOW, cooldownUntil: NOW - 1 }, NOW).retryAfterSeconds).toBe(0);
  });
});

describe("afterDeferred: a refresh the open breaker did not let through", () => {
  const retryAt = NOW + 120_000;
  it.each([
    ["a ready connection → degraded, due at the end of the cooldown, says why", { state: "ready", lastErrorCode: undefined, nextRefreshAtMs: NOW }, false, { write: true, state: "degraded", nextRefreshAtMs: retryAt, replaceLastError: true }],
    ["one in backoff after an endpoint fault → deferred to the cooldown's end", { state: "degraded", lastErrorCode: "http_503", nextRefreshAtMs: NOW + 5_000 }, false, { write: true, state: "degraded", nextRefreshAtMs: retryAt, replaceLastError: true }],
    ["already deferred to that time (an ensureFresh while open) → nothing written", { state: "degraded", lastErrorCode: BREAKER_OPEN_CODE, nextRefreshAtMs: retryAt }, false, { write: false }],
    ["deferred to an earlier cooldown → deferred again", { state: "degraded", lastErrorCode: BREAKER_OPEN_CODE, nextRefreshAtMs: retryAt - 1 }, false, { write: true, state: "degraded", nextRefreshAtMs: retryAt, replaceLastError: true }],
    ["a failed probe is always written (its attempt is recorded)", { state: "degraded", lastErrorCode: BREAKER_OPEN_CODE, nextRefreshAtMs: retryAt }, true, { write: true, state: "degraded", nextRefreshAtMs: retryAt, replaceLastError: true }],
    ["degraded because its API rejects its tokens → keeps that last error", { state: "degraded", lastErrorCode: API_AUTH_REJECTED, nextRefreshAtMs: NOW }, false, { write: true, state: "degraded", nextRefreshAtMs: retryAt, replaceLastError: false }],
  ] as const)("%s", (_name, subject, probe, expected) => {
    expect(afterDeferred(subject, retryAt, probe, 120_000, 0)).toEqual(expected);
  });
});
