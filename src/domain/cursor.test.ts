import { describe, expect, it } from "vitest";
import { seqCursor } from "./cursor.js";

describe("seqCursor", () => {
  it.each([
    [undefined, undefined],
    ["", undefined],
    ["0", 0],
    ["42", 42],
    ["9007199254740991", 9_007_199_254_740_991], // 2^53 − 1: the last safe integer
    ["9007199254740992", undefined], // 2^53: one past
    ["9".repeat(40), undefined],
    ["-1", undefined],
    ["1e3", undefined],
    ["12a", undefined],
    [" 1", undefined],
  ])("%j → %j", (cursor, position) => {
    expect(seqCursor(cursor)).toBe(position);
  });
});
