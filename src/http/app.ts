/**
 * The HTTP application: health, readiness, the `/v1` API behind the API-key
 * gate (deny by default), and one central RFC 9457 error handler.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Grantkeeper } from "../grantkeeper.js";
import { apiKeyGate, parseApiKeys, publicRoute, sessionRoute } from "./auth.js";
import { nonCanonicalReason, rawPathOf } from "./canonicalPath.js";
import { openApiDocument } from "./openapi.js";
import { referencePage } from "./reference.js";
import { apiFastPath, attachFastPath, declaresBody } from "./fastPaths.js";
import { ProblemError, toProblem } from "./problem.js";
import { connectionRoutes } from "./routes/connections.js";
import { connectSessionRoutes } from "./routes/connectSessions.js";
import { oauthRoutes } from "./routes/oauth.js";
import { catalogueRoutes, providerRoutes } from "./routes/providers.js";
import { integrationRoutes, preflightRoutes } from "./routes/integrations.js";
import { jobRoutes, replayRoutes, webhookRoutes } from "./routes/jobs.js";
import { alertRoutes } from "./routes/alerts.js";
import { dashboardRoutes, dashboardSessionGate } from "./dashboard/routes.js";
import { SessionSigner } from "./dashboard/session.js";
import { proxyRoutes } from "./routes/proxy.js";
import { logAccess } from "../telemetry/logger.js";

/** Options of {@link createApp}. */
export interface AppOptions {
  /**
   * Bearer key(s) required on every route that is not explicitly public; a
   * comma-separated string (as in `GRANTKEEPER_API_KEY`) or a list: all are
   * valid at once, so a key can be rotated without downtime.
   */
  apiKey: string | readonly string[];
  /** Largest accepted JSON body, bytes. @defaultValue 1 048 576 */
  maxBodyBytes?: number;
  /**
   * Secret (≥ 32 bytes) that signs dashboard session cookies and CSRF tokens.
   * `grantkeeper serve` derives it from the encryption key (HKDF), so every
   * instance accepts the others' sessions and a restart keeps them.
   * @defaultValue 32 random bytes per process (sessions end when it stops)
   */
  sessionSecret?: Buffer;
}

/**
 * 413, answered before the whole body was read. The server reads and
 * discards the rest, bounded, before the connection is reused or cut
 * (lingering close, src/http/server.ts): closing at once would reset the
 * connection and the client would never read this answer.
 */
function tooLarge(options: AppOptions): ProblemError {
  return new ProblemError(413, "payload_too_large", "Payload too large", `bodies are limited to ${options.maxBodyBytes ?? 1_048_576} bytes`);
}

/**
 * True when `err` is the client going away mid-request (a connection reset
 * while its body was read), decided on the connection's state and Node's
 * error code, never on a message.
 */
function clientWentAway(c: Context, err: Error): boolean {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming) return c.req.raw.signal.aborted;
  return (err as { code?: unknown }).code === "ECONNRESET" && incoming.destroyed && !incoming.complete;
}

/**
 * True when the request declares a body ({@link declaresBody}), read from Node's headers when served by
 * @hono/node-server (no web `Request` is built for it), else from the Request.
 */
function requestDeclaresBody(c: Context): boolean {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming ? declaresBody(incoming.headers) : c.req.raw.body !== null;
}

/** The request target exactly as the client sent it: Node's raw `url` when served by @hono/node-server, else the Request's URL. */
function rawTarget(c: Context): string {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.url ?? c.req.url;
}

/**
 * Build the Hono app over a {@link Grantkeeper}. Test it in process with
 * `app.request()` or serve it with {@link ./server.ts}.
 *
 * Order matters and is fixed here: (1) non-canonical paths are refused
 * before anything reads the path, (2) the request log, (3) body limits,
 * (4) the API-key gate, deciding on the routes the router matched, (5) the
 * routes. Only handlers wrapped in {@link publicRoute} answer without a key;
 * the dashboard's {@link sessionRoute} handlers (src/http/dashboard) answer
 * only with a dashboard session cookie.
 */
export function createApp(gk: Grantkeeper, options: AppOptions): Hono {
  const app = new Hono();
  const log = gk.logger;
  const apiKeys = parseApiKeys(options.apiKey);

  app.use("*", async (c, next) => {
    const reason = nonCanonicalReason(rawPathOf(rawTarget(c)));
    if (reason) throw new ProblemError(400, "non_canonical_path", "Non-canonical path", `the request path is not in canonical form (${reason.replaceAll("_", " ")}); send it without percent-encoded unreserved characters, encoded slashes, dot segments or empty segments`, { members: { reason } });
    return next();
  });

  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    // Path only: queries may carry `code` and `state`.
    logAccess(log, { method: c.req.method, path: rawPathOf(rawTarget(c)), status: c.res.status, durationMs: Math.round(performance.now() - t0) });
  });

  app.onError((err, c) => {
    const problem = toProblem(err);
    if (problem) return problem.toResponse();
    const status = (err as { status?: number }).status;
    if (status === 413) return tooLarge(options).toResponse();
    if (clientWentAway(c, err)) {
      // Nobody is left to answer, and any client can do this: debug, no stack (issue 10 item 6).
      log.debug({ method: c.req.method, path: new URL(c.req.url).pathname }, "client closed the connection before its request was read");
      return new ProblemError(400, "client_closed_request", "Client closed request", "the connection closed before the request was read").toResponse();
    }
    log.error({ path: new URL(c.req.url).pathname, err: { name: err.name, message: err.message, stack: err.stack } }, "unhandled error");
    return new ProblemError(500, "internal_error", "Internal error", "an unexpected error occurred; it has been logged").toResponse();
  });

  app.notFound((c) => new ProblemError(404, "not_found", "Not found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`).toResponse());

  const limitBody = bodyLimit({
    maxSize: options.maxBodyBytes ?? 1_048_576,
    onError: () => {
      throw tooLarge(options);
    },
  });
  // The proxy streams bodies through and never holds one whole; every other route reads its body into memory.
  // A request that declares no body has none (RFC 9112 §6.3): nothing to limit, and no web Request to build for it.
  app.use("/v1/*", (c, next) => (c.req.path.startsWith("/v1/proxy/") || !requestDeclaresBody(c) ? next() : limitBody(c, next)));
  app.use("/dashboard/*", (c, next) => (!requestDeclaresBody(c) ? next() : limitBody(c, next)));
  // Deny by default: from here on, only publicRoute handlers answer without a key, and sessionRoute handlers (the
  // dashboard) only with a dashboard session.
  const signer = new SessionSigner(options.sessionSecret ?? randomBytes(32), apiKeys, gk.clock);
  app.use("*", apiKeyGate(apiKeys, dashboardSessionGate(gk, signer)));

  app.get("/healthz", publicRoute((c: Context) => c.json({ status: "ok" })));
  app.get(
    "/readyz",
    publicRoute(async (c: Context) => {
      const { reachable, pendingMigrations } = await gk.health();
      const ok = reachable && pendingMigrations.length === 0;
      return c.json({ status: ok ? "ready" : "not_ready", store: reachable ? "reachable" : "unreachable", pendingMigrations }, ok ? 200 : 503);
    }),
  );
  app.get("/openapi.json", publicRoute((c: Context) => c.json(openApiDocument())));
  // The document rendered as HTML; opens with the key or a dashboard session (the dashboard links to it). No script at all.
  app.get("/reference", sessionRoute((c: Context) => c.html(referencePage(), 200, { "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" }), { orApiKey: true }));
  // For scrapers: counts and states only, no ids or secrets in any label.
  app.get("/metrics", publicRoute(async () => new Response(await gk.telemetry.metrics.render(), { headers: { "content-type": gk.telemetry.metrics.contentType } })));

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
  app.route("/v1/connect-sessions", connectSessionRoutes(gk));
  app.route("/v1", oauthRoutes(gk, { apiKeys }));
  app.route("/", dashboardRoutes(gk, { signer, apiKeys }));
  // Served on a socket (src/http/server.ts), an authorized, canonical proxy or token request skips the Hono adapter.
  attachFastPath(app, apiFastPath(gk, apiKeys));
  return app;
}
