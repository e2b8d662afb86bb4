/**
 * The API-key gate (api-contract.md v1.1): deny by default.
 *
 * Every route needs `Authorization: Bearer <key>` unless its handler was
 * registered through {@link publicRoute}. The decision is taken on the routes
 * the router matched for this request — never on a path string — so no
 * spelling of a path can reach a handler the router would not also have
 * matched for the canonical spelling (the `/%761/connections` bypass compared
 * raw `URL.pathname` prefixes). A path nobody registered answers 401 without
 * a key: routes are not enumerable anonymously.
 *
 * Keys are compared in constant time (SHA-256 of both sides, then
 * `timingSafeEqual`, so neither content nor length leaks through timing);
 * several keys may be valid at once (rotation without downtime).
 */
import { hash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { ProblemError } from "./problem.js";

/** SHA-256 of a string's UTF-8 bytes, one shot (no `Hash` object per request). */
function sha256(text: string): Buffer {
  return hash("sha256", text, "buffer");
}

/** True when `given` equals `expected`, compared in constant time. */
export function constantTimeEquals(given: string, expected: string): boolean {
  const a = sha256(given);
  const b = sha256(expected);
  return timingSafeEqual(a, b);
}

/** SHA-256 digests of the valid keys, computed once per key list (the gate runs on every request). */
const keyDigests = new WeakMap<readonly string[], Buffer[]>();

/**
 * True when `given` equals one of `keys`: the given key is hashed, then compared with every key's digest
 * (computed once per key list) in constant time, every key compared (no early exit), so timing tells neither
 * which one matched nor how many there are.
 */
export function matchesAnyKey(given: string, keys: readonly string[]): boolean {
  let digests = keyDigests.get(keys);
  if (!digests) {
    digests = keys.map(sha256);
    keyDigests.set(keys, digests);
  }
  const a = sha256(given);
  let ok = false;
  for (const d of digests) ok = timingSafeEqual(a, d) || ok;
  return ok;
}

/**
 * Split `GRANTKEEPER_API_KEY` into its keys: comma-separated, blanks ignored.
 * @throws RangeError when no key is left (an empty key list would lock everyone out, or worse, be compared with "")
 */
export function parseApiKeys(value: string | readonly string[]): string[] {
  const keys = (typeof value === "string" ? value.split(",") : [...value]).map((k) => k.trim()).filter(Boolean);
  if (keys.length === 0) throw new RangeError("at least one API key is required");
  return keys;
}

/**
 * Keys shorter than this many characters are reported when `grantkeeper
 * serve` starts: nothing limits failed key checks (a client that expects 401
 * keeps getting 401), so a short key can be guessed online. A generated key
 * is `gk_` + 24 random bytes in base64url, 35 characters.
 * @defaultValue 24
 */
export const MIN_API_KEY_LENGTH = 24;

/**
 * The keys of a list that are shorter than {@link MIN_API_KEY_LENGTH}, by
 * position — never the key itself, which is a secret and must not reach a log.
 * @param keys the valid keys ({@link parseApiKeys})
 * @returns for each short key its 1-based position in the list and its length in characters
 */
export function shortApiKeys(keys: readonly string[]): Array<{ position: number; length: number }> {
  return keys.flatMap((k, i) => (k.length < MIN_API_KEY_LENGTH ? [{ position: i + 1, length: k.length }] : []));
}

const PUBLIC = Symbol.for("grantkeeper.publicRoute");
/** hono wraps a sub-app's handler when that sub-app has its own error handler, keeping the original here. */
const COMPOSED_HANDLER = "__COMPOSED_HANDLER";

type Marked = { [PUBLIC]?: true; [COMPOSED_HANDLER]?: Marked };

/**
 * Mark a route handler as public: the gate lets requests through to it
 * without the API key. The handler then authenticates the caller itself
 * (a webhook signature, a single-use `state`, a signed connect link) or
 * serves nothing secret (`/healthz`). Keep the list short; docs/security.md
 * lists every public route.
 */
export function publicRoute<H extends (...args: any[]) => unknown>(handler: H): H {
  (handler as unknown as Marked)[PUBLIC] = true;
  return handler;
}

const SESSION = Symbol.for("grantkeeper.sessionRoute");
const SESSION_OR_KEY = Symbol.for("grantkeeper.sessionOrKeyRoute");
type SessionMarked = { [SESSION]?: true; [SESSION_OR_KEY]?: true; [COMPOSED_HANDLER]?: SessionMarked };

/**
 * Mark a dashboard route handler: the gate lets a request through to it only
 * with a valid dashboard session (signed cookie, src/http/dashboard/session.ts)
 * — never with nothing, and not with a bearer key either (the dashboard's
 * forms are CSRF-checked against the session). Unmarked handlers keep
 * needing the key.
 * @param options.orApiKey also open to the bearer key (a read-only page both an API client and the dashboard
 *   link to, such as `GET /reference`); without either it answers the key's 401, not the sign-in redirect
 */
export function sessionRoute<H extends (...args: any[]) => unknown>(handler: H, options: { orApiKey?: boolean } = {}): H {
  (handler as unknown as SessionMarked)[SESSION] = true;
  if (options.orApiKey) (handler as unknown as SessionMarked)[SESSION_OR_KEY] = true;
  return handler;
}

/** True when a handler (or the handler hono wrapped) was marked by {@link sessionRoute}. */
export function isSessionHandler(handler: unknown): boolean {
  const h = handler as SessionMarked | undefined;
  return h?.[SESSION] === true || h?.[COMPOSED_HANDLER]?.[SESSION] === true;
}

/** True when a {@link sessionRoute} handler also takes the bearer key (`orApiKey`). */
export function isSessionOrKeyHandler(handler: unknown): boolean {
  const h = handler as SessionMarked | undefined;
  return h?.[SESSION_OR_KEY] === true || h?.[COMPOSED_HANDLER]?.[SESSION_OR_KEY] === true;
}

/** How the gate admits {@link sessionRoute} handlers. */
export interface SessionGate {
  /** True when the request carries a valid, not signed-out dashboard session (it may remember it on the context). */
  admit(c: Context): Promise<boolean>;
  /** The answer without one (a redirect to the sign-in page for a GET, a 401 page otherwise). */
  refuse(c: Context): Response | Promise<Response>;
}

/** True when a handler (or the handler hono wrapped) was marked by {@link publicRoute}. */
export function isPublicHandler(handler: unknown): boolean {
  const h = handler as Marked | undefined;
  return h?.[PUBLIC] === true || h?.[COMPOSED_HANDLER]?.[PUBLIC] === true;
}

/** The 401 of a missing or wrong key. */
export function unauthorized(): ProblemError {
  return new ProblemError(401, "unauthorized", "Unauthorized", "send Authorization: Bearer <GRANTKEEPER_API_KEY>", {
    headers: { "www-authenticate": 'Bearer realm="grantkeeper"' },
  });
}

/** True when the request carries one of `keys` as a bearer token. */
export function hasApiKey(c: Context, keys: readonly string[]): boolean {
  return authorizationHasKey(c.req.header("authorization"), keys);
}

/** True when an `Authorization` header value is `Bearer <one of keys>` (compared in constant time). */
export function authorizationHasKey(authorization: string | undefined, keys: readonly string[]): boolean {
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorization ?? "");
  return m !== null && matchesAnyKey(m[1]!, keys);
}

/**
 * The gate. Register it with `app.use("*", …)` before every route: it lets a
 * request through without a key only when every route the router matched
 * after it is a {@link publicRoute} handler — so a public handler that shares
 * a path with a protected one never opens the protected one.
 *
 * When every route matched after it is a {@link sessionRoute} handler, the
 * request needs a dashboard session instead ({@link SessionGate}) — or, when
 * every one of them was marked `orApiKey`, the session or the key; a mix of
 * session and key routes needs the key.
 * @param keys the valid API keys (see {@link parseApiKeys})
 * @param session how dashboard routes are admitted; without it they are refused like any keyless request
 * @throws {@link ProblemError} 401 `unauthorized` with `WWW-Authenticate: Bearer`
 */
export function apiKeyGate(keys: readonly string[], session?: SessionGate): MiddlewareHandler {
  return async (c, next) => {
    const after = matchedRoutes(c).slice(c.req.routeIndex + 1);
    const allPublic = after.length > 0 && after.every((r) => isPublicHandler(r.handler));
    if (allPublic) return next();
    const allSession = after.length > 0 && after.every((r) => isSessionHandler(r.handler));
    if (allSession) {
      if (session && (await session.admit(c))) return next();
      if (after.every((r) => isSessionOrKeyHandler(r.handler))) {
        if (hasApiKey(c, keys)) return next();
        throw unauthorized();
      }
      if (session) return session.refuse(c);
      throw unauthorized();
    }
    if (!hasApiKey(c, keys)) throw unauthorized();
    return next();
  };
}
