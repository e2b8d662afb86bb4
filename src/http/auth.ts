/**
 * Bearer API key check for `/v1`, in constant time (SHA-256 both sides, then
 * `timingSafeEqual`, so neither content nor length leaks through timing).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ProblemError } from "./problem.js";

/** True when `given` equals `expected`, compared in constant time. */
export function constantTimeEquals(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Middleware requiring `Authorization: Bearer <apiKey>`, except where `isPublic` says so.
 * @throws {@link ProblemError} 401 `unauthorized` with `WWW-Authenticate: Bearer`
 */
export function requireApiKey(apiKey: string, isPublic: (method: string, path: string, query: URLSearchParams) => boolean): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url);
    if (isPublic(c.req.method, url.pathname, url.searchParams)) return next();
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m || !constantTimeEquals(m[1]!.trim(), apiKey)) {
      throw new ProblemError(401, "unauthorized", "Unauthorized", "send Authorization: Bearer <GRANTKEEPER_API_KEY>", {
        headers: { "www-authenticate": 'Bearer realm="grantkeeper"' },
      });
    }
    return next();
  };
}
