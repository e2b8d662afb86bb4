/** One run at a time of a "work off what is due" pass (job worker, refresh scheduler): sharing, one more pass on demand, no lost call. */
import { describe, expect, it } from "vitest";
import { CoalescedRun } from "./coalescedRun.js";

/** Resolve after `n` turns of the microtask queue. */
async function microtasks(n: number): Promise<void> {
  for (let k = 0; k < n; k++) await Promise.resolve();
}

describe("CoalescedRun", () => {
  it("shares one run between callers and does one more pass for a call made during a pass", async () => {
    let passes = 0;
    let release: () => void = () => undefined;
    const runner = new CoalescedRun(
      () => new Promise<number>((r) => ((release = () => r(1)), passes++)),
      () => undefined,
      () => 0,
    );
    const a = runner.run();
    const b = runner.run();
    expect(a).toBe(b);
    release();
    await microtasks(5);
    release();
    expect(await a).toBe(2);
    expect(passes).toBe(2);
  });

  // A call that lands after the last pass ended but before the run was marked finished used to join the finished
  // run and be lost: the work that prompted it then waited for the next timer (the job worker's poll).
  it("never loses a call, whenever it lands after a pass ends", async () => {
    for (let delay = 0; delay < 12; delay++) {
      let passes = 0;
      let release: () => void = () => undefined;
      const runner = new CoalescedRun(
        () => new Promise<number>((r) => ((release = () => r(0)), passes++)),
        () => undefined,
        () => 0,
      );
      void runner.run();
      release();
      await microtasks(delay);
      void runner.run();
      await microtasks(20);
      release();
      await runner.settled();
      expect({ delay, passes }).toEqual({ delay, passes: 2 });
    }
  });

  it("turns a pass that threw into onError's count and calls onSettled after every run", async () => {
    let settled = 0;
    const runner = new CoalescedRun(
      async () => {
        throw new Error("store down");
      },
      () => void settled++,
      (e) => (e.message === "store down" ? -1 : 0),
    );
    expect(await runner.run()).toBe(-1);
    expect(await runner.run()).toBe(-1);
    expect(settled).toBe(2);
  });
});
