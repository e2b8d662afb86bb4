import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.js";

const START = Date.UTC(2026, 0, 1);

describe("ManualClock", () => {
  it("starts at the given instant and only moves when advanced", () => {
    const clock = new ManualClock(START);
    expect(clock.now()).toBe(START);
    clock.advance(1_500);
    expect(clock.now()).toBe(START + 1_500);
  });

  it("fires timers in due order during advance, each at its due time", () => {
    const clock = new ManualClock(START);
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => fired.push(["c", clock.now() - START]), 300);
    clock.setTimeout(() => fired.push(["a", clock.now() - START]), 100);
    clock.setTimeout(() => fired.push(["b", clock.now() - START]), 200);

    clock.advance(250);
    expect(fired).toEqual([
      ["a", 100],
      ["b", 200],
    ]);
    expect(clock.now()).toBe(START + 250);
    expect(clock.pendingTimers()).toBe(1);

    clock.advance(50);
    expect(fired.map(([n]) => n)).toEqual(["a", "b", "c"]);
    expect(clock.pendingTimers()).toBe(0);
  });

  it("does not fire a timer before it is due, and fires it exactly at its due time", () => {
    const clock = new ManualClock(START);
    let fired = 0;
    clock.setTimeout(() => fired++, 100);
    clock.advance(99);
    expect(fired).toBe(0);
    clock.advance(1);
    expect(fired).toBe(1);
  });

  it("fires timers due at the same instant in the order they were set", () => {
    const clock = new ManualClock(START);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push("first"), 50);
    clock.setTimeout(() => fired.push("second"), 50);
    clock.advance(50);
    expect(fired).toEqual(["first", "second"]);
  });

  it("clearTimeout cancels a timer; unknown handles are ignored", () => {
    const clock = new ManualClock(START);
    const fired: string[] = [];
    const a = clock.setTimeout(() => fired.push("a"), 100);
    clock.setTimeout(() => fired.push("b"), 100);
    clock.clearTimeout(a);
    clock.clearTimeout("not a handle");
    clock.clearTimeout(undefined);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(1_000);
    expect(fired).toEqual(["b"]);
  });

  it("a firing timer can cancel a later one", () => {
    const clock = new ManualClock(START);
    const fired: string[] = [];
    const later = clock.setTimeout(() => fired.push("later"), 200);
    clock.setTimeout(() => {
      fired.push("early");
      clock.clearTimeout(later);
    }, 100);
    clock.advance(500);
    expect(fired).toEqual(["early"]);
  });

  it("fires timers scheduled from inside a firing timer when they fall within the advance window", () => {
    const clock = new ManualClock(START);
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => {
      fired.push(["outer", clock.now() - START]);
      clock.setTimeout(() => fired.push(["inner-in-window", clock.now() - START]), 50); // due at 150
      clock.setTimeout(() => fired.push(["inner-after-window", clock.now() - START]), 150); // due at 250
    }, 100);

    clock.advance(200);
    expect(fired).toEqual([
      ["outer", 100],
      ["inner-in-window", 150],
    ]);
    expect(clock.pendingTimers()).toBe(1);

    clock.advance(50);
    expect(fired.at(-1)).toEqual(["inner-after-window", 250]);
  });

  it("a negative delay is due immediately", () => {
    const clock = new ManualClock(START);
    let fired = 0;
    clock.setTimeout(() => fired++, -10);
    clock.advance(0);
    expect(fired).toBe(1);
    expect(clock.now()).toBe(START);
  });

  it("set() jumps to an absolute instant, firing what falls due, and never goes back", () => {
    const clock = new ManualClock(START);
    let fired = 0;
    clock.setTimeout(() => fired++, 60_000);
    clock.set(START + 60_000);
    expect(fired).toBe(1);
    expect(clock.now()).toBe(START + 60_000);
    clock.set(START);
    expect(clock.now()).toBe(START + 60_000);
  });
});
