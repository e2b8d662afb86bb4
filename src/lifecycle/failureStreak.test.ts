import { describe, expect, it } from "vitest";
import { readFailureStreak, type StreakEvent } from "./failureStreak.js";

/** A history, oldest first as written; ids ascending. */
function history(...entries: Array<[type: string, at: number]>): StreakEvent[] {
  return entries.map(([type, at], i) => ({ id: i + 1, type, at }));
}

/** The repository's read over an in-memory history: newest first, `before` an id cursor. */
function reader(events: StreakEvent[], reads: number[] = []) {
  return async (_id: string, before: number | undefined, limit: number) => {
    reads.push(before ?? -1);
    return events.filter((e) => before === undefined || e.id < before).sort((a, b) => b.id - a.id).slice(0, limit);
  };
}

describe("readFailureStreak", () => {
  it("finds the first failure of the current streak, not of an earlier one", async () => {
    const h = history(["granted", 0], ["refresh_failed", 10], ["refreshed", 20], ["refresh_failed", 30], ["refresh_failed", 40]);
    expect(await readFailureStreak(reader(h), "c", 2)).toEqual({ firstFailureAtMs: 30 });
  });

  it("reports when the streak entered active recovery", async () => {
    const h = history(["granted", 0], ["refresh_failed", 100], ["refresh_failed", 200], ["recovery_entered", 200], ["refresh_failed", 300]);
    expect(await readFailureStreak(reader(h), "c", 3)).toEqual({ firstFailureAtMs: 100, recoveryEnteredAtMs: 200 });
  });

  it("stops at the count even without a boundary (older failures belong to an earlier streak)", async () => {
    const h = history(["refresh_failed", 1], ["refresh_failed", 2], ["refresh_failed", 3]);
    expect(await readFailureStreak(reader(h), "c", 2)).toEqual({ firstFailureAtMs: 2 });
  });

  it("reads page after page for a long streak", async () => {
    const entries: Array<[string, number]> = [["granted", 0]];
    for (let n = 1; n <= 450; n++) entries.push(["refresh_failed", n * 1000], ["suspicious_refresh", n * 1000]);
    const reads: number[] = [];
    expect(await readFailureStreak(reader(history(...entries), reads), "c", 450)).toEqual({ firstFailureAtMs: 1000 });
    expect(reads.length).toBe(5);
  });

  it("uses the oldest failure on record when history ends first, and nothing when there is none", async () => {
    expect(await readFailureStreak(reader(history(["refresh_failed", 7])), "c", 3)).toEqual({ firstFailureAtMs: 7 });
    expect(await readFailureStreak(reader(history(["granted", 1])), "c", 1)).toBeUndefined();
    expect(await readFailureStreak(reader([]), "c", 1)).toBeUndefined();
  });
});
