import { describe, expect, it } from "vitest";
import { closedBreaker, mayStart, onFault, onSuccess, probeDue, type BreakerPolicy, type BreakerState } from "./breaker.js";

const NOW = Date.UTC(2026, 0, 1);
const policy: BreakerPolicy = { maxConsecutiveFailures: 3, cooldownMs: 120_000 };
const closed = (consecutiveFailures: number, cooldownUntil: number | null = null): BreakerState => ({ state: "closed", consecutiveFailures, cooldownUntil });
const open = (consecutiveFailures: number, cooldownUntil: number): BreakerState => ({ state: "open", consecutiveFailures, openedAt: NOW - 500_000, cooldownUntil });

describe("onFault", () => {
  it.each<[string, BreakerState, BreakerState, boolean]>([
    ["first fault: counts, cooldown, stays closed", closedBreaker, closed(1, NOW + 120_000), false],
    ["one below the threshold after it: stays closed", closed(1, NOW - 1), closed(2, NOW + 120_000), false],
    ["reaching maxConsecutiveFailures opens", closed(2, NOW - 1), { state: "open", consecutiveFailures: 3, openedAt: NOW, cooldownUntil: NOW + 120_000 }, true],
    ["already past the threshold while closed (policy lowered) opens", closed(7), { state: "open", consecutiveFailures: 8, openedAt: NOW, cooldownUntil: NOW + 120_000 }, true],
    ["a failed probe keeps it open, opened once, with a new cooldown", open(3, NOW), { state: "open", consecutiveFailures: 4, openedAt: NOW - 500_000, cooldownUntil: NOW + 120_000 }, false],
  ])("%s", (_, before, next, opened) => {
    expect(onFault(before, NOW, policy)).toEqual({ next, opened, closed: false });
  });

  it("with maxConsecutiveFailures 1 the first fault opens", () => {
    expect(onFault(closedBreaker, NOW, { ...policy, maxConsecutiveFailures: 1 }).opened).toBe(true);
  });
});

describe("onSuccess", () => {
  it.each<[string, BreakerState, boolean]>([
    ["a clean breaker stays clean", closedBreaker, false],
    ["a closed breaker with faults is reset", closed(2, NOW + 5), false],
    ["an open breaker closes (the probe succeeded)", open(5, NOW - 1), true],
  ])("%s", (_, before, closedNow) => {
    expect(onSuccess(before)).toEqual({ next: closedBreaker, opened: false, closed: closedNow });
  });
});

describe("mayStart (the cooldown every entry path waits out)", () => {
  it.each<[string, BreakerState, boolean]>([
    ["no cooldown", closedBreaker, true],
    ["cooldown ends 1 ms from now", closed(1, NOW + 1), false],
    ["cooldown ends now", closed(1, NOW), true],
    ["cooldown ended 1 ms ago", closed(1, NOW - 1), true],
    ["open, cooling down", open(3, NOW + 1), false],
    ["open, cooldown over", open(3, NOW), true],
  ])("%s → %s", (_, s, expected) => {
    expect(mayStart(s, NOW)).toBe(expected);
  });
});

describe("probeDue", () => {
  it.each<[string, BreakerState, boolean]>([
    ["closed, never", closedBreaker, false],
    ["closed with a passed cooldown, never (nothing to probe)", closed(2, NOW - 1), false],
    ["open, cooldown ends 1 ms from now", open(3, NOW + 1), false],
    ["open, cooldown ends now", open(3, NOW), true],
    ["open, cooldown ended", open(3, NOW - 1), true],
  ])("%s → %s", (_, s, expected) => {
    expect(probeDue(s, NOW)).toBe(expected);
  });
});
