/**
 * One way to call a provider's API with a connection's token, for the proxy
 * (`ANY /v1/proxy/{connectionId}/{path}`) and for job handlers
 * (`ctx.fetch`) alike (design.md "Failure classification": an API 401
 * refreshes once, single-flight, and retries once; a second one goes back to
 * the caller and counts toward `degraded`).
 *
 * 1. The method must be an API method and the path must stay under the
 *    provider's `apiBaseUrl` path ({@link ./target.ts}).
 * 2. `ensureFresh` gives a token (refreshing first when it is due).
 * 3. The call goes out over undici ({@link ./transport.ts}), hop-by-hop
 *    headers and the caller's credentials removed ({@link ./headers.ts}).
 * 4. An auth failure — a 401, or a match of the provider's `apiAuthFailure`
 *    (Slack's `200 {"ok":false,"error":"token_expired"}`) — forces one
 *    refresh, shared by every call rejected with the same token, through the
 *    connection service (its rate limit holds), and the call goes once more.
 *    A request body over {@link REPLAY_LIMIT_BYTES} was streamed and cannot
 *    be sent again: the refresh still happens, and the rejection goes back
 *    to the caller, whose own retry then carries the fresh token.
 * 5. A second auth failure goes back to the caller and is counted
 *    ({@link ApiAuthTracker}); an accepted call resets the count.
 *
 * One span, `grantkeeper.api.call`, covers it all, for both callers.
 */
import type { EventEmitter } from "node:events";
import { Readable, type Writable } from "node:stream";
import { SpanStatusCode } from "@opentelemetry/api";
import type { Dispatcher } from "undici";
import { isApiAuthFailure, needsJsonBody, type ApiAuthFailureRule } from "../../domain/apiAuthFailure.js";
import type { Clock } from "../../domain/clock.js";
import { ErrorCode, GrantkeeperError, isGrantkeeperError } from "../../domain/errors.js";
import { apiBaseUrlFor, parseConnectionConfig } from "../../providers/connectionConfig.js";
import type { ProviderService } from "../../providers/service.js";
import type { ConnectionRepository } from "../../store/connections.js";
import type { Logger } from "../../telemetry/logger.js";
import type { Telemetry } from "../../telemetry/telemetry.js";
import { inSpan, SpanNames } from "../../telemetry/tracing.js";
import type { ConnectionService } from "../connections.js";
import { connectionNotFound } from "../errors.js";
import type { FreshTokenCache } from "../freshTokens.js";
import type { LifecycleHooks } from "../hooks.js";
import { ApiAuthTracker, type TrackedConnection } from "./authTracker.js";
import { discard, peekJson, prepareRequestBody, REPLAY_LIMIT_BYTES, type BodySource, type OutgoingBody } from "./bodies.js";
import { headersForCaller, headersForProvider } from "./headers.js";
import { apiMethod, resolveApiTarget, type ApiMethod } from "./target.js";
import { ApiTransport, wireError, type WireAnswer, type WireRoute } from "./transport.js";

/** Options of {@link ApiClient} (`proxy.*` in the config file, in seconds there). */
export interface ApiClientOptions {
  /** Each API call: connect, answer headers, and each pause in a body (`proxy.timeoutSeconds`). @defaultValue 30 000 ms */
  timeoutMs: number;
  /** Rejections of freshly refreshed tokens in a row that make a connection `degraded` (`proxy.authFailuresToDegrade`). @defaultValue 3 */
  authFailuresToDegrade: number;
  /** Open connections per provider origin, at most (`proxy.connectionsPerOrigin`). @defaultValue 64 */
  connectionsPerOrigin: number;
  /** An undici dispatcher to send through instead of grantkeeper's own pool (egress proxy, tests). */
  dispatcher?: Dispatcher;
}

/** Defaults of {@link ApiClientOptions}. Frozen. */
export const defaultApiClientOptions: Readonly<ApiClientOptions> = Object.freeze({ timeoutMs: 30_000, authFailuresToDegrade: 3, connectionsPerOrigin: 64 });

/**
 * Merge and validate.
 * @throws RangeError naming the first bad value
 */
export function resolveApiClientOptions(partial: Partial<ApiClientOptions> = {}): ApiClientOptions {
  const o: ApiClientOptions = { ...defaultApiClientOptions, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
  if (!(Number.isFinite(o.timeoutMs) && o.timeoutMs > 0)) throw new RangeError(`proxy timeoutMs must be a finite number > 0, got ${o.timeoutMs}`);
  if (!Number.isInteger(o.authFailuresToDegrade) || o.authFailuresToDegrade < 1) throw new RangeError(`proxy authFailuresToDegrade must be an integer >= 1, got ${o.authFailuresToDegrade}`);
  if (!Number.isInteger(o.connectionsPerOrigin) || o.connectionsPerOrigin < 1) throw new RangeError(`proxy connectionsPerOrigin must be an integer >= 1, got ${o.connectionsPerOrigin}`);
  return o;
}

/** One API call. */
export interface ApiRequest {
  connectionId: string;
  /** One of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS. */
  method: string;
  /** Under the provider's `apiBaseUrl` path (one leading `/` optional), optionally with `?query`. */
  path: string;
  /** The query to send instead of one in `path` (`?…` exactly as received). */
  search?: string;
  /** The caller's headers; hop-by-hop ones, `Authorization` and `Cookie` are dropped. */
  headers?: Iterable<[string, string]>;
  body?: BodySource;
  /** The body's length when the caller declared it (`Content-Length`): a longer one than {@link REPLAY_LIMIT_BYTES} is streamed unread. */
  contentLength?: number;
  signal?: AbortSignal;
  /**
   * The caller's side of the call (the proxy's `ServerResponse`): its `close`
   * before the answer is complete cancels the call, as `signal` would,
   * without an `AbortSignal` per call.
   */
  until?: EventEmitter;
  /**
   * Where the answer goes when the caller streams it on (the proxy): called
   * once with the head, it returns the `Writable` the body is written into —
   * ended at the end, destroyed when the call fails midway, and its closing
   * early cancels the call — and the returned answer's body is null. An
   * answer nobody must read first (no `apiAuthFailure` JSON rule, no auth
   * failure, no rejection count to reset) goes from the provider's socket
   * straight into it: no `Readable` in between (issue 16).
   */
  respond?: (head: ApiAnswerHead) => Writable;
  /** Who calls, for the span. */
  caller: "proxy" | "handler";
}

/**
 * How the call went with the token: `accepted` at once; `refreshed` after one
 * refresh and retry; `rejected` — the answer is an auth failure the caller gets.
 */
export type ApiAuthOutcome = "accepted" | "refreshed" | "rejected";

/** The head of the provider's answer, as the caller may see it. */
export interface ApiAnswerHead {
  status: number;
  /** Hop-by-hop headers and `Set-Cookie` removed; repeated headers repeated. */
  headers: Array<[string, string]>;
  auth: ApiAuthOutcome;
}

/** The provider's answer, as the caller may see it. */
export interface ApiAnswer extends ApiAnswerHead {
  /** The body, streaming; null for HEAD, statuses without content, and when {@link ApiRequest.respond} took it. Read it or destroy it. */
  body: Readable | null;
}

/** Dependencies of {@link ApiClient}. */
export interface ApiClientDeps {
  connections: Pick<ConnectionService, "ensureFresh" | "refresh" | "cachedGrant">;
  repo: ConnectionRepository;
  providers: Pick<ProviderService, "get">;
  clock: Clock;
  logger: Logger;
  hooks: LifecycleHooks;
  telemetry: Telemetry;
  options: ApiClientOptions;
  /** Fresh tokens in memory: a rejected token is forgotten at once, and the rejection count's changes too. */
  freshTokens?: Pick<FreshTokenCache, "invalidate">;
}

/** Statuses whose answer has no content (RFC 9110 §15.2, §15.3.5, §15.3.6, §15.4.5). */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

/** One request's answer: its body still to be read, or already handed to {@link ApiRequest.respond} (`delivered`). */
type Sent = WireAnswer & { authFailure: boolean; delivered?: ApiAnswer };

/** Calls providers' APIs with connections' tokens. One per grantkeeper instance (`gk.api`). */
export class ApiClient {
  private readonly transport: ApiTransport;
  private readonly tracker: ApiAuthTracker;
  /** Refreshes after a rejection, by connection, keyed by the rejected token: calls rejected together share one. */
  private readonly afterRejection = new Map<string, { rejected: string; fresh: Promise<string> }>();

  constructor(private readonly d: ApiClientDeps) {
    this.transport = new ApiTransport({ timeoutMs: d.options.timeoutMs, connectionsPerOrigin: d.options.connectionsPerOrigin, ...(d.options.dispatcher ? { dispatcher: d.options.dispatcher } : {}) });
    this.tracker = new ApiAuthTracker({ repo: d.repo, clock: d.clock, logger: d.logger, hooks: d.hooks, authFailuresToDegrade: d.options.authFailuresToDegrade, ...(d.freshTokens ? { freshTokens: d.freshTokens } : {}) });
  }

  /**
   * Call the provider's API for a connection (see the module comment for the steps).
   * @returns the answer, a rejection included (`auth: "rejected"`); its body streams
   * @throws {@link GrantkeeperError} `method_not_allowed` (405), `invalid_proxy_path` (400), `connection_not_found` (404),
   *   `no_api_base_url`, `connection_config_missing`, `invalid_connection_config` (422), `connection_error` (409, the grant is dead — also when the refresh after a 401 finds it so),
   *   `token_unavailable` (503), `upstream_timeout` (504), `upstream_unreachable` (502)
   */
  async authorizedFetch(req: ApiRequest): Promise<ApiAnswer> {
    const method = apiMethod(req.method);
    // A fresh token in memory comes with the summary and provider it was read with: no store read then.
    const cached = this.d.connections.cachedGrant(req.connectionId);
    const conn = cached ? cached.connection : await this.d.repo.getSummary(req.connectionId);
    if (!conn) throw connectionNotFound(req.connectionId);
    const provider = cached ? cached.provider : await this.d.providers.get(conn.provider_id);
    if (!provider) throw new GrantkeeperError(ErrorCode.noApiBaseUrl, `provider ${conn.provider_id} is not defined; define it with an apiBaseUrl to call its API`, { details: { providerId: conn.provider_id } });
    // Placeholders ({instance_url}, {subdomain}) resolve per connection: two Salesforce orgs, two hosts.
    const memo = cached?.memo;
    const baseUrl = memo?.apiBaseUrl ?? apiBaseUrlFor(provider, { connectionConfig: parseConnectionConfig(conn.connection_config) });
    if (memo) memo.apiBaseUrl = baseUrl;
    const url = resolveApiTarget(baseUrl, req.path, req.search);
    const headers = headersForProvider(req.headers ?? []);
    const body = await prepareRequestBody(req.body, req.contentLength);
    // No URL or path attribute: paths may carry record ids or personal data.
    const attributes = { "grantkeeper.provider.id": conn.provider_id, "grantkeeper.connection.id": conn.id, "grantkeeper.api.caller": req.caller, "http.request.method": method, "server.address": url.hostname };
    return inSpan(this.d.telemetry.tracer, SpanNames.apiCall, attributes, async (span) => {
      const call: Call = { url, method, headers, body, signal: req.signal, until: req.until, respond: req.respond };
      const answer = await this.exchange(conn, provider.apiAuthFailure, call, cached?.token.accessToken);
      span.setAttributes({ "http.response.status_code": answer.status, "grantkeeper.api.auth": answer.auth });
      // A provider's 5xx is a fault; its 4xx answers are the caller's to judge.
      if (answer.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `provider API answered ${answer.status}` });
      return answer;
    });
  }

  /** Close the connection pool. */
  close(): Promise<void> {
    return this.transport.close();
  }

  private async exchange(conn: TrackedConnection, rule: ApiAuthFailureRule | undefined, call: Call, fromMemory: string | undefined): Promise<ApiAnswer> {
    const { metrics } = this.d.telemetry;
    const used = fromMemory ?? (await this.d.connections.ensureFresh(conn.id)).accessToken;
    // Straight into the caller's Writable only when accepting the answer writes nothing first (nothing to reset).
    const clear = this.tracker.isClear(conn);
    const first = await this.send(call, used, rule, clear ? "accepted" : undefined);
    if (!first.authFailure) return this.accept(conn, call, first, "accepted", clear);
    // The API refused this token: never hand it out from memory again (another instance may have refreshed it).
    this.d.freshTokens?.invalidate(conn.id);
    metrics.apiUnauthorized(conn.provider_id);
    // A streamed body is gone: refresh anyway, so the caller's own retry carries a fresh token.
    if (call.body.kind !== "stream") discard(first.body);
    let fresh: string;
    try {
      fresh = await this.freshAfterRejection(conn.id, used);
    } catch (e) {
      discard(first.body);
      throw e;
    }
    if (call.body.kind === "stream") {
      metrics.apiAuthRejected(conn.provider_id);
      return answerOf(call, first, "rejected");
    }
    const second = await this.send(call, fresh, rule, clear ? "refreshed" : undefined);
    if (!second.authFailure) return this.accept(conn, call, second, "refreshed", clear);
    metrics.apiUnauthorized(conn.provider_id);
    metrics.apiAuthRejected(conn.provider_id);
    await this.tracker.rejected(conn);
    return answerOf(call, second, "rejected");
  }

  /** @param clear {@link ApiAuthTracker.isClear} of `conn`, as {@link exchange} decided it: then there is nothing to reset and no await. */
  private async accept(conn: TrackedConnection, call: Call, sent: Sent, auth: ApiAuthOutcome, clear: boolean): Promise<ApiAnswer> {
    if (!clear) await this.tracker.accepted(conn);
    return answerOf(call, sent, auth);
  }

  /**
   * One request with `token`; reads a small JSON body only when the provider's rule needs it.
   * @param deliverAs when given (and the call has `respond`), an answer that is no auth failure by its head alone goes straight to `respond`, with this outcome
   */
  private async send(call: Call, token: string, rule: ApiAuthFailureRule | undefined, deliverAs?: ApiAuthOutcome): Promise<Sent> {
    const respond = deliverAs === undefined ? undefined : call.respond;
    let delivered: ApiAnswer | undefined;
    const route: WireRoute | undefined =
      respond &&
      ((status, headers) => {
        if (needsJsonBody(status, rule) || isApiAuthFailure(status, undefined, rule)) return undefined;
        delivered = { status, headers: headersForCaller(headers), body: null, auth: deliverAs! };
        return respond(delivered);
      });
    const wire = await this.transport.send({ url: call.url, method: call.method, headers: { ...call.headers, authorization: `Bearer ${token}` }, body: call.body, signal: call.signal, until: call.until, route });
    if (delivered) return { status: wire.status, headers: wire.headers, body: null, authFailure: false, delivered };
    // Not delivered: the body is still here to read.
    const body = wire.body!;
    if (wire.status < 200 || wire.status > 599) {
      discard(body);
      throw new GrantkeeperError(ErrorCode.upstreamUnreachable, `${call.url.host} answered with status ${wire.status}`, { details: { host: call.url.host, reason: "invalid_status" } });
    }
    if (!needsJsonBody(wire.status, rule)) return { ...wire, authFailure: isApiAuthFailure(wire.status, undefined, rule) };
    try {
      const peeked = await peekJson(body, wire.headers);
      return { ...wire, body: peeked.body, authFailure: isApiAuthFailure(wire.status, peeked.json, rule) };
    } catch (e) {
      discard(body);
      if (call.signal?.aborted) throw e;
      throw wireError(e, call.url, this.d.options.timeoutMs);
    }
  }

  /**
   * A token to retry with after `rejected` was refused: the one another call
   * already refreshed to, or a forced refresh's (single-flight in the engine;
   * shared here by every call rejected with the same token; a rate-limited
   * refresh means one just happened, so the current token is used).
   */
  private freshAfterRejection(connectionId: string, rejected: string): Promise<string> {
    const current = this.afterRejection.get(connectionId);
    if (current && current.rejected === rejected) return current.fresh;
    const fresh = (async () => {
      const now = (await this.d.connections.ensureFresh(connectionId)).accessToken;
      if (now !== rejected) return now;
      try {
        await this.d.connections.refresh(connectionId);
      } catch (e) {
        if (!isGrantkeeperError(e, ErrorCode.refreshRateLimited)) throw e;
      }
      return (await this.d.connections.ensureFresh(connectionId)).accessToken;
    })();
    const entry = { rejected, fresh };
    this.afterRejection.set(connectionId, entry);
    const forget = () => {
      if (this.afterRejection.get(connectionId) === entry) this.afterRejection.delete(connectionId);
    };
    fresh.then(forget, forget);
    return fresh;
  }
}

interface Call {
  url: URL;
  method: ApiMethod;
  headers: Record<string, string>;
  body: OutgoingBody;
  signal?: AbortSignal;
  until?: EventEmitter;
  respond?: ApiRequest["respond"];
}

/** The caller's answer; with `respond`, handed to it (if {@link ApiClient.send} did not already). */
function answerOf(call: Call, sent: Sent, auth: ApiAuthOutcome): ApiAnswer {
  if (sent.delivered) return sent.delivered;
  const empty = call.method === "HEAD" || NULL_BODY_STATUSES.has(sent.status);
  // Nothing to read: let the connection go back to the pool.
  if (empty) sent.body?.resume();
  const answer = { status: sent.status, headers: headersForCaller(sent.headers), body: empty ? null : sent.body, auth };
  return call.respond ? deliver(answer, call.respond) : answer;
}

/** Write an answer read first (peeked, or an auth rejection) into the caller's Writable, as a delivered one would be. */
function deliver(answer: ApiAnswer, respond: NonNullable<ApiRequest["respond"]>): ApiAnswer {
  const sink = respond({ status: answer.status, headers: answer.headers, auth: answer.auth });
  const body = answer.body;
  if (!body) {
    sink.end();
    return answer;
  }
  // pipe, not pipeline: pipeline builds (and aborts) an AbortController per call.
  body.once("error", (e) => sink.destroy(e));
  sink.once("close", () => {
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(sink);
  return { ...answer, body: null };
}

/**
 * A web `Response` of an answer (what `ctx.fetch` returns; the proxy adds its own headers).
 * @param extraHeaders set after the provider's, replacing same-named ones
 */
export function toWebResponse(answer: ApiAnswer, extraHeaders: Array<[string, string]> = []): Response {
  const headers = new Headers();
  for (const [k, v] of answer.headers) headers.append(k, v);
  for (const [k, v] of extraHeaders) headers.set(k, v);
  return new Response(answer.body ? (Readable.toWeb(answer.body) as ReadableStream<Uint8Array>) : null, { status: answer.status, headers });
}
