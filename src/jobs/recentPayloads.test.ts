import { describe, expect, it } from "vitest";
import { ManualClock } from "../domain/clock.js";
import { RecentPayloads } from "./recentPayloads.js";

const payload = (body: string) => ({ headers: '{"content-type":"application/json"}', body });

describe("RecentPayloads", () => {
  it("hands a kept payload out once, and nothing for a job it never kept", () => {
    const recent = new RecentPayloads(new ManualClock());
    const p = payload("eyJuIjoxfQ==");
    recent.put("job_a", p);
    expect(recent.take("job_b")).toBeUndefined();
    expect(recent.take("job_a")).toBe(p);
    expect(recent.take("job_a")).toBeUndefined();
    expect(recent.size).toBe(0);
  });

  it("forgets an entry older than maxAgeMs, at a take or at the next put", () => {
    const clock = new ManualClock();
    const recent = new RecentPayloads(clock, { maxBytes: 1_000, maxAgeMs: 1_000 });
    recent.put("job_a", payload("a"));
    clock.advance(1_000);
    expect(recent.take("job_a")).toEqual(payload("a"));
    recent.put("job_b", payload("b"));
    recent.put("job_c", payload("c"));
    clock.advance(1_001);
    expect(recent.take("job_b")).toBeUndefined();
    expect(recent.size).toBe(0);
    recent.put("job_d", payload("d"));
    clock.advance(600);
    recent.put("job_e", payload("e"));
    clock.advance(600);
    // job_d is 1,200 ms old: dropped by this put; job_e (600 ms) stays.
    recent.put("job_f", payload("f"));
    expect(recent.size).toBe(2);
    expect(recent.take("job_d")).toBeUndefined();
    expect(recent.take("job_e")).toEqual(payload("e"));
  });

  it("keeps no more than maxBytes: a payload that does not fit is not kept, and room comes back as entries are taken", () => {
    const headers = '{"content-type":"application/json"}'.length;
    const recent = new RecentPayloads(new ManualClock(), { maxBytes: 2 * (headers + 10), maxAgeMs: 10_000 });
    recent.put("job_a", payload("a".repeat(10)));
    recent.put("job_b", payload("b".repeat(10)));
    recent.put("job_c", payload("c".repeat(10)));
    expect(recent.size).toBe(2);
    expect(recent.take("job_c")).toBeUndefined();
    expect(recent.take("job_a")).toEqual(payload("a".repeat(10)));
    recent.put("job_d", payload("d".repeat(10)));
    expect([recent.take("job_b"), recent.take("job_d")]).toEqual([payload("b".repeat(10)), payload("d".repeat(10))]);
  });

  it("forgets everything on clear, and refuses bounds that are not positive", () => {
    const recent = new RecentPayloads(new ManualClock());
    recent.put("job_a", payload("a"));
    recent.clear();
    expect(recent.take("job_a")).toBeUndefined();
    expect(() => new RecentPayloads(new ManualClock(), { maxBytes: 0, maxAgeMs: 1 })).toThrow(RangeError);
    expect(() => new RecentPayloads(new ManualClock(), { maxBytes: 1, maxAgeMs: Number.NaN })).toThrow(RangeError);
  });
});
