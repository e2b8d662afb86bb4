/**
 * The browser-facing half of the connect flow: the connect link
 * `GET /v1/connect/{providerId}` (302 to the authorization endpoint, binding
 * cookie set) and the redirect endpoint `GET /v1/oauth/callback`.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import type { Grantkeeper } from "../../grantkeeper.js";
import { isGrantkeeperError, invalidInput, type GrantkeeperError } from "../../domain/errors.js";
import { scopeSchema } from "../../lifecycle/connectSessions.js";
import { hasApiKey, publicRoute, unauthorized } from "../auth.js";
import { endUserPage, outcomeOf } from "../endUserPage.js";
import { problemOf } from "../problem.js";
import { clearBindingCookie, readBindingCookie, setBindingCookie } from "../bindingCookie.js";
import { queryParams } from "../validation.js";

/** Query of the keyed, server-side form. */
export const serverSideQuery = z
  .object({
    entityId: z.string().min(1).max(256).optional(),
    returnTo: z.string().max(2048).optional(),
    scope: z.string().max(2048).optional(),
  })
  .strict();

function wantsHtml(c: Context): boolean {
  return (c.req.header("accept") ?? "").includes("text/html");
}

/** The problem+json answer of `e`, keeping the headers already set on `c` (a cookie being cleared). */
function problemResponse(c: Context, e: GrantkeeperError): Response {
  const p = problemOf(e);
  return c.body(JSON.stringify(p.toBody()), p.status as 400, { ...p.headers, "content-type": "application/problem+json" });
}

/** Send the browser back to the host app with the outcome in the query: `status=connected|error`, a stable `error` code, its `reason`. */
function backToHost(c: Context, returnTo: string, params: Record<string, string | undefined>): Response {
  const to = new URL(returnTo);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) to.searchParams.set(k, v);
  return c.redirect(to.toString(), 302);
}

const detail = (e: GrantkeeperError, key: string) => (typeof e.details[key] === "string" ? (e.details[key] as string) : undefined);

/**
 * Routes mounted at `/v1`. Both are public routes: the connect link is
 * authenticated by its session's `connectToken` (or, for server-side use,
 * the API key checked here), the callback by its single-use `state` and the
 * browser-binding cookie.
 * @param opts.apiKeys the valid API keys, for `GET /v1/connect/{providerId}` without a connect token
 */
export function oauthRoutes(gk: Grantkeeper, opts: { apiKeys: readonly string[] }): Hono {
  const app = new Hono();
  const secureCookies = gk.authorization.redirectUri.startsWith("https:");
  const providerName = async (id: string) => (await gk.providers.get(id).catch(() => undefined))?.displayName;

  app.get("/connect/:providerId", publicRoute(async (c: Context) => {
    const providerId = c.req.param("providerId")!;
    c.header("cache-control", "no-store");
    c.header("referrer-policy", "no-referrer");
    const tokens = c.req.queries("connectToken");
    if (tokens === undefined) {
      // Server-side use with the key: mint a session and go through its link, so the flow is bound to the browser that follows it.
      if (!hasApiKey(c, opts.apiKeys)) throw unauthorized();
      const q = queryParams(c, serverSideQuery);
      if (q.entityId === undefined) throw invalidInput([{ path: "entityId", message: "required" }]);
      const scopes = q.scope?.split(/[ ,]+/).filter(Boolean);
      if (scopes) for (const s of scopes) if (!scopeSchema.safeParse(s).success) throw invalidInput([{ path: "scope", message: "scope tokens (RFC 6749 §3.3), separated by spaces or commas" }]);
      const session = await gk.connectSessions.create({ providerId, entityId: q.entityId, returnTo: q.returnTo, scopes });
      return c.redirect(session.connectUrl, 302);
    }
    // A link: the session decides entity, scopes and returnTo; every other query parameter (scope, entityId, a
    // mail client's utm_…) is ignored. Two tokens are one too many.
    let flow;
    try {
      const session = await gk.connectSessions.open(providerId, tokens.length === 1 ? tokens[0]! : "");
      flow = await gk.authorization.begin(session, readBindingCookie(c, session.id, secureCookies));
    } catch (e) {
      if (!isGrantkeeperError(e) || !wantsHtml(c)) throw e;
      return endUserPage(c, outcomeOf(e), await providerName(providerId), problemOf(e).status);
    }
    setBindingCookie(c, flow.sessionId, flow.bindingSecret, secureCookies, gk.authorization.stateTtlMs / 1000);
    return c.redirect(flow.url, 302);
  }));

  app.get("/oauth/callback", publicRoute(async (c: Context) => {
    const query = new URL(c.req.url).searchParams;
    c.header("cache-control", "no-store");
    c.header("referrer-policy", "no-referrer");
    try {
      const r = await gk.authorization.complete(query, (sessionId) => readBindingCookie(c, sessionId, secureCookies));
      clearBindingCookie(c, r.sessionId, secureCookies);
      if (r.returnTo) return backToHost(c, r.returnTo, { status: "connected", connectionId: r.connection.id });
      if (!wantsHtml(c)) return c.json({ status: "connected", connection: r.connection });
      return endUserPage(c, "connected", await providerName(r.connection.providerId), 200);
    } catch (e) {
      if (!isGrantkeeperError(e)) throw e;
      const returnTo = detail(e, "returnTo");
      if (returnTo !== undefined) return backToHost(c, returnTo, { status: "error", error: e.code, reason: detail(e, "reason"), providerError: detail(e, "providerError") });
      if (!wantsHtml(c)) return problemResponse(c, e);
      // Written for the person in the browser: no codes, no provider text, no stack, no JSON.
      return endUserPage(c, outcomeOf(e), undefined, problemOf(e).status);
    }
  }));

  return app;
}
