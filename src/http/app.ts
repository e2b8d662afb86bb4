/**
 * The HTTP application: health, readiness, the `/v1` API behind a bearer
 * key, and one central RFC 9457 error handler.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Grantkeeper } from "../grantkeeper.js";
import { isReachable } from "../store/database.js";
import { pendingMigrations } from "../store/migrations.js";
import { requireApiKey } from "./auth.js";
import { openApiDocument } from "./openapi.js";
import { isProblemError, ProblemError } from "./problem.js";
import { connectionRoutes } from "./routes/connections.js";
import { isConnectWithToken, oauthRoutes } from "./routes/oauth.js";
import { catalogueRoutes, providerRoutes } from "./routes/providers.js";
import { integrationRoutes, preflightRoutes } from "./routes/integrations.js";
import { jobRoutes, replayRoutes, webhookRoutes } from "./routes/jobs.js";
import { alertRoutes } from "./routes/alerts.js";
import { proxyRoutes } from "./routes/proxy.js";

/** Options of {@link createApp}. */
export interface AppOptions {
  /** Bearer key required on `/v1` (except the callback, webhooks and signed connect links). */
  apiKey: string;
  /** Largest accepted JSON body, bytes. @defaultValue 1 048 576 */
  maxBodyBytes?: number;
}

/**
 * 413, answered before the body was read: the connection is closed, or a
 * client reusing it would send its next request into the unread rest.
 */
function tooLarge(options: AppOptions): ProblemError {
  return new ProblemError(413, "payload_too_large", "Payload too large", `bodies are limited to ${options.maxBodyBytes ?? 1_048_576} bytes`, { headers: { connection: "close" } });
}

function isPublicRoute(method: string, path: string, query: URLSearchParams): boolean {
  if (!path.startsWith("/v1/")) return true;
  if (method === "GET" && path === "/v1/oauth/callback") return true;
  if (method === "POST" && path.startsWith("/v1/webhooks/")) return true;
  return isConnectWithToken(method, path, query);
}

/**
 * Build the Hono app over a {@link Grantkeeper}. Test it in process with
 * `app.request()` or serve it with {@link ./server.ts}.
 */
export function createApp(gk: Grantkeeper, options: AppOptions): Hono {
  const app = new Hono();
  const log = gk.logger;

  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    // Path only: queries may carry `code` and `state`.
    log.info({ method: c.req.method, path: new URL(c.req.url).pathname, status: c.res.status, durationMs: Math.round(performance.now() - t0) }, "http request");
  });

  app.onError((err, c) => {
    if (isProblemError(err)) return err.toResponse();
    const status = (err as { status?: number }).status;
    if (status === 413) return tooLarge(options).toResponse();
    log.error({ path: new URL(c.req.url).pathname, err: { name: err.name, message: err.message, stack: err.stack } }, "unhandled error");
    return new ProblemError(500, "internal_error", "Internal error", "an unexpected error occurred; it has been logged").toResponse();
  });

  app.notFound((c) => new ProblemError(404, "not_found", "Not found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`).toResponse());

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const reachable = await isReachable(gk.store);
    const pending = reachable ? await pendingMigrations(gk.store).catch(() => ["(unknown)"]) : ["(unknown)"];
    const ok = reachable && pending.length === 0;
    return c.json({ status: ok ? "ready" : "not_ready", store: reachable ? "reachable" : "unreachable", pendingMigrations: pending }, ok ? 200 : 503);
  });
  app.get("/openapi.json", (c) => c.json(openApiDocument()));
  // Unauthenticated like /healthz, for scrapers: counts and states only, no ids or secrets in any label.
  app.get("/metrics", async () => new Response(await gk.telemetry.metrics.render(), { headers: { "content-type": gk.telemetry.metrics.contentType } }));

  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: options.maxBodyBytes ?? 1_048_576,
      onError: () => {
        throw tooLarge(options);
      },
    }),
  );
  app.use("/v1/*", requireApiKey(options.apiKey, isPublicRoute));
  app.route("/v1/providers", providerRoutes(gk));
  app.route("/v1/catalogue", catalogueRoutes());
  app.route("/v1/connections", connectionRoutes(gk));
  app.route("/v1/integrations", replayRoutes(gk));
  app.route("/v1/integrations", integrationRoutes(gk));
  app.route("/v1/webhooks", webhookRoutes(gk));
  app.route("/v1/jobs", jobRoutes(gk));
  app.route("/v1/alerts", alertRoutes(gk));
  app.route("/v1/proxy", proxyRoutes(gk));
  app.route("/v1/preflight", preflightRoutes(gk));
  app.route("/v1", oauthRoutes(gk));
  return app;
}
