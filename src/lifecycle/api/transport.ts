/**
 * The wire under API calls: undici, with a connection pool per provider
 * origin (an `Agent` keeps one `Pool` per origin), bounded connections,
 * streaming both ways, no redirects followed and nothing decompressed — the
 * bytes a provider sends are the bytes the caller gets.
 *
 * Each call is one undici `dispatch` with our own handler ({@link WireCall}),
 * so that at the answer's head the caller can decide where its body goes:
 * into a `Writable` of its own (the proxy's `ServerResponse`: the bytes go
 * from the provider's socket into the caller's with backpressure and no
 * stream in between), or into a `Readable` it reads later (a handler's
 * `ctx.fetch`, an answer read for `apiAuthFailure` rules). issue 16: the
 * proxy's `request` → `Readable` → `pipe` and an `AbortController` per call
 * were a fifth of its CPU per request.
 *
 * Failures become {@link GrantkeeperError}s the HTTP edge maps in one place:
 * no answer within the timeout → `upstream_timeout` (504); refused, reset,
 * DNS, TLS, a broken answer → `upstream_unreachable` (502). A caller's own
 * abort is passed on as is.
 */
import type { EventEmitter } from "node:events";
import { Readable, type Writable } from "node:stream";
import { Agent, util as undiciUtil, type Dispatcher } from "undici";
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

/** An answer's headers: lower-case names; a repeated header is an array. */
export type WireHeaders = Record<string, string | string[] | undefined>;

/**
 * Where an answer's body goes, decided at its head (status 200–599): a
 * `Writable` gets the body written into it — with backpressure, ended at the
 * end, destroyed with the error when the call fails, and its closing before
 * the end cancels the call; `undefined` keeps the body as
 * {@link WireAnswer.body}.
 */
export type WireRoute = (status: number, headers: WireHeaders) => Writable | undefined;

/** One request on the wire. */
export interface WireRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: OutgoingBody;
  signal?: AbortSignal;
  /**
   * The caller's side of the call (the proxy's `ServerResponse`): its
   * `close` event before the answer is complete cancels the call, as
   * `signal` would, without an `AbortSignal` per call.
   */
  until?: EventEmitter;
  route?: WireRoute;
}

/** One answer off the wire. */
export interface WireAnswer {
  status: number;
  headers: WireHeaders;
  /** The body, streaming: read it or destroy it; null when {@link WireRequest.route} took it. */
  body: Readable | null;
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
   * Send one request and wait for the answer's head.
   * @throws {@link GrantkeeperError} `upstream_timeout` (504) or `upstream_unreachable` (502); the caller's abort reason when `signal` aborts
   *   or an `AbortError` when `until` closes first
   */
  send(req: WireRequest): Promise<WireAnswer> {
    const { timeoutMs } = this.options;
    const headers = req.body.kind === "stream" && req.body.length !== undefined ? { ...req.headers, "content-length": String(req.body.length) } : req.headers;
    const body = req.body.kind === "none" ? null : req.body.kind === "bytes" ? req.body.bytes : req.body.stream;
    const call = new WireCall(req.route, req.signal, req.until);
    if (req.body.kind === "stream") req.body.stream.on("error", call.fail);
    // The caller's own abort as is; anything else as what it means for the call.
    const mapped = (e: unknown): unknown => (call.cancelledBy !== undefined && e === call.cancelledBy ? e : wireError(e, req.url, timeoutMs));
    try {
      this.dispatcher.dispatch(
        { origin: req.url.origin, path: req.url.pathname + req.url.search, method: req.method as Dispatcher.HttpMethod, headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs },
        call,
      );
    } catch (e) {
      return Promise.reject(mapped(e));
    }
    // Not an async function: the answer is handed on without one more promise per call.
    return call.answer.catch((e: unknown) => Promise.reject(mapped(e)));
  }

  /** Close the own pool's connections (a given dispatcher is left to its owner). */
  async close(): Promise<void> {
    if (this.owned) await this.dispatcher.close();
  }
}

/**
 * One call's undici handler (the classic `onConnect`/`onHeaders`/`onData`/
 * `onComplete`/`onError` interface undici runs natively): resolves
 * {@link answer} at the head and moves the body where {@link WireRoute} said.
 */
class WireCall implements Dispatcher.DispatchHandler {
  readonly answer: Promise<WireAnswer>;
  /** The caller's abort reason, once the caller cancelled (`signal` or `until`). */
  cancelledBy: unknown;
  private resolve!: (a: WireAnswer) => void;
  private reject!: (e: unknown) => void;
  private abortWire: ((e: Error) => void) | undefined;
  private settled = false;
  private done = false;
  private sink: Writable | undefined;
  private readable: WireBody | undefined;

  constructor(
    private readonly route: WireRoute | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly until: EventEmitter | undefined,
  ) {
    this.answer = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (signal) {
      if (signal.aborted) this.cancel(signal.reason);
      else signal.addEventListener("abort", this.onAbort, { once: true });
    }
    until?.once("close", this.onGone);
  }

  /** Stop the call with `reason` (now, or as soon as undici hands over its abort). */
  readonly fail = (reason: unknown): void => {
    if (this.done) return;
    const err = reason instanceof Error ? reason : new Error(String(reason));
    if (this.abortWire) this.abortWire(err);
    else this.onError(err);
  };

  onConnect(abort: (err?: Error) => void): void {
    this.abortWire = abort;
    if (this.done) abort(new Error("the call was cancelled"));
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (status < 200) return true;
    const headers = undiciUtil.parseHeaders(rawHeaders) as WireHeaders;
    let sink: Writable | undefined;
    try {
      sink = status <= 599 ? this.route?.(status, headers) : undefined;
    } catch (e) {
      this.fail(e);
      return false;
    }
    if (sink) {
      this.sink = sink;
      sink.on("drain", resume);
      if (sink !== this.until) sink.once("close", this.onGone);
      this.settle({ status, headers, body: null });
      if (sink.destroyed) this.onGone();
      return !sink.writableNeedDrain;
    }
    this.readable = new WireBody(resume, this.fail);
    this.settle({ status, headers, body: this.readable });
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.sink ? this.sink.write(chunk) : this.readable!.push(chunk);
  }

  onComplete(): void {
    this.finish();
    if (this.sink) this.sink.end();
    else this.readable?.push(null);
  }

  onError(err: Error): void {
    // Done is settled too (the head came, or this rejected it): a late error from undici changes nothing.
    if (this.done) return;
    this.finish();
    if (!this.settled) {
      this.settled = true;
      this.reject(this.cancelledBy ?? err);
    } else if (this.sink) this.sink.destroy(err);
    else this.readable?.destroy(err);
  }

  private cancel(reason: unknown): void {
    if (this.done) return;
    this.cancelledBy = reason;
    this.fail(reason);
  }

  private readonly onAbort = (): void => this.cancel(this.signal!.reason);

  private readonly onGone = (): void => this.cancel(new DOMException("the caller closed its connection before the answer was complete", "AbortError"));

  private settle(answer: WireAnswer): void {
    this.settled = true;
    this.resolve(answer);
  }

  private finish(): void {
    this.done = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.until?.removeListener("close", this.onGone);
    if (this.sink && this.sink !== this.until) this.sink.removeListener("close", this.onGone);
  }
}

/** An answer body read later: undici's bytes, paused by its reader's backpressure; destroying it early cancels the call. */
class WireBody extends Readable {
  constructor(
    private readonly resumeWire: () => void,
    private readonly cancel: (reason: unknown) => void,
  ) {
    super({ highWaterMark: 65_536 });
  }

  override _read(): void {
    this.resumeWire();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.readableEnded) this.cancel(err ?? new DOMException("the answer's body was destroyed before its end", "AbortError"));
    callback(err);
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
