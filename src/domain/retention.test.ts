import { describe, expect, it } from "vitest";
import { CONNECT_SESSION_GRACE_MS, defaultRetentionPolicy, JOB_RETENTION_WINDOWS, nextBatchSize, resolveRetentionPolicy, retentionCutoffs } from "./retention.js";
import { FINISHED_JOB_STATES, JOB_STATES } from "./states.js";

describe("retention windows", () => {
  it("gives every finished job state a window and no other state one", () => {
    expect(Object.keys(JOB_RETENTION_WINDOWS).sort()).toEqual([...FINISHED_JOB_STATES].sort());
    for (const state of JOB_STATES.filter((s) => !(FINISHED_JOB_STATES as readonly string[]).includes(s))) expect(JOB_RETENTION_WINDOWS[state]).toBeUndefined();
  });

  it("cuts each table at now minus its window", () => {
    const now = 10_000_000_000;
    const c = retentionCutoffs({ ...defaultRetentionPolicy, succeededJobsMs: 100, failedJobsMs: 200, alertsMs: 300, eventsMs: 400 }, now);
    expect(c.jobs).toEqual([
      { state: "succeeded", beforeMs: now - 100 },
      { state: "failed", beforeMs: now - 200 },
      { state: "dead", beforeMs: now - 200 },
      { state: "discarded", beforeMs: now - 200 },
    ]);
    expect(c).toMatchObject({ alertsBeforeMs: now - 300, eventsBeforeMs: now - 400, oauthStatesExpiredAtMs: now, connectSessionsBeforeMs: now - CONNECT_SESSION_GRACE_MS });
  });

  it("refuses a negative or non-finite window and a zero interval, naming the field", () => {
    expect(resolveRetentionPolicy({ alertsMs: 0 }).alertsMs).toBe(0);
    expect(() => resolveRetentionPolicy({ eventsMs: -1 })).toThrow(/retention\.eventsMs/);
    expect(() => resolveRetentionPolicy({ failedJobsMs: Number.NaN })).toThrow(/retention\.failedJobsMs/);
    expect(() => resolveRetentionPolicy({ sweepIntervalMs: 0 })).toThrow(/retention\.sweepIntervalMs/);
  });
});

describe("sweep batch sizing", () => {
  it("aims the next batch at the target duration, within [min, max]", () => {
    // 200 rows in 8 ms with a 4 ms target: half as many next time.
    expect(nextBatchSize(200, 8, 4, 10, 500)).toBe(100);
    // A store so loaded that even the smallest batch is slow: still the minimum, never 0.
    expect(nextBatchSize(10, 400, 4, 10, 500)).toBe(10);
    // Near the cap: never above it.
    expect(nextBatchSize(400, 1, 4, 10, 500)).toBe(500);
  });

  it("grows at most 2x per batch, so one fast batch (a cached page) cannot overshoot", () => {
    expect(nextBatchSize(10, 0, 4, 10, 500)).toBe(20);
    expect(nextBatchSize(50, 0.5, 4, 10, 500)).toBe(100);
  });
});
