/**
 * Serving the app on a real socket: node:http with @hono/node-server's
 * request listener, and the limits a server facing the internet needs
 * (issue 10 item 6). Node's defaults hold a slow body for 300 s and check
 * that only every 30 s; a client that stops sending mid-body is cut off
 * here after `requestTimeoutMs`.
 *
 * Proxied uploads: Node cuts a body that has not arrived
 * `requestTimeoutMs` after its request started (`requestTimeout`, checked in
 * C++, no work per request here). A proxied upload — an authorized
 * `/v1/proxy` request the fast path streams to the provider
 * ({@link proxiedUploadOn}) — is taken over at that point and kept while it
 * keeps sending: it is cut after `requestTimeoutMs` without a byte (nginx's
 * `client_body_timeout`), so a large file over a slow link goes through
 * while a stalled one still frees its connection ({@link watchUpload}).
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
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { getRequestListener } from "@hono/node-server";
import type { Hono } from "hono";
import { systemClock, type Clock } from "../domain/clock.js";
import { ALLOW_HEADER } from "../lifecycle/api/target.js";
import type { Logger } from "../telemetry/logger.js";
import { ProblemError } from "./problem.js";
import { fastPathOf, proxiedUploadOn } from "./fastPaths.js";

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
   * The whole request — headers and body — must arrive within this (Node `requestTimeout`; a slow body is cut with
   * 408); a proxied upload still sending then is cut only after this long without a byte ({@link watchUpload}).
   * @defaultValue 30_000
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
  /** The clock lingering closes and proxied uploads past `requestTimeoutMs` are timed on (tests move it instead of waiting). @defaultValue the system clock */
  clock?: Clock;
}

/** Node's answers to a client error, by `err.code` (node:http `socketOnError`); any other code gets 400. */
const CLIENT_ERROR_ANSWERS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n",
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n",
  ERR_HTTP_REQUEST_TIMEOUT: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n",
};
const BAD_REQUEST_ANSWER = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";

/** A connection node:http reports a client error on; its in-flight response is `_httpMessage`. */
type ClientSocket = Socket & { _httpMessage?: ServerResponse | null };

/**
 * What node:http does with a client error when nobody listens for
 * `clientError` (its `socketOnError`, Node 20): Node's short answer for the
 * code — unless the socket is no longer writable or the in-flight response
 * already sent its head — then the socket destroyed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: ClientSocket): void {
  if (socket.writable && !socket._httpMessage?.headersSent) socket.write(CLIENT_ERROR_ANSWERS[err.code ?? ""] ?? BAD_REQUEST_ANSWER);
  socket.destroy(err);
}

/**
 * Keep a proxied upload (on `socket`, its connection) that outlived Node's
 * `requestTimeout` while it keeps coming: checked every `intervalMs`, it is cut — Node's `408` when nothing
 * of the answer was sent yet, the connection closed, the provider call
 * cancelled with it — once no byte came for `timeoutMs`. A pause that is
 * grantkeeper's own (the provider reads slower than the client sends, so
 * the body waits unread in the request's buffer) does not count. Ends when
 * the body has arrived or the connection closed.
 */
function watchUpload(req: IncomingMessage, socket: ClientSocket, clock: Clock, timeoutMs: number, intervalMs: number, logger: Logger | undefined): void {
  let since = clock.now();
  let bytesRead = socket.bytesRead;
  const check = (): void => {
    if (req.complete || socket.destroyed) return;
    const now = clock.now();
    if (socket.bytesRead !== bytesRead || req.readableLength > 0) {
      bytesRead = socket.bytesRead;
      since = now;
    } else if (now - since >= timeoutMs) {
      logger?.debug({ bytesRead }, "cut a proxied upload that stopped sending");
      const err = Object.assign(new Error(`no byte of the request body for ${timeoutMs} ms`), { code: "ERR_HTTP_REQUEST_TIMEOUT" });
      answerClientError(err, socket);
      return;
    }
    clock.setTimeout(check, intervalMs);
  };
  clock.setTimeout(check, intervalMs);
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
  const server: Server = createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks both timeouts only this often (30 s by default): check often enough to keep them.
      connectionsCheckingInterval: checkingInterval(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs)),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      res.prependListener("finish", () => lingerAfterEarlyAnswer(req, limits, clock, options.logger));
      if (fast?.(req, res)) return;
      void handle(req, res);
    },
  );
  // Node reports a request older than requestTimeout once, as a client error: a proxied upload still in progress is
  // kept and watched by its progress from then on; everything else is answered as Node would.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: ClientSocket) => {
    const upload = err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? proxiedUploadOn(socket) : undefined;
    if (upload && !socket.destroyed) {
      options.logger?.debug({ requestTimeoutMs: limits.requestTimeoutMs }, "a proxied upload outlasts server.requestTimeoutSeconds: kept while it keeps sending");
      watchUpload(upload, socket, clock, limits.requestTimeoutMs, checkingInterval(limits.requestTimeoutMs), options.logger);
    } else answerClientError(err, socket);
  });
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
            server.closeAllConnections();
            server.close(() => res());
          }),
      });
    });
  });
}
