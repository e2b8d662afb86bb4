import { describe, expect, it } from "vitest";
import { constantTimeEquals, MIN_API_KEY_LENGTH, shortApiKeys } from "./auth.js";

describe("constantTimeEquals", () => {
  it.each([
    ["identical keys", "gk_live_abcdef0123456789", "gk_live_abcdef0123456789"],
    ["two empty strings", "", ""],
    ["identical non-ASCII text", "clé-ñ-🔑", "clé-ñ-🔑"],
  ])("is true for %s", (_label, given, expected) => {
    expect(constantTimeEquals(given, expected)).toBe(true);
  });

  it.each([
    ["same length, last character differs", "gk_live_abcdef0123456789", "gk_live_abcdef0123456788"],
    ["same length, first character differs", "Xk_live_abcdef0123456789", "gk_live_abcdef0123456789"],
    ["a prefix of the key", "gk_live_abc", "gk_live_abcdef0123456789"],
    ["the key plus a suffix", "gk_live_abcdef0123456789x", "gk_live_abcdef0123456789"],
    ["empty against a key", "", "gk_live_abcdef0123456789"],
    ["a key against empty", "gk_live_abcdef0123456789", ""],
    ["different case", "GK_LIVE_ABCDEF0123456789", "gk_live_abcdef0123456789"],
    ["surrounding whitespace", " gk_live_abcdef0123456789", "gk_live_abcdef0123456789"],
  ])("is false for %s", (_label, given, expected) => {
    expect(constantTimeEquals(given, expected)).toBe(false);
  });
});

describe("shortApiKeys", () => {
  it("names each key under 24 characters by its position and length, and no other", () => {
    const generated = `gk_${"a".repeat(32)}`;
    expect(MIN_API_KEY_LENGTH).toBe(24);
    expect(shortApiKeys([generated, "k", "x".repeat(23), "y".repeat(24)])).toEqual([
      { position: 2, length: 1 },
      { position: 3, length: 23 },
    ]);
    expect(shortApiKeys([generated])).toEqual([]);
  });
});
