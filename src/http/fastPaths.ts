/**
 * The hottest authorized routes on node:http directly (issue 16): a request
 * that the Hono app would send, with a valid API key, to
 * - `ANY /v1/proxy/{connectionId}/{path}` — streamed without a web
 *   `Request`, `AbortSignal` from the adapter, `Response` or web-stream
 *   copies of either body: the caller's body from the socket into undici,
 *   the provider's answer from undici into the socket;
 * - `POST /v1/connections/{connectionId}/token` without a body — the fresh
 *   token as JSON, with the route's {@link TOKEN_ANSWER_HEADERS};
 * is served here, and everything else is handed to the app unchanged (which
 * then answers as before).
 *
 * Security first: this path only takes what the Hono app would have let
 * through to the same handler, decided by the same functions:
 * - the request target is origin-form, under one of the two routes, and
 *   canonical ({@link nonCanonicalReason}, the app's first middleware);
 * - the connection id segment is non-empty and has no escapes (Hono would
 *   decode them; the app does that), and goes through the route's own
 *   {@link idParam} on the token route;
 * - the method is an API method ({@link API_METHODS}; others get the app's
 *   405) on the proxy, POST on the token route, where a declared body (the
 *   app's body limit applies to it) goes to the app;
 * - `Authorization: Bearer <key>` matches one of the keys, in constant time
 *   ({@link authorizationHasKey}, what the gate calls; neither route is
 *   public), sent once.
 * Errors are the same RFC 9457 problems ({@link toProblem}), and each
 * request is logged with the app's "http request" line.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Grantkeeper } from "../grantkeeper.js";
import { API_METHODS } from "../lifecycle/api/target.js";
import { authorizationHasKey } from "./auth.js";
import { nonCanonicalReason } from "./canonicalPath.js";
import { ProblemError, toProblem } from "./problem.js";
import { idParam, TOKEN_ANSWER_HEADERS } from "./routes/connections.js";
import { PROXIED_ANSWER_HEADERS } from "./routes/proxy.js";
import { logAccess, type Logger } from "../telemetry/logger.js";

/** A node:http handler that serves a request and returns true, or returns false to leave it to the app. */
export type NodeFastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

const PROXY_PREFIX = "/v1/proxy/";
const CONNECTIONS_PREFIX = "/v1/connections/";
const TOKEN_SUFFIX = "/token";
const METHODS: ReadonlySet<string> = new Set(API_METHODS);
const PROXIED_NAMES: ReadonlySet<string> = new Set(PROXIED_ANSWER_HEADERS.map(([k]) => k));
const fastPaths = new WeakMap<object, NodeFastPath>();
/** The latest proxied upload on each connection (see {@link proxiedUploadOn}). */
const uploads = new WeakMap<object, IncomingMessage>();

/** Attach a {@link NodeFastPath} to an app: {@link ./server.ts listen} runs it before the app. */
export function attachFastPath(app: object, handler: NodeFastPath): void {
  fastPaths.set(app, handler);
}

/** The {@link NodeFastPath} attached to an app, if any. */
export function fastPathOf(app: object): NodeFastPath | undefined {
  return fastPaths.get(app);
}

/**
 * The proxied upload in progress on a connection, if any: an authorized
 * `/v1/proxy` request with a body that a fast path streams to the provider
 * and whose body has not ended. server.ts keeps such a body past Node's
 * `requestTimeout` while it keeps coming, so a large file over a slow link
 * is not cut. Decided by the fast path after the API key check, never by a
 * path string.
 * @param socket the connection (node:http's socket of the request)
 */
export function proxiedUploadOn(socket: object): IncomingMessage | undefined {
  const req = uploads.get(socket);
  return req !== undefined && !req.complete && req.socket === socket ? req : undefined;
}

/** A request the fast path takes: the proxy's parts, or the token route's connection id. */
type FastRoute = { kind: "proxy"; path: string; connectionId: string; rest: string; target: string; q: number } | { kind: "token"; path: string; connectionId: string };

/** The route a request target and method would reach in the app, when the fast path serves it; undefined otherwise. */
function fastRouteOf(target: string, method: string, headers: IncomingHttpHeaders): FastRoute | undefined {
  const q = target.indexOf("?");
  const path = q === -1 ? target : target.slice(0, q);
  if (path.startsWith(PROXY_PREFIX)) {
    if (!METHODS.has(method)) return undefined;
    const afterPrefix = path.slice(PROXY_PREFIX.length);
    const slash = afterPrefix.indexOf("/");
    const connectionId = slash === -1 ? afterPrefix : afterPrefix.slice(0, slash);
    if (connectionId === "" || connectionId.includes("%")) return undefined;
    return { kind: "proxy", path, connectionId, rest: slash === -1 ? "" : afterPrefix.slice(slash + 1), target, q };
  }
  if (method === "POST" && path.startsWith(CONNECTIONS_PREFIX) && path.endsWith(TOKEN_SUFFIX)) {
    const connectionId = path.slice(CONNECTIONS_PREFIX.length, path.length - TOKEN_SUFFIX.length);
    if (connectionId === "" || connectionId.includes("/") || connectionId.includes("%")) return undefined;
    // A body is the app's to limit (and nobody reads it): only "none" or "empty" is taken here.
    if (declaresBody(headers) && !(headers["transfer-encoding"] === undefined && headers["content-length"] === "0")) return undefined;
    return { kind: "token", path, connectionId };
  }
  return undefined;
}

/**
 * The fast path over a {@link Grantkeeper}: the proxy and the token route (see the module comment).
 * @param apiKeys the valid API keys (the app's, see `parseApiKeys`)
 */
export function apiFastPath(gk: Grantkeeper, apiKeys: readonly string[]): NodeFastPath {
  const log = gk.logger;
  return (req, res) => {
    const target = req.url;
    if (target === undefined || !target.startsWith("/v1/")) return false;
    const route = fastRouteOf(target, req.method ?? "", req.headers);
    if (route === undefined || nonCanonicalReason(route.path) !== undefined) return false;
    // Node keeps the first of repeated Authorization headers where the app's Headers would join them (and refuse).
    if (authorizationCount(req.rawHeaders) !== 1 || !authorizationHasKey(req.headers.authorization, apiKeys)) return false;
    if (route.kind === "proxy" && declaresBody(req.headers)) uploads.set(req.socket, req);
    const served =
      route.kind === "token"
        ? serveToken(gk, req, res, route)
        : serveProxy(gk, req, res, { path: route.path, connectionId: route.connectionId, rest: route.rest, search: route.q === -1 ? "" : new URL(route.target, "http://h").search });
    void served.catch((e: unknown) => {
      log.error({ path: route.path, err: { name: (e as Error).name, message: (e as Error).message, stack: (e as Error).stack } }, "unhandled error");
      res.destroy();
    });
    return true;
  };

  /** `POST /v1/connections/{id}/token`: what the app's route answers. */
  async function serveToken(gk: Grantkeeper, req: IncomingMessage, res: ServerResponse, t: { path: string; connectionId: string }): Promise<void> {
    logWhenFinished(log, req, res, t.path);
    let body: string;
    try {
      body = JSON.stringify(await gk.connections.ensureFresh(idParam(t.connectionId)));
    } catch (e) {
      writeError(res, log, t.path, e);
      return;
    }
    const headers: OutgoingHttpHeaders = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
    for (const [k, v] of TOKEN_ANSWER_HEADERS) headers[k] = v;
    res.writeHead(200, headers).end(body);
  }

  async function serveProxy(gk: Grantkeeper, req: IncomingMessage, res: ServerResponse, t: { path: string; connectionId: string; rest: string; search: string }): Promise<void> {
    const t0 = logWhenFinished(log, req, res, t.path);
    const method = req.method!;
    const declared = req.headers["content-length"];
    // A request without Content-Length or Transfer-Encoding has no body: none is sent on either.
    const hasBody = declaresBody(req.headers);
    try {
      await gk.api.authorizedFetch({
        connectionId: t.connectionId,
        method,
        path: t.rest,
        search: t.search,
        headers: headerPairs(req.rawHeaders),
        body: hasBody ? req : null,
        ...(declared !== undefined && /^\d{1,15}$/.test(declared) ? { contentLength: Number(declared) } : {}),
        // The client going away cancels the provider call too; the answer goes from the provider's socket into this one.
        until: res,
        respond: (head) => res.writeHead(head.status, answerHeaders(head.headers)),
        caller: "proxy",
      });
    } catch (e) {
      if (res.destroyed) {
        // Nobody is left to answer: not an error of grantkeeper's (any client could flood the error log with these).
        log.debug({ connectionId: t.connectionId, method }, "proxy client went away before the provider answered");
        // 499: "client closed request", for the request log only (nothing is sent: the socket is gone).
        logAccess(log, { method, path: t.path, status: 499, durationMs: Math.round(performance.now() - t0) });
        return;
      }
      writeError(res, log, t.path, e);
    }
  }
}

/** True when request headers declare a body (`Content-Length` or `Transfer-Encoding`, RFC 9112 §6.3). */
export function declaresBody(headers: IncomingHttpHeaders): boolean {
  return headers["content-length"] !== undefined || headers["transfer-encoding"] !== undefined;
}

/** How many `Authorization` fields the request carries. */
function authorizationCount(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 13 && raw[i]!.toLowerCase() === "authorization") n++;
  return n;
}

/** `rawHeaders` as pairs, names as sent (the core lower-cases them). */
function* headerPairs(raw: string[]): Iterable<[string, string]> {
  for (let i = 0; i + 1 < raw.length; i += 2) yield [raw[i]!, raw[i + 1]!];
}

/** The provider's headers (already filtered by the core) with {@link PROXIED_ANSWER_HEADERS} replacing same-named ones. */
function answerHeaders(headers: Array<[string, string]>): string[] {
  const flat: string[] = [];
  for (const [k, v] of headers) if (!PROXIED_NAMES.has(k)) flat.push(k, v);
  for (const [k, v] of PROXIED_ANSWER_HEADERS) flat.push(k, v);
  return flat;
}

/**
 * Write the request's access line (the app's "http request") once its answer is handed to the socket.
 * @returns when the request started (`performance.now()`, milliseconds)
 */
function logWhenFinished(log: Logger, req: IncomingMessage, res: ServerResponse, path: string): number {
  const t0 = performance.now();
  const method = req.method!;
  res.once("finish", () => logAccess(log, { method, path, status: res.statusCode, durationMs: Math.round(performance.now() - t0) }));
  return t0;
}

/** The answer to a failed request, as the app's error handler gives it: its problem, or a logged 500. */
function writeError(res: ServerResponse, log: Logger, path: string, e: unknown): void {
  const problem = toProblem(e);
  if (!problem) log.error({ path, err: { name: (e as Error).name, message: (e as Error).message, stack: (e as Error).stack } }, "unhandled error");
  writeProblem(res, problem ?? new ProblemError(500, "internal_error", "Internal error", "an unexpected error occurred; it has been logged"));
}

/** An RFC 9457 problem on a node:http response, as the app's error handler answers. */
function writeProblem(res: ServerResponse, problem: ProblemError): void {
  const body = JSON.stringify(problem.toBody());
  const headers: OutgoingHttpHeaders = { "content-type": "application/problem+json", ...problem.headers, "content-length": Buffer.byteLength(body) };
  res.writeHead(problem.status, headers).end(body);
}
