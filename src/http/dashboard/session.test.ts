import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../domain/clock.js";
import { SESSION_TTL_MS, SessionSigner } from "./session.js";

const secret = randomBytes(32);

describe("dashboard sessions", () => {
  it("verifies its own cookie until it expires (injected clock), then refuses it", () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 5));
    const signer = new SessionSigner(secret, ["key-a"], clock);
    const { cookie, session } = signer.issue("key-a");
    expect(session.expiresAtMs).toBe(clock.now() + SESSION_TTL_MS);
    expect(signer.verify(cookie)).toEqual(session);
    expect(cookie).not.toContain("key-a");
    clock.advance(SESSION_TTL_MS - 1);
    expect(signer.verify(cookie)).toEqual(session);
    clock.advance(1);
    expect(signer.verify(cookie)).toBeUndefined();
  });

  it("refuses a forged or altered cookie: another secret, a later expiry, another id, garbage", () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 5));
    const signer = new SessionSigner(secret, ["key-a"], clock);
    const { cookie } = signer.issue("key-a");
    const [v, id, exp, tag, mac] = cookie.split(".");
    expect(new SessionSigner(randomBytes(32), ["key-a"], clock).verify(cookie)).toBeUndefined();
    expect(signer.verify([v, id, String(Number(exp) + 3_600_000), tag, mac].join("."))).toBeUndefined();
    // Another id: its first character always changes (a fixed "x" equalled it once in 64 runs).
    const otherId = (id![0] === "x" ? "y" : "x") + id!.slice(1);
    expect(signer.verify([v, otherId, exp, tag, mac].join("."))).toBeUndefined();
    for (const junk of [undefined, "", "v1", "v1.a.b.c", `${cookie}.x`, cookie.replace("v1", "v2")]) expect(signer.verify(junk)).toBeUndefined();
  });

  it("ends the sessions of a key removed from the configuration, and keeps those of the other keys", () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 5));
    const before = new SessionSigner(secret, ["old-key", "new-key"], clock);
    const oldSession = before.issue("old-key").cookie;
    const newSession = before.issue("new-key").cookie;
    const after = new SessionSigner(secret, ["new-key"], clock);
    expect(after.verify(oldSession)).toBeUndefined();
    expect(after.verify(newSession)).toBeDefined();
  });

  it("binds CSRF tokens to one session, and sign-in tokens to one nonce", () => {
    const signer = new SessionSigner(secret, ["key-a"], new ManualClock(0));
    const a = signer.issue("key-a").session;
    const b = signer.issue("key-a").session;
    expect(signer.checkCsrf(a, signer.csrfToken(a))).toBe(true);
    expect(signer.checkCsrf(a, signer.csrfToken(b))).toBe(false);
    for (const bad of [undefined, "", 42, ["x"], signer.csrfToken(a).slice(1)]) expect(signer.checkCsrf(a, bad)).toBe(false);
    const nonce = signer.signInNonce();
    expect(signer.checkSignInToken(nonce, signer.signInToken(nonce))).toBe(true);
    expect(signer.checkSignInToken(signer.signInNonce(), signer.signInToken(nonce))).toBe(false);
    expect(signer.checkSignInToken(undefined, signer.signInToken(nonce))).toBe(false);
  });

  it("refuses a secret shorter than 32 bytes", () => {
    expect(() => new SessionSigner(randomBytes(16), ["k"], new ManualClock(0))).toThrow(RangeError);
  });
});
