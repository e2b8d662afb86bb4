/**
 * Dashboard sessions and CSRF tokens (issue 15 item 1, docs/security.md
 * "Dashboard").
 *
 * A session is a signed cookie, not a server row: `v1.<id>.<expiresAtMs>.<keyTag>.<mac>`
 * where `mac` = HMAC-SHA256(secret, the rest). `keyTag` is an HMAC of the API
 * key that signed in, so removing that key from `GRANTKEEPER_API_KEY` ends its
 * sessions at once. A sign-out is remembered in the store until the session
 * would have expired (`gk.operations.signOut`), so a copied cookie is refused
 * after it.
 *
 * CSRF (OWASP "synchronizer token", session-bound): every form that changes
 * something carries `_csrf` = HMAC(secret, "csrf:" + session id); the sign-in
 * form, before any session, carries HMAC(secret, "sign-in:" + nonce) where the
 * nonce is in its own cookie (signed double-submit). Compared in constant time.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../../domain/clock.js";

/** Name of the session cookie. */
export const SESSION_COOKIE = "gk_dashboard";
/** Name of the sign-in form's nonce cookie (before a session exists). */
export const SIGN_IN_COOKIE = "gk_sign_in";
/** Name of the CSRF field of every dashboard form that changes something. */
export const CSRF_FIELD = "_csrf";
/** Lifetime of a session, milliseconds (8 hours: a working shift). */
export const SESSION_TTL_MS = 8 * 3_600_000;

/** A verified dashboard session. */
export interface DashboardSession {
  /** Random id, base64url of 18 bytes; the CSRF token is derived from it. */
  id: string;
  /** When it expires, ms since the epoch (the injected clock). */
  expiresAtMs: number;
}

const b64url = (b: Buffer) => b.toString("base64url");

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Signs and verifies dashboard sessions and CSRF tokens with one secret. */
export class SessionSigner {
  private readonly keyTags: string[];

  /**
   * @param secret at least 32 bytes: HKDF of the encryption key (`grantkeeper serve`) or random per process
   * @param apiKeys the keys that may sign in; a session is valid only while its key still is
   * @param ttlMs session lifetime, ms
   * @throws RangeError for a secret shorter than 32 bytes
   */
  constructor(
    private readonly secret: Buffer,
    apiKeys: readonly string[],
    private readonly clock: Clock,
    private readonly ttlMs: number = SESSION_TTL_MS,
  ) {
    if (secret.length < 32) throw new RangeError("the dashboard session secret must be at least 32 bytes");
    this.keyTags = apiKeys.map((k) => this.keyTag(k));
  }

  private mac(purpose: string, value: string): string {
    return b64url(createHmac("sha256", this.secret).update(`${purpose}:${value}`).digest());
  }

  private keyTag(apiKey: string): string {
    return this.mac("key", apiKey).slice(0, 22);
  }

  /**
   * A new session for a caller who proved `apiKey` (already checked against the keys).
   * @returns the cookie value and the session
   */
  issue(apiKey: string): { cookie: string; session: DashboardSession } {
    const id = b64url(randomBytes(18));
    const expiresAtMs = this.clock.now() + this.ttlMs;
    const body = `v1.${id}.${expiresAtMs}.${this.keyTag(apiKey)}`;
    return { cookie: `${body}.${this.mac("session", body)}`, session: { id, expiresAtMs } };
  }

  /**
   * The session of a cookie value, or undefined when it is malformed, forged,
   * expired, or signed in with a key that is no longer configured. (Whether
   * it was signed out is the store's to say.)
   */
  verify(cookie: string | undefined): DashboardSession | undefined {
    if (!cookie) return undefined;
    const parts = cookie.split(".");
    if (parts.length !== 5 || parts[0] !== "v1") return undefined;
    const [, id, exp, tag, mac] = parts as [string, string, string, string, string];
    const body = `v1.${id}.${exp}.${tag}`;
    if (!equal(mac, this.mac("session", body))) return undefined;
    const expiresAtMs = Number(exp);
    if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs <= this.clock.now()) return undefined;
    let known = false;
    for (const t of this.keyTags) known = equal(tag, t) || known;
    return known ? { id, expiresAtMs } : undefined;
  }

  /** The CSRF token of a session's forms. */
  csrfToken(session: DashboardSession): string {
    return this.mac("csrf", session.id);
  }

  /** True when `token` is the session's CSRF token (constant time). */
  checkCsrf(session: DashboardSession, token: unknown): boolean {
    return typeof token === "string" && equal(token, this.csrfToken(session));
  }

  /** A fresh nonce for the sign-in form's cookie. */
  signInNonce(): string {
    return b64url(randomBytes(18));
  }

  /** The sign-in form's CSRF token for `nonce`. */
  signInToken(nonce: string): string {
    return this.mac("sign-in", nonce);
  }

  /** True when `token` matches the nonce cookie (constant time). */
  checkSignInToken(nonce: string | undefined, token: unknown): boolean {
    return typeof nonce === "string" && nonce.length > 0 && typeof token === "string" && equal(token, this.signInToken(nonce));
  }
}
