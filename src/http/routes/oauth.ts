/**
 * The browser-facing half of the connect flow: `GET /v1/connect/{providerId}`
 * (302 to the authorization endpoint) and `GET /v1/oauth/callback`.
 */
import { Hono, type Context } from "hono";
import { html } from "hono/html";
import { z } from "zod";
import type { Grantkeeper } from "../../grantkeeper.js";
import { verifyConnectToken } from "../../lifecycle/connectToken.js";
import { isProblemError, ProblemError } from "../problem.js";
import { queryParams } from "../validation.js";

const connectQuery = z
  .object({
    entityId: z.string().min(1).max(256).optional(),
    returnTo: z.string().max(2048).optional(),
    scope: z.string().max(2048).optional(),
    connectToken: z.string().max(4096).optional(),
  })
  .strict();

/** True when a `/v1/connect` request carries a connect token (then it needs no API key; the token is verified in the route). */
export function isConnectWithToken(method: string, path: string, query: URLSearchParams): boolean {
  return method === "GET" && path.startsWith("/v1/connect/") && query.has("connectToken");
}

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

/** Routes mounted at `/v1`. */
export function oauthRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();

  app.get("/connect/:providerId", async (c) => {
    const providerId = c.req.param("providerId");
    const q = queryParams(c, connectQuery);
    let entityId = q.entityId;
    let returnTo = q.returnTo;
    if (q.connectToken !== undefined) {
      const claims = verifyConnectToken(gk.connectKey, q.connectToken, providerId, gk.clock.now());
      entityId = claims.entityId;
      returnTo = claims.returnTo;
    }
    if (entityId === undefined) throw new ProblemError(422, "validation_failed", "Request validation failed", "entityId is required", { errors: [{ path: "entityId", message: "required" }] });
    const scopes = q.scope ? q.scope.split(/[ ,]+/).filter(Boolean) : undefined;
    const { url } = await gk.authorization.begin(providerId, entityId, { ...(returnTo ? { returnTo } : {}), ...(scopes ? { scopes } : {}) });
    c.header("cache-control", "no-store");
    return c.redirect(url, 302);
  });

  app.get("/oauth/callback", async (c) => {
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
      if (!isProblemError(e)) throw e;
      const returnTo = e.extra.members?.returnTo;
      if (typeof returnTo === "string") {
        const to = new URL(returnTo);
        to.searchParams.set("status", "error");
        to.searchParams.set("error", e.code);
        return c.redirect(to.toString(), 302);
      }
      if (!wantsHtml(c)) throw e;
      // Written for the person in the browser: no codes from the provider, no stack, no JSON.
      const message = e.code === "invalid_state" ? "This sign-in link has expired or was already used. Please start connecting again." : "The connection could not be completed. Please try again.";
      return c.html(page("Connection not completed", message), e.status as 400);
    }
  });

  return app;
}
