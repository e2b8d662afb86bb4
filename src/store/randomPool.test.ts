import { describe, expect, it } from "vitest";
import { randomBytesPooled } from "./randomPool.js";

describe("pooled random bytes", () => {
  it("hands out each value once: 10,000 nonces of 12 bytes across many refills are all distinct", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const b = randomBytesPooled(12);
      expect(b.length).toBe(12);
      seen.add(b.toString("hex"));
    }
    expect(seen.size).toBe(10_000);
  });

  it("returns copies the pool never touches again, and serves sizes above the pool", () => {
    const a = randomBytesPooled(6);
    const before = a.toString("hex");
    for (let i = 0; i < 2_000; i++) randomBytesPooled(12);
    expect(a.toString("hex")).toBe(before);
    expect(randomBytesPooled(10_000).length).toBe(10_000);
  });

  it("refuses a count that is not an integer >= 1", () => {
    expect(() => randomBytesPooled(0)).toThrow(RangeError);
    expect(() => randomBytesPooled(1.5)).toThrow(RangeError);
  });
});
