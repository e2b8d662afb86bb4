import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { GrantkeeperError } from "../domain/errors.js";
import { deriveConnectKey, signConnectToken, verifyConnectToken, type ConnectClaims } from "./connectToken.js";

const key = deriveConnectKey(randomBytes(32));
const EXP = 1_800_000_000; // seconds since the epoch
const claims: ConnectClaims = { providerId: "github", entityId: "user-42", returnTo: "https://app.example.com/done", exp: EXP };

function expectInvalid(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(GrantkeeperError);
  expect(caught).toMatchObject({ kind: "unauthorized", code: "invalid_connect_token" });
}

/** Replace the first character of a base64url string with another base64url character. */
const flipFirst = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);

describe("connect tokens", () => {
  it("round-trips: a token verifies for its provider before expiry and returns its claims", () => {
    const token = signConnectToken(key, claims);
    expect(verifyConnectToken(key, token, "github", EXP * 1000 - 60_000)).toEqual(claims);
  });

  it("is still valid 1 ms before exp", () => {
    const token = signConnectToken(key, claims);
    expect(verifyConnectToken(key, token, "github", EXP * 1000 - 1)).toEqual(claims);
  });

  it("has expired at exactly exp (and after)", () => {
    const token = signConnectToken(key, claims);
    expectInvalid(() => verifyConnectToken(key, token, "github", EXP * 1000));
    expectInvalid(() => verifyConnectToken(key, token, "github", EXP * 1000 + 1));
  });

  it("is refused for another provider", () => {
    const token = signConnectToken(key, claims);
    expectInvalid(() => verifyConnectToken(key, token, "slack", EXP * 1000 - 1));
  });

  it("is refused when the body was changed (signature no longer matches)", () => {
    const token = signConnectToken(key, claims);
    const [, sig] = token.split(".");
    const forgedBody = Buffer.from(JSON.stringify({ ...claims, entityId: "someone-else" })).toString("base64url");
    expectInvalid(() => verifyConnectToken(key, `${forgedBody}.${sig}`, "github", EXP * 1000 - 1));
    const extended = Buffer.from(JSON.stringify({ ...claims, exp: EXP + 86_400 })).toString("base64url");
    expectInvalid(() => verifyConnectToken(key, `${extended}.${sig}`, "github", EXP * 1000 + 1));
  });

  it("is refused when the signature was changed", () => {
    const [body, sig] = signConnectToken(key, claims).split(".") as [string, string];
    expectInvalid(() => verifyConnectToken(key, `${body}.${flipFirst(sig)}`, "github", EXP * 1000 - 1));
    expectInvalid(() => verifyConnectToken(key, `${body}.${sig.slice(0, -4)}`, "github", EXP * 1000 - 1));
  });

  it("is refused under a different key", () => {
    const token = signConnectToken(key, claims);
    expectInvalid(() => verifyConnectToken(deriveConnectKey(randomBytes(32)), token, "github", EXP * 1000 - 1));
  });

  it("is refused when malformed", () => {
    for (const token of ["", "no-dot", ".", "abc.", ".abc"]) {
      expectInvalid(() => verifyConnectToken(key, token, "github", EXP * 1000 - 1));
    }
  });

  it("derives a signing key distinct from the encryption key, deterministically", () => {
    const encryptionKey = randomBytes(32);
    const derived = deriveConnectKey(encryptionKey);
    expect(derived).toHaveLength(32);
    expect(derived.equals(encryptionKey)).toBe(false);
    expect(deriveConnectKey(encryptionKey).equals(derived)).toBe(true);
  });
});
