/**
 * The browser-facing half of the connect flow: `GET /v1/connect/{providerId}`
 * (302 to the authorization endpoint) and `GET /v1/oauth/callback`.
 */
import { Hono, type Context } from "hono";
import { html } from "hono/html";
import { z } from "zod";
import type { Grantkeeper } from "../../grantkeeper.js";
import { verifyConnectToken } from "../../lifecycle/connectToken.js";
import { isGrantkeeperError, ErrorCode, invalidInput } from "../../domain/errors.js";
import { hasApiKey, publicRoute, unauthorized } from "../auth.js";
import { STATUS_BY_KIND } from "../problem.js";
import { queryParams } from "../validation.js";

const connectQuery = z
  .object({
    entityId: z.string().min(1).max(256).optional(),
    returnTo: z.string().max(2048).optional(),
    scope: z.string().max(2048).optional(),
    connectToken: z.string().max(4096).optional(),
  })
  .strict();

function wantsHtml(c: Context): boolean {
  return (c.req.header("accept") ?? "").includes("text/html");
}

function page(title: string, message: string) {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.3rem}</style>
</head><body><h1>${title}</h1><p>${message}</p></body></html>`;
}

/**
 * Routes mounted at `/v1`. Both are public routes: the connect link is
 * authenticated by its signed `connectToken` (or, for server-side use, the
 * API key checked here), the callback by its single-use `state`.
 * @param opts.apiKeys the valid API keys, for `GET /v1/connect/{providerId}` without a connect token
 */
export function oauthRoutes(gk: Grantkeeper, opts: { apiKeys: readonly string[] }): Hono {
  const app = new Hono();

  app.get("/connect/:providerId", publicRoute(async (c: Context) => {
    const providerId = c.req.param("providerId")!;
    const q = queryParams(c, connectQuery);
    if (q.connectToken === undefined && !hasApiKey(c, opts.apiKeys)) throw unauthorized();
    let entityId = q.entityId;
    let returnTo = q.returnTo;
    if (q.connectToken !== undefined) {
      const claims = verifyConnectToken(gk.connectKey, q.connectToken, providerId, gk.clock.now());
      entityId = claims.entityId;
      returnTo = claims.returnTo;
    }
    if (entityId === undefined) throw invalidInput([{ path: "entityId", message: "required" }]);
    const scopes = q.scope ? q.scope.split(/[ ,]+/).filter(Boolean) : undefined;
    const { url } = await gk.authorization.begin(providerId, entityId, { ...(returnTo ? { returnTo } : {}), ...(scopes ? { scopes } : {}) });
    c.header("cache-control", "no-store");
    return c.redirect(url, 302);
  }));

  app.get("/oauth/callback", publicRoute(async (c: Context) => {
    const query = new URL(c.req.url).searchParams;
    try {
      const r = await gk.authorization.complete(query);
      c.header("cache-control", "no-store");
      if (r.returnTo) {
        const to = new URL(r.returnTo);
        to.searchParams.set("connectionId", r.connection.id);
        to.searchParams.set("status", "connected");
        return c.redirect(to.toString(), 302);
      }
      if (!wantsHtml(c)) return c.json({ status: "connected", connection: r.connection });
      return c.html(page("Connected", `Your ${r.connection.providerId} account is connected. You can close this window.`));
    } catch (e) {
      if (!isGrantkeeperError(e)) throw e;
      const returnTo = e.details.returnTo;
      if (typeof returnTo === "string") {
        const to = new URL(returnTo);
        to.searchParams.set("status", "error");
        to.searchParams.set("error", e.code);
        return c.redirect(to.toString(), 302);
      }
      if (!wantsHtml(c)) throw e;
      // Written for the person in the browser: no codes from the provider, no stack, no JSON.
      const message = e.code === ErrorCode.invalidState ? "This sign-in link has expired or was already used. Please start connecting again." : "The connection could not be completed. Please try again.";
      return c.html(page("Connection not completed", message), STATUS_BY_KIND[e.kind] as 400);
    }
  }));

  return app;
}
