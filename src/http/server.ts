/**
 * Serving the app on a real socket: node:http with @hono/node-server's
 * request listener, and the limits a server facing the internet needs
 * (issue 10 item 6). Node's defaults hold a slow body for 300 s and check
 * that only every 30 s; a client that stops sending mid-body is cut off
 * here after `requestTimeoutMs`.
 *
 * Body deadlines ({@link BodyDeadlines}, in place of Node's `requestTimeout`):
 * a body the app reads must have arrived `requestTimeoutMs` after its
 * headers; a proxied upload — an authorized `/v1/proxy` request the fast path
 * streams to the provider ({@link streamsUpload}) — may take as long as it
 * keeps sending and is cut after `requestTimeoutMs` without a byte (nginx's
 * `client_body_timeout`), so a large file over a slow link goes through while
 * a stalled one still frees its connection.
 *
 * Lingering close: when an answer is sent before the request body has
 * arrived (a 413, a 401 before the body was read), the rest of the body is
 * read and discarded — at most `lingerMaxBytes`, for at most `lingerMs` —
 * instead of closing with unread bytes, which makes the kernel send a TCP
 * RST that destroys the answer in the client's receive buffer (the client
 * sees EPIPE or ECONNRESET, never the 413). A body that ends in time leaves
 * the connection in sync, so it stays usable; one that does not is cut.
 * Apache's and nginx's lingering close work the same way.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { getRequestListener } from "@hono/node-server";
import type { Hono } from "hono";
import { systemClock, type Clock } from "../domain/clock.js";
import { ALLOW_HEADER } from "../lifecycle/api/target.js";
import type { Logger } from "../telemetry/logger.js";
import { ProblemError } from "./problem.js";
import { declaresBody, fastPathOf, streamsUpload } from "./fastPaths.js";

/**
 * CONNECT never reaches the app (Node hands it to a `connect` listener, and
 * closes the socket without a word when there is none): grantkeeper is not a
 * tunnel, so it answers 405 like the proxy does for any other method.
 */
function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
  const body = JSON.stringify(new ProblemError(405, "method_not_allowed", "Method not allowed", `CONNECT is not supported; allowed: ${ALLOW_HEADER}`).toBody());
  socket.on("error", () => undefined);
  socket.end(`HTTP/1.1 405 Method Not Allowed\r\nAllow: ${ALLOW_HEADER}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * Limits of the HTTP server (config `server`, in seconds there). Times in
 * milliseconds.
 */
export interface ServerLimits {
  /**
   * The body must arrive within this after the headers (a slow body is cut with 408); a proxied upload is cut only
   * after this long without a byte ({@link BodyDeadlines}). @defaultValue 30_000
   */
  requestTimeoutMs: number;
  /** The headers must arrive within this (Node `headersTimeout`); at most `requestTimeoutMs`. @defaultValue 10_000 */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (Node `keepAliveTimeout`). @defaultValue 5_000 */
  keepAliveTimeoutMs: number;
  /** Connections beyond this many are refused at once (Node `maxConnections`). @defaultValue 1024 */
  maxConnections: number;
  /** How long the rest of a body is read after an early answer, before the connection is cut. @defaultValue 5_000 */
  lingerMs: number;
  /** How many bytes of a body are read and discarded after an early answer, before the connection is cut. @defaultValue 67_108_864 (64 MiB) */
  lingerMaxBytes: number;
}

/** The defaults of {@link ServerLimits}. */
export const defaultServerLimits: Readonly<ServerLimits> = Object.freeze({
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 1024,
  lingerMs: 5_000,
  lingerMaxBytes: 64 * 1024 * 1024,
});

/**
 * Merge `partial` over {@link defaultServerLimits} and validate.
 * @throws RangeError naming the bad value: a time or count that is not a positive finite number
 *   (`maxConnections` and `lingerMaxBytes` integers), or `headersTimeoutMs` > `requestTimeoutMs`
 */
export function resolveServerLimits(partial: Partial<ServerLimits> = {}): ServerLimits {
  const limits: ServerLimits = { ...defaultServerLimits, ...partial };
  for (const [name, value] of Object.entries(limits)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw new RangeError(`server.${name} must be a positive finite number, got ${String(value)}`);
  }
  for (const name of ["maxConnections", "lingerMaxBytes"] as const) {
    if (!Number.isInteger(limits[name])) throw new RangeError(`server.${name} must be an integer, got ${limits[name]}`);
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError(`server.headersTimeoutMs (${limits.headersTimeoutMs}) must not exceed server.requestTimeoutMs (${limits.requestTimeoutMs})`);
  }
  return limits;
}

/** A listening server. */
export interface RunningServer {
  /** `http://host:port` actually bound (port 0 resolves to the ephemeral port). */
  url: string;
  port: number;
  /** Stop accepting, close idle connections, resolve when closed. */
  close(): Promise<void>;
}

/** Options of {@link listen}. */
export interface ListenOptions {
  /** Limits; missing ones take {@link defaultServerLimits}. */
  limits?: Partial<ServerLimits>;
  /** Where cut connections are logged (debug level). */
  logger?: Logger;
  /** The clock body deadlines and lingering closes are timed on (tests move it instead of waiting). @defaultValue the system clock */
  clock?: Clock;
}

/** Node's own answer to a body that did not arrive in time (`ERR_HTTP_REQUEST_TIMEOUT`). */
const REQUEST_TIMEOUT_ANSWER = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n";

/** A request whose body is still arriving. */
interface OpenBody {
  req: IncomingMessage;
  res: ServerResponse;
  /** Judged by progress (a proxied upload) rather than by its start. */
  byProgress: boolean;
  /** When the deadline's count started: the headers, or the last progress. Clock ms. */
  since: number;
  /** The socket's `bytesRead` when last looked at. */
  bytesRead: number;
}

/**
 * The deadlines of request bodies still arriving, all checked by one timer
 * every `intervalMs` while there are any (as Node checks its own
 * `requestTimeout`, which this replaces). A body is late when it has not
 * ended `timeoutMs` after its headers; a proxied upload (`byProgress`) only
 * when no byte came for `timeoutMs` — a body grantkeeper itself is not
 * reading (the provider is slower than the client: backpressure) counts as
 * progress. A late body gets Node's `408` when nothing of the answer was
 * sent yet, and its connection is closed: a provider call it fed is
 * cancelled with it.
 */
class BodyDeadlines {
  private readonly open = new Set<OpenBody>();
  private timer: unknown;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    private readonly intervalMs: number,
    private readonly logger: Logger | undefined,
  ) {}

  /** Watch a request whose body has not ended yet; {@link forget} it once answered with its body in. */
  watch(req: IncomingMessage, res: ServerResponse, byProgress: boolean): OpenBody {
    const body = { req, res, byProgress, since: this.clock.now(), bytesRead: req.socket?.bytesRead ?? 0 };
    this.open.add(body);
    if (this.timer === undefined) this.timer = this.clock.setTimeout(this.check, this.intervalMs);
    return body;
  }

  /** Stop watching a body (its request was answered and it ended): nothing of the request is held until the next check. */
  forget(body: OpenBody): void {
    this.open.delete(body);
  }

  /** Stop checking (the server closed). */
  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.open.clear();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    const now = this.clock.now();
    for (const b of this.open) {
      const socket = b.req.socket as IncomingMessage["socket"] | null;
      if (b.req.complete || !socket || socket.destroyed) {
        this.open.delete(b);
        continue;
      }
      if (b.byProgress && (socket.bytesRead !== b.bytesRead || b.req.readableLength > 0)) {
        b.bytesRead = socket.bytesRead;
        b.since = now;
        continue;
      }
      if (now - b.since < this.timeoutMs) continue;
      this.open.delete(b);
      this.logger?.debug({ byProgress: b.byProgress, bytesRead: socket.bytesRead }, "cut a connection whose request body did not arrive in time");
      if (!b.res.headersSent && socket.writable) socket.write(REQUEST_TIMEOUT_ANSWER);
      socket.destroy();
    }
    if (this.open.size > 0) this.timer = this.clock.setTimeout(this.check, this.intervalMs);
  };
}

/**
 * After an answer was sent before its request body arrived: discard the rest
 * of the body, bounded in bytes and time; cut the connection when a bound is
 * reached. Runs before node:http's own end-of-response handling, which would
 * otherwise read on without a bound (`req._dump()`) or pause the socket with
 * the unread bytes still queued.
 */
function lingerAfterEarlyAnswer(req: IncomingMessage, limits: ServerLimits, clock: Clock, logger: Logger | undefined): void {
  // A request whose connection is already gone (destroyed, or detached: `socket` is then null) has nothing to drain.
  const socket = req.socket as IncomingMessage["socket"] | null;
  if (req.complete || !socket || socket.destroyed) return;
  let bytes = 0;
  const cut = (reason: "bytes" | "time") => {
    done();
    logger?.debug({ reason, bytes }, "cut a connection whose request body went on after the answer");
    socket.destroy();
  };
  const timer = clock.setTimeout(() => cut("time"), limits.lingerMs);
  const onData = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > limits.lingerMaxBytes) cut("bytes");
  };
  const done = () => {
    clock.clearTimeout(timer);
    req.off("data", onData);
    req.off("end", done);
    req.off("close", done);
  };
  // Whoever was reading the body (the app's web stream) is done with it: drop it, as node:http's `_dump()` does.
  req.removeAllListeners("data");
  req.on("data", onData);
  req.once("end", done);
  req.once("close", done);
  req.resume();
}

/** How often a timeout of `timeoutMs` is checked: every second at most, never less often than a quarter of it (≥ 50 ms). */
function checkingInterval(timeoutMs: number): number {
  return Math.min(1_000, Math.max(50, Math.floor(timeoutMs / 4)));
}

/**
 * Listen on `host:port` with {@link ServerLimits}.
 * @param port 0 for an ephemeral port
 * @throws the listen error (e.g. EADDRINUSE) with its code
 * @throws RangeError for invalid limits (see {@link resolveServerLimits})
 */
export function listen(app: Hono, host: string, port: number, options: ListenOptions = {}): Promise<RunningServer> {
  const limits = resolveServerLimits(options.limits);
  // Our lingering close replaces @hono/node-server's (500 ms, and a close that still resets the connection).
  const handle = getRequestListener(app.fetch, { autoCleanupIncoming: false });
  // The app's node:http fast path (the proxy), when it has one: it serves what it takes, the app the rest.
  const fast = fastPathOf(app);
  const clock = options.clock ?? systemClock;
  const deadlines = new BodyDeadlines(clock, limits.requestTimeoutMs, checkingInterval(limits.requestTimeoutMs), options.logger);
  const server: Server = createServer(
    {
      // Bodies are timed by `deadlines` (a proxied upload by its progress); Node times the headers.
      requestTimeout: 0,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the headers timeout only this often (30 s by default): check often enough to keep it.
      connectionsCheckingInterval: checkingInterval(limits.headersTimeoutMs),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      let body: OpenBody | undefined;
      res.prependListener("finish", () => {
        if (body && req.complete) deadlines.forget(body);
        lingerAfterEarlyAnswer(req, limits, clock, options.logger);
      });
      const served = fast?.(req, res) === true;
      if (!req.complete && declaresBody(req.headers)) body = deadlines.watch(req, res, served && streamsUpload(req));
      if (served) return;
      void handle(req, res);
    },
  );
  server.maxConnections = limits.maxConnections;
  server.on("connect", refuseConnect);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const bound = (server.address() as { port: number }).port;
      const h = host.includes(":") ? `[${host}]` : host;
      resolve({
        url: `http://${h}:${bound}`,
        port: bound,
        close: () =>
          new Promise<void>((res) => {
            deadlines.stop();
            server.closeAllConnections();
            server.close(() => res());
          }),
      });
    });
  });
}
