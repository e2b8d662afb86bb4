/**
 * `ANY /v1/proxy/{connectionId}/{path}`: the provider's API at `apiBaseUrl`
 * + path, called with the connection's fresh token through the core's
 * `authorizedFetch` (the same as a handler's `ctx.fetch`): confined under
 * `apiBaseUrl`'s path, API methods only, hop-by-hop headers and credentials
 * dropped both ways, bodies streamed, redirects passed back, an auth failure
 * refreshed once and retried once, `proxy.timeoutSeconds` → 504.
 *
 * Answers are the provider's, not grantkeeper's: they are marked
 * `X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`,
 * so a provider's HTML or SVG opened in a browser on grantkeeper's origin
 * runs no script there and is not sniffed into something executable.
 */
import type { IncomingMessage } from "node:http";
import { Hono, type Context } from "hono";
import type { Grantkeeper } from "../../grantkeeper.js";
import { toWebResponse } from "../../lifecycle/api/authorizedFetch.js";
import { apiMethod } from "../../lifecycle/api/target.js";

/** Headers added to every proxied answer. */
export const PROXIED_ANSWER_HEADERS: Array<[string, string]> = [
  ["x-content-type-options", "nosniff"],
  ["content-security-policy", "sandbox"],
];

const PREFIX = "/v1/proxy/";

/** Routes mounted at `/v1/proxy`. */
export function proxyRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();
  const handler = async (c: Context) => {
    // Before anything is read: TRACE, CONNECT & co. are 405 with Allow.
    apiMethod(c.req.method);
    // The path is canonical here (refused before routing otherwise), so the raw path is the one the router matched.
    const { pathname, search } = new URL(c.req.url);
    const afterPrefix = pathname.slice(PREFIX.length);
    const slash = afterPrefix.indexOf("/");
    const rest = slash === -1 ? "" : afterPrefix.slice(slash + 1);
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const declared = c.req.header("content-length");
    // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 §6.3): none is sent on either.
    const hasBody = declared !== undefined || c.req.header("transfer-encoding") !== undefined;
    const signal = incoming ? c.req.raw.signal : undefined;
    const answer = await gk.api.authorizedFetch({
      connectionId: c.req.param("connectionId")!,
      method: c.req.method,
      path: rest,
      search,
      headers: c.req.raw.headers,
      body: hasBody ? c.req.raw.body : null,
      ...(declared !== undefined && /^\d{1,15}$/.test(declared) ? { contentLength: Number(declared) } : {}),
      // The client going away cancels the provider call too.
      ...(signal ? { signal } : {}),
      caller: "proxy",
    }).catch((e: unknown) => {
      if (!signal?.aborted) throw e;
      // Nobody is left to answer: not an error of grantkeeper's (any client could flood the error log with these).
      gk.logger.debug({ connectionId: c.req.param("connectionId"), method: c.req.method }, "proxy client went away before the provider answered");
      return undefined;
    });
    // 499: "client closed request", for the request log only.
    if (!answer) return new Response(null, { status: 499 });
    return toWebResponse(answer, PROXIED_ANSWER_HEADERS);
  };
  app.all("/:connectionId", handler);
  app.all("/:connectionId/*", handler);
  return app;
}
