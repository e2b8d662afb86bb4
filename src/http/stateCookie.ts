/**
 * The cookie that binds an OAuth `state` to the browser that opened a connect
 * link (RFC 9700 §4.7.1). One cookie per flow, named after a hash of its
 * state, so several flows in one browser (two tabs, two providers) do not
 * overwrite each other's binding, and the callback knows which cookie to read.
 *
 * - `HttpOnly`: no script reads it;
 * - `SameSite=Lax`: the callback is a top-level cross-site GET from the
 *   provider, which Lax still carries (Strict would not);
 * - on an https public URL: `Secure` and the `__Host-` prefix (no `Domain`,
 *   `Path=/`), so a sibling subdomain cannot plant one;
 * - on plain http (loopback development): `Path=/v1/oauth/callback`, sent
 *   nowhere else;
 * - `Max-Age` = the state's lifetime; the callback clears it.
 */
import { createHash } from "node:crypto";
import type { Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";

const CALLBACK_PATH = "/v1/oauth/callback";

/** The cookie's name for a state, without the `__Host-` prefix. */
export function stateCookieName(state: string): string {
  return `gk_state_${createHash("sha256").update(state).digest("hex").slice(0, 16)}`;
}

function options(secure: boolean, maxAgeSeconds: number) {
  return secure
    ? ({ prefix: "host", httpOnly: true, sameSite: "Lax", maxAge: maxAgeSeconds } as const)
    : ({ path: CALLBACK_PATH, httpOnly: true, sameSite: "Lax", maxAge: maxAgeSeconds } as const);
}

/**
 * Set the binding cookie of a flow on the response.
 * @param secure true when the public URL is https
 * @param maxAgeSeconds the state's lifetime
 */
export function setStateCookie(c: Context, state: string, bindingSecret: string, secure: boolean, maxAgeSeconds: number): void {
  setCookie(c, stateCookieName(state), bindingSecret, options(secure, Math.max(1, Math.ceil(maxAgeSeconds))));
}

/** The binding secret the browser sent for this state, if any. */
export function readStateCookie(c: Context, state: string, secure: boolean): string | undefined {
  const value = getCookie(c, stateCookieName(state), secure ? "host" : undefined);
  return value === undefined || value === "" ? undefined : value;
}

/** Expire the flow's cookie (the callback used it, whatever the outcome). */
export function clearStateCookie(c: Context, state: string, secure: boolean): void {
  setCookie(c, stateCookieName(state), "", options(secure, 0));
}
