/**
 * The cookie that binds the OAuth `state`s of a connect session to the
 * browser that opened its link (RFC 9700 §4.7.1). One cookie per session,
 * named after it: opening the same link again in the same browser reuses the
 * cookie's secret (several tabs, one binding, one cookie however often the
 * link is opened), and flows of different sessions in one browser do not
 * overwrite each other. The callback finds the session from the state, then
 * reads that session's cookie.
 *
 * - `HttpOnly`: no script reads it;
 * - `SameSite=Lax`: the callback is a top-level cross-site GET from the
 *   provider, which Lax still carries (Strict would not);
 * - on an https public URL: `Secure` and the `__Host-` prefix (no `Domain`,
 *   `Path=/`), so a sibling subdomain cannot plant one;
 * - on plain http (loopback development): `Path=/v1/`, sent to the link and
 *   the callback only;
 * - `Max-Age` = the state's lifetime; a completed connect clears it.
 */
import type { Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";

/** The cookie's name for a session, without the `__Host-` prefix. */
export function bindingCookieName(sessionId: string): string {
  return `gk_connect_${sessionId}`;
}

function options(secure: boolean, maxAgeSeconds: number) {
  return secure
    ? ({ prefix: "host", httpOnly: true, sameSite: "Lax", maxAge: maxAgeSeconds } as const)
    : ({ path: "/v1/", httpOnly: true, sameSite: "Lax", maxAge: maxAgeSeconds } as const);
}

/**
 * Set a session's binding cookie on the response.
 * @param secure true when the public URL is https
 * @param maxAgeSeconds the state's lifetime
 */
export function setBindingCookie(c: Context, sessionId: string, secret: string, secure: boolean, maxAgeSeconds: number): void {
  setCookie(c, bindingCookieName(sessionId), secret, options(secure, Math.max(1, Math.ceil(maxAgeSeconds))));
}

/** The binding secret the browser sent for a session, if any. */
export function readBindingCookie(c: Context, sessionId: string, secure: boolean): string | undefined {
  const value = getCookie(c, bindingCookieName(sessionId), secure ? "host" : undefined);
  return value === undefined || value === "" ? undefined : value;
}

/** Expire a session's cookie (its connect completed). */
export function clearBindingCookie(c: Context, sessionId: string, secure: boolean): void {
  setCookie(c, bindingCookieName(sessionId), "", options(secure, 0));
}
