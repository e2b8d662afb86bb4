import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { closedBreaker, type BreakerState } from "./breaker.js";
import { jobAuthError, jobError, type JobLastError } from "./jobLastError.js";
import { acceptJob, defaultJobPolicy, jobTransition, mayClaim, queueRules, resolveJobPolicy, type JobEvent, type JobPolicy, type JobRecord, type RefreshAnswer } from "./jobLifecycle.js";
import type { JobOutcome } from "./jobOutcome.js";
import { INTEGRATION_STATUSES, JOB_STATES, type IntegrationStatus, type JobState } from "./states.js";

const NOW = Date.UTC(2026, 0, 1);
const policy: JobPolicy = resolveJobPolicy({ maxAttempts: 3, backoffBaseMs: 1_000, backoffMaxMs: 60_000 });
const C = "con_1";

const job = (over: Partial<JobRecord> = {}): JobRecord => ({ state: "running", attempts: 1, probe: false, runAtMs: NOW - 10_000, finishedAtMs: null, lastError: null, ...over });
const run = (j: JobRecord, e: JobEvent, p: JobPolicy = policy, random = 0.5) => jobTransition(j, e, NOW, p, random);
const outcome = (o: JobOutcome, connectionId?: string): JobEvent => ({ type: "finished", outcome: o, ...(connectionId ? { connectionId } : {}) });
const refreshed = (answer: RefreshAnswer): JobEvent => ({ type: "refreshed", connectionId: C, answer });
const at = new Date(NOW).toISOString();
const fault: JobOutcome = { kind: "faulted", code: "http_503", message: "consumer answered 503" };
const auth: JobOutcome = { kind: "auth_failed", message: "consumer reported an upstream auth failure" };

describe("resolveJobPolicy", () => {
  it("holds the documented defaults", () => {
    expect(resolveJobPolicy()).toEqual({ maxAttempts: 5, backoffBaseMs: 5_000, backoffMaxMs: 300_000, parkWhenDisabled: true });
    expect(Object.isFrozen(defaultJobPolicy)).toBe(true);
  });

  it("accepts maxAttempts 1 (the lower edge) and ignores undefined values", () => {
    expect(resolveJobPolicy({ maxAttempts: 1, backoffBaseMs: undefined })).toMatchObject({ maxAttempts: 1, backoffBaseMs: 5_000 });
  });

  it.each<[string, Partial<JobPolicy>]>([
    ["maxAttempts", { maxAttempts: 0 }],
    ["maxAttempts", { maxAttempts: 2.5 }],
    ["backoffBaseMs", { backoffBaseMs: -1 }],
    ["backoffMaxMs", { backoffMaxMs: Number.NaN }],
  ])("throws a RangeError naming %s for %o", (key, partial) => {
    expect(() => resolveJobPolicy(partial)).toThrow(new RegExp(`\\b${key}\\b`));
    expect(() => resolveJobPolicy(partial)).toThrow(RangeError);
  });
});

describe("acceptJob (by integration status and policy)", () => {
  it.each<[IntegrationStatus, boolean, JobState]>([
    ["ENABLED", true, "queued"],
    ["ENABLED", false, "queued"],
    ["ERROR", true, "parked"],
    ["ERROR", false, "parked"],
    ["DISABLED", true, "parked"],
    ["DISABLED", false, "discarded"],
  ])("%s with parkWhenDisabled %s → %s", (status, parkWhenDisabled, state) => {
    const { record, disposition } = acceptJob(status, NOW, { parkWhenDisabled });
    expect(disposition).toBe(state);
    expect(record).toEqual({
      state,
      attempts: 0,
      probe: false,
      runAtMs: NOW,
      finishedAtMs: state === "discarded" ? NOW : null,
      lastError: state === "discarded" ? { class: "user", code: "integration_disabled", message: "discarded: the integration is disabled", at } : null,
    });
  });
});

describe("claimed", () => {
  it.each(JOB_STATES.map((s) => [s, s === "queued" || s === "faulted"] as const))("from %s: claimable %s", (state, claimable) => {
    const j = job({ state, attempts: 2 });
    expect(run(j, { type: "claimed" }).next).toEqual(claimable ? { ...j, state: "running", attempts: 3 } : j);
  });
});

describe("finished", () => {
  it("succeeded: finished, error cleared, the target's breaker counts a success", () => {
    const j = job({ lastError: jobError("infra", "timeout", "x", NOW - 1) });
    expect(run(j, outcome({ kind: "succeeded" }))).toEqual({ next: { ...j, state: "succeeded", finishedAtMs: NOW, lastError: null }, effects: [{ type: "breaker", result: "success" }] });
  });

  it("failed: a user error, recorded, not retried; the target answered so its breaker counts a success", () => {
    const s = run(job({ attempts: 1 }), outcome({ kind: "failed", code: "http_400", message: "consumer answered 400" }));
    expect(s.next).toMatchObject({ state: "failed", finishedAtMs: NOW, lastError: { class: "user", code: "http_400" } });
    expect(s.effects).toEqual([{ type: "breaker", result: "success" }]);
  });

  it.each<[number, JobState]>([
    [1, "faulted"],
    [2, "faulted"], // maxAttempts − 1
    [3, "dead"], // maxAttempts
    [4, "dead"], // beyond (a replayed job that was re-claimed by a sweep)
  ])("faulted on attempt %i of 3 → %s", (attempts, state) => {
    const s = run(job({ attempts }), outcome(fault));
    expect(s.next.state).toBe(state);
    expect(s.next.lastError).toEqual({ class: "infra", code: "http_503", message: "consumer answered 503", at });
    expect(s.effects).toEqual(state === "dead" ? [{ type: "dead" }, { type: "breaker", result: "fault" }] : [{ type: "breaker", result: "fault" }]);
    expect(s.next.finishedAtMs).toBe(state === "dead" ? NOW : null);
  });

  it("a faulted job is claimable again after a full-jitter backoff (random 0.5: attempt 1 → 500 ms, attempt 2 → 1 000 ms)", () => {
    expect(run(job({ attempts: 1 }), outcome(fault)).next.runAtMs).toBe(NOW + 500);
    expect(run(job({ attempts: 2 }), outcome(fault)).next.runAtMs).toBe(NOW + 1_000);
    expect(run(job({ attempts: 2 }), outcome(fault), policy, 0).next.runAtMs).toBe(NOW + 1); // never "now": a tight loop
  });

  it("a consumer's Retry-After wins when longer than the backoff, not when shorter", () => {
    expect(run(job({ attempts: 1 }), outcome({ ...fault, retryAfterMs: 501 })).next.runAtMs).toBe(NOW + 501);
    expect(run(job({ attempts: 1 }), outcome({ ...fault, retryAfterMs: 499 })).next.runAtMs).toBe(NOW + 500);
  });

  it("a fault of a breaker probe parks it again (the next probe comes after the cooldown), counting on the breaker", () => {
    const s = run(job({ probe: true, attempts: 1 }), outcome(fault));
    expect(s.next).toMatchObject({ state: "parked", probe: false, finishedAtMs: null });
    expect(s.effects).toEqual([{ type: "breaker", result: "fault" }]);
  });

  it("no_handler says nothing about the target: no breaker effect", () => {
    expect(run(job(), outcome({ kind: "faulted", code: "no_handler", message: "no handler" })).effects).toEqual([]);
  });
});

describe("auth failures: refresh, re-run once, defer, or park — never dead", () => {
  it("asks for a refresh of the connection and stays running until it answers", () => {
    const j = job();
    expect(run(j, outcome(auth, C))).toEqual({ next: j, effects: [{ type: "refresh", connectionId: C }] });
  });

  it("already refreshed by the caller (ctx.fetch): no second refresh; re-run once, then parked", () => {
    const once = run(job({ attempts: 1 }), outcome({ ...auth, refreshed: true }, C));
    expect(once.effects).toEqual([]);
    expect(once.next).toMatchObject({ state: "queued", runAtMs: NOW, lastError: { class: "auth", code: "auth_failed", connectionId: C } });
    const again = run({ ...once.next, state: "running", attempts: 2 }, outcome({ ...auth, refreshed: true }, C));
    expect(again.next).toMatchObject({ state: "parked", lastError: { code: "auth_rejected" } });
    expect(again.effects).toEqual([{ type: "pauseIntegration", reason: "auth_rejected", connectionId: C }]);
  });

  it("with no connection to refresh: failed (auth, no_connection), not retried, not alerted", () => {
    const s = run(job(), outcome(auth));
    expect(s.next).toMatchObject({ state: "failed", finishedAtMs: NOW, lastError: { class: "auth", code: "no_connection" } });
    expect(s.effects).toEqual([]);
  });

  it("after a fresh token: re-run now, once", () => {
    const s = run(job({ attempts: 2 }), refreshed({ kind: "fresh" }));
    expect(s.next).toEqual({ ...job({ attempts: 2 }), state: "queued", runAtMs: NOW, lastError: { class: "auth", code: "auth_failed", message: expect.any(String), at, connectionId: C } });
    expect(s.effects).toEqual([]);
  });

  it("rejected again right after that re-run: parked, the integration paused, no refresh asked", () => {
    const s = run(job({ attempts: 2, lastError: jobAuthError("auth_failed", "re-running", NOW - 5, C) }), outcome(auth, C));
    expect(s.next).toMatchObject({ state: "parked", lastError: { class: "auth", code: "auth_rejected", connectionId: C } });
    expect(s.effects).toEqual([{ type: "pauseIntegration", reason: "auth_rejected", connectionId: C }]);
  });

  it.each<[string, JobLastError | null]>([
    ["no previous error", null],
    ["a previous fault", jobError("infra", "http_503", "x", NOW - 5)],
    ["a previous deferral", jobAuthError("auth_refresh_deferred", "x", NOW - 5, C)],
    ["parked for a dead grant, then replayed", jobAuthError("connection_error", "x", NOW - 5, C)],
    ["rejected, then replayed by hand", jobAuthError("auth_rejected", "x", NOW - 5, C)],
  ])("after %s an auth failure refreshes first", (_, lastError) => {
    expect(run(job({ lastError }), outcome(auth, C)).effects).toEqual([{ type: "refresh", connectionId: C }]);
  });

  it("the grant is dead: parked (its integration is in ERROR by propagation), no alert", () => {
    const s = run(job({ attempts: 3 }), refreshed({ kind: "dead" }));
    expect(s.next).toMatchObject({ state: "parked", lastError: { class: "auth", code: "connection_error", connectionId: C } });
    expect(s.effects).toEqual([]);
  });

  it.each<[number, number | undefined, number]>([
    [1, 5_000, NOW + 5_000], // the rate limit's Retry-After
    [1, 0, NOW + 1], // never "now"
    [2, undefined, NOW + 1_000], // unknown: the fault backoff (random 0.5, attempt 2)
  ])("no refresh now (attempt %i of 3, Retry-After %s): re-run no sooner than %i", (attempts, retryAfterMs, runAtMs) => {
    const s = run(job({ attempts }), refreshed({ kind: "deferred", ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }));
    expect(s.next).toMatchObject({ state: "queued", runAtMs, lastError: { class: "auth", code: "auth_refresh_deferred" } });
    expect(s.effects).toEqual([]);
  });

  it("no refresh by the last attempt: parked and the integration paused, not dead", () => {
    const s = run(job({ attempts: 3 }), refreshed({ kind: "deferred", retryAfterMs: 5_000 }));
    expect(s.next).toMatchObject({ state: "parked", lastError: { class: "auth", code: "auth_rejected" } });
    expect(s.effects).toEqual([{ type: "pauseIntegration", reason: "auth_rejected", connectionId: C }]);
  });

  it("a breaker probe that meets an auth failure parks again instead of re-running outside its turn", () => {
    expect(run(job({ probe: true }), refreshed({ kind: "fresh" })).next).toMatchObject({ state: "parked", probe: false });
    expect(run(job({ probe: true }), refreshed({ kind: "deferred", retryAfterMs: 1 })).next).toMatchObject({ state: "parked", probe: false });
  });

  it("property: a job whose token is always rejected ends parked within maxAttempts + 1 runs, never dead, whatever the refreshes answer", () => {
    const answer = fc.oneof(fc.constant<RefreshAnswer>({ kind: "fresh" }), fc.constant<RefreshAnswer>({ kind: "dead" }), fc.record({ kind: fc.constant("deferred" as const), retryAfterMs: fc.nat(100_000) }));
    fc.assert(
      fc.property(fc.array(answer, { minLength: 20, maxLength: 20 }), fc.integer({ min: 1, max: 8 }), (answers, maxAttempts) => {
        const p = { ...policy, maxAttempts };
        let j = job({ state: "queued", attempts: 0 });
        let runs = 0;
        while (j.state === "queued" && runs <= maxAttempts + 1) {
          j = run(j, { type: "claimed" }, p).next;
          runs++;
          const s = run(j, outcome(auth, C), p);
          j = s.effects.some((e) => e.type === "refresh") ? run(s.next, refreshed(answers[runs % answers.length]!), p).next : s.next;
        }
        return j.state === "parked" && runs <= maxAttempts + 1;
      }),
    );
  });
});

describe("events that do not apply leave the job as it is", () => {
  it.each<[JobEvent, JobState[]]>([
    [{ type: "finished", outcome: { kind: "succeeded" } }, ["running"]],
    [{ type: "refreshed", connectionId: C, answer: { kind: "fresh" } }, ["running"]],
    [{ type: "leaseExpired" }, ["running"]],
    [{ type: "probeQueued" }, ["parked"]],
    [{ type: "replayed" }, ["parked", "dead"]],
  ])("%o applies only from %o", (event, from) => {
    for (const state of JOB_STATES) {
      const j = job({ state });
      const s = run(j, event);
      expect(s.next === j, `${event.type} from ${state}`).toBe(!from.includes(state));
    }
  });
});

describe("lease expiry, probes, replay", () => {
  it("an expired lease re-queues the job now, its attempt counted", () => {
    expect(run(job({ attempts: 2 }), { type: "leaseExpired" }).next).toEqual({ ...job({ attempts: 2 }), state: "queued", runAtMs: NOW });
  });

  it("a probe is the parked job queued now with the probe flag", () => {
    expect(run(job({ state: "parked" }), { type: "probeQueued" }).next).toEqual({ ...job({ state: "parked" }), state: "queued", probe: true, runAtMs: NOW });
  });

  it("replay by hand: parked and dead jobs run again now with fresh attempts; the last error stays for the record", () => {
    const lastError = jobError("infra", "timeout", "x", NOW - 9);
    expect(run(job({ state: "dead", attempts: 3, finishedAtMs: NOW - 9, lastError }), { type: "replayed" }).next).toEqual({ state: "queued", attempts: 0, probe: false, runAtMs: NOW, finishedAtMs: null, lastError });
  });
});

describe("integration status changes (the queue's set-based rules)", () => {
  const cases: Array<[IntegrationStatus, boolean, JobState, JobState]> = [];
  for (const parkWhenDisabled of [true, false]) {
    for (const status of INTEGRATION_STATUSES) {
      for (const state of JOB_STATES) {
        let to: JobState = state;
        if (status === "ENABLED" && state === "parked") to = "queued";
        if (status !== "ENABLED" && (state === "queued" || state === "faulted")) to = status === "DISABLED" && !parkWhenDisabled ? "discarded" : "parked";
        if (status === "DISABLED" && !parkWhenDisabled && state === "parked") to = "discarded";
        cases.push([status, parkWhenDisabled, state, to]);
      }
    }
  }
  it.each(cases)("%s (parkWhenDisabled %s): %s → %s", (status, parkWhenDisabled, state, to) => {
    const j = job({ state, runAtMs: NOW - 1 });
    const { next } = run(j, { type: "integrationStatus", status }, { ...policy, parkWhenDisabled });
    expect(next.state).toBe(to);
    if (to === "queued" && state !== "queued") expect(next).toMatchObject({ runAtMs: NOW, probe: false });
    if (to === "discarded" && state !== "discarded") expect(next).toMatchObject({ finishedAtMs: NOW, lastError: { class: "user", code: "integration_disabled" } });
    if (to === state) expect(next).toBe(j);
  });

  it("a breaker probe is never parked or discarded by a status change (it runs although its integration is in ERROR)", () => {
    const j = job({ state: "queued", probe: true });
    expect(run(j, { type: "integrationStatus", status: "ERROR" }).next).toBe(j);
    expect(run(j, { type: "integrationStatus", status: "DISABLED" }, { ...policy, parkWhenDisabled: false }).next).toBe(j);
  });

  it("the rules are disjoint: a job matches at most one", () => {
    for (const parkWhenDisabled of [true, false]) {
      for (const state of JOB_STATES) {
        for (const status of INTEGRATION_STATUSES) {
          expect(queueRules({ parkWhenDisabled }).filter((r) => r.from.includes(state) && r.when.includes(status)).length).toBeLessThanOrEqual(1);
        }
      }
    }
  });
});

describe("mayClaim", () => {
  const cooling = (until: number): BreakerState => ({ state: "closed", consecutiveFailures: 1, cooldownUntil: until });
  it.each<[string, Partial<JobRecord>, IntegrationStatus, BreakerState, boolean]>([
    ["queued and due", { state: "queued", runAtMs: NOW }, "ENABLED", closedBreaker, true],
    ["queued, due 1 ms from now", { state: "queued", runAtMs: NOW + 1 }, "ENABLED", closedBreaker, false],
    ["faulted, its retry due now", { state: "faulted", runAtMs: NOW }, "ENABLED", closedBreaker, true],
    ["faulted, its retry due 1 ms from now", { state: "faulted", runAtMs: NOW + 1 }, "ENABLED", closedBreaker, false],
    ["parked", { state: "parked", runAtMs: NOW }, "ENABLED", closedBreaker, false],
    ["queued, integration in ERROR", { state: "queued", runAtMs: NOW }, "ERROR", closedBreaker, false],
    ["queued probe, integration in ERROR", { state: "queued", runAtMs: NOW, probe: true }, "ERROR", closedBreaker, true],
    ["queued, integration DISABLED", { state: "queued", runAtMs: NOW }, "DISABLED", closedBreaker, false],
    ["target cooling down 1 ms more", { state: "queued", runAtMs: NOW }, "ENABLED", cooling(NOW + 1), false],
    ["target cooldown ends now", { state: "queued", runAtMs: NOW }, "ENABLED", cooling(NOW), true],
    ["probe while the open breaker still cools down", { state: "queued", runAtMs: NOW, probe: true }, "ERROR", { state: "open", consecutiveFailures: 3, openedAt: NOW - 9, cooldownUntil: NOW + 1 }, false],
    ["running", { state: "running", runAtMs: NOW }, "ENABLED", closedBreaker, false],
  ])("%s → %s", (_, over, status, breaker, expected) => {
    expect(mayClaim(job(over), status, breaker, NOW)).toBe(expected);
  });
});
