/**
 * The wire under API calls: undici, with a connection pool per provider
 * origin (an `Agent` keeps one `Pool` per origin), bounded connections,
 * streaming both ways, no redirects followed and nothing decompressed — the
 * bytes a provider sends are the bytes the caller gets.
 *
 * Failures become {@link GrantkeeperError}s the HTTP edge maps in one place:
 * no answer within the timeout → `upstream_timeout` (504); refused, reset,
 * DNS, TLS, a broken answer → `upstream_unreachable` (502). A caller's own
 * abort is passed on as is.
 */
import type { Readable } from "node:stream";
import { Agent, type Dispatcher } from "undici";
import { ErrorCode, GrantkeeperError } from "../../domain/errors.js";
import type { OutgoingBody } from "./bodies.js";

/** Options of {@link ApiTransport}. */
export interface ApiTransportOptions {
  /**
   * Connecting, the answer's headers, and each pause between body chunks
   * may take at most this long (`proxy.timeoutSeconds`). @defaultValue 30 000 ms
   */
  timeoutMs: number;
  /** Open connections per provider origin, at most. @defaultValue 64 */
  connectionsPerOrigin: number;
  /**
   * The undici dispatcher to send through instead of an own `Agent` (an
   * egress `ProxyAgent`, a test's recording dispatcher). Not closed by
   * {@link ApiTransport.close}: its owner closes it.
   */
  dispatcher?: Dispatcher;
}

/** One request on the wire. */
export interface WireRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: OutgoingBody;
  signal?: AbortSignal;
}

/** One answer off the wire; `body` streams and must be read or destroyed. */
export interface WireAnswer {
  status: number;
  /** Lower-case names; a repeated header is an array. */
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "ETIMEDOUT"]);

/** Sends API calls over pooled, bounded connections. */
export class ApiTransport {
  private readonly dispatcher: Dispatcher;
  private readonly owned: boolean;

  constructor(private readonly options: ApiTransportOptions) {
    if (!(options.timeoutMs > 0)) throw new RangeError(`api transport timeoutMs must be > 0, got ${options.timeoutMs}`);
    if (!Number.isInteger(options.connectionsPerOrigin) || options.connectionsPerOrigin < 1) throw new RangeError(`api transport connectionsPerOrigin must be an integer >= 1, got ${options.connectionsPerOrigin}`);
    this.owned = options.dispatcher === undefined;
    this.dispatcher =
      options.dispatcher ?? new Agent({ connections: options.connectionsPerOrigin, connectTimeout: options.timeoutMs, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs });
  }

  /**
   * Send one request and wait for the answer's headers.
   * @throws {@link GrantkeeperError} `upstream_timeout` (504) or `upstream_unreachable` (502); the caller's abort reason when `signal` aborts
   */
  async send(req: WireRequest): Promise<WireAnswer> {
    const { timeoutMs } = this.options;
    const headers = req.body.kind === "stream" && req.body.length !== undefined ? { ...req.headers, "content-length": String(req.body.length) } : req.headers;
    const body = req.body.kind === "none" ? null : req.body.kind === "bytes" ? req.body.bytes : req.body.stream;
    try {
      const r = await this.dispatcher.request({
        origin: req.url.origin,
        path: req.url.pathname + req.url.search,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(req.signal ? { signal: req.signal } : {}),
      });
      return { status: r.statusCode, headers: r.headers, body: r.body };
    } catch (e) {
      if (req.signal?.aborted) throw e;
      throw wireError(e, req.url, timeoutMs);
    }
  }

  /** Close the own pool's connections (a given dispatcher is left to its owner). */
  async close(): Promise<void> {
    if (this.owned) await this.dispatcher.close();
  }
}

/**
 * The {@link GrantkeeperError} of a failed call: host only in the message
 * (paths and queries may carry ids or personal data), the cause kept
 * non-enumerable.
 */
export function wireError(e: unknown, url: URL, timeoutMs: number): GrantkeeperError {
  const code = typeof (e as { code?: unknown })?.code === "string" ? (e as { code: string }).code : (e as { cause?: { code?: string } })?.cause?.code;
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new GrantkeeperError(ErrorCode.upstreamTimeout, `${url.host} did not answer within ${Math.round(timeoutMs / 1000)} s (proxy.timeoutSeconds)`, { details: { host: url.host }, cause: e });
  }
  return new GrantkeeperError(ErrorCode.upstreamUnreachable, `${url.host} could not be reached${code ? ` (${code})` : ""}`, { details: { host: url.host, ...(code ? { reason: code } : {}) }, cause: e });
}
