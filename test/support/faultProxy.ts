/**
 * An HTTP reverse proxy on 127.0.0.1 that can be switched at runtime between
 * forwarding traffic and a set of canned failures, for testing how a client
 * copes with a flaky authorization server.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * Behaviour of the proxy for the next requests:
 * - `pass`: forward to the target and stream the answer back;
 * - `503`: 503 JSON `{"error":"temporarily_unavailable"}`;
 * - `html500`: 500 `text/html` `<html><body>Internal error</body></html>`;
 * - `429`: 429 with `Retry-After` (seconds) and JSON `{"error":"slow_down"}`;
 * - `hang`: never answers (until the client gives up or the proxy is closed);
 * - `reset`: destroys the client's socket immediately;
 * - `slowBody`: answers the status line and headers at once, then trickles the
 *   body in small chunks spread over {@link SlowBody.durationMs}: the target's
 *   answer (forwarded, its headers sent as soon as they arrive), or a canned
 *   one ({@link SlowBody.canned}). A client whose timeout covers only the
 *   headers hangs here; one whose timeout covers the body gives up in time.
 */
export type FaultMode = 'pass' | '503' | 'html500' | 'hang' | 'reset' | '429' | 'slowBody';

/** Options of the `slowBody` mode. */
export interface SlowBody {
  /** From the headers to the last byte of the body, in milliseconds. */
  durationMs: number;
  /**
   * A canned JSON answer instead of the target's (e.g. `503 {"error":"temporarily_unavailable"}`,
   * or a `200` token response that arrives too late). Absent: the request is forwarded.
   */
  canned?: { status: number; body: unknown };
  /** Body chunks, at most one byte each for a short body. @defaultValue 16 */
  chunks?: number;
}

/** Options of {@link FaultProxy.setMode}. */
export interface FaultModeOptions {
  /** Seconds in the `Retry-After` of the "429" mode. @defaultValue 30 */
  retryAfterSeconds?: number;
  /** Required for the `slowBody` mode. */
  slowBody?: SlowBody;
}

/** A running fault-injecting proxy; see {@link startFaultProxy}. */
export interface FaultProxy {
  /** Proxy base URL, `http://127.0.0.1:<port>`; request paths are forwarded unchanged. */
  url: string;
  /**
   * Switches behaviour for subsequent requests.
   * @throws RangeError for `slowBody` without `opts.slowBody`, or with a negative duration
   */
  setMode(m: FaultMode, opts?: FaultModeOptions): void;
  /** Number of requests received so far, in any mode. */
  requests(): number;
  /** Stops the proxy, destroying every open (including hanging) connection. */
  close(): Promise<void>;
}

/** Connection-level headers that must not be forwarded by a proxy (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
]);

function forwardable(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

/**
 * Send `body` to `res` in `chunks` pieces, the last one `durationMs` after
 * the call (the headers must already be out). Stops when the client goes away.
 */
function trickle(res: ServerResponse, body: Buffer, durationMs: number, chunks: number): void {
  const size = Math.max(1, Math.ceil(body.length / Math.max(1, chunks)));
  // Every piece non-empty, so the last byte (what a Content-Length reader waits for) comes at the end.
  const n = Math.max(1, Math.ceil(body.length / size));
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < n; i++) {
    timers.push(
      setTimeout(() => {
        if (res.destroyed) return;
        const piece = body.subarray(i * size, (i + 1) * size);
        if (i === n - 1) res.end(piece);
        else res.write(piece);
      }, Math.round(((i + 1) * durationMs) / n)),
    );
  }
  res.on('close', () => timers.forEach(clearTimeout));
}

/**
 * Starts a reverse proxy on 127.0.0.1 (ephemeral port) in front of
 * `targetOrigin` (e.g. an auth server issuer). Starts in "pass" mode.
 */
export async function startFaultProxy(targetOrigin: string): Promise<FaultProxy> {
  const target = new URL(targetOrigin);
  const basePath = target.pathname.replace(/\/$/, '');
  const agent = new Agent({ keepAlive: false });
  const sockets = new Set<Socket>();
  let mode: FaultMode = 'pass';
  let retryAfterSeconds = 30;
  let slowBody: SlowBody | undefined;
  let count = 0;

  const server = createServer((req, res) => {
    count += 1;
    const json = (status: number, body: unknown, extra: OutgoingHttpHeaders = {}): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
      res.end(text);
    };
    switch (mode) {
      case '503':
        json(503, { error: 'temporarily_unavailable' });
        return;
      case '429':
        json(429, { error: 'slow_down' }, { 'retry-after': String(retryAfterSeconds) });
        return;
      case 'html500': {
        const html = '<html><body>Internal error</body></html>';
        res.writeHead(500, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(html) });
        res.end(html);
        return;
      }
      case 'hang':
        req.resume(); // drain the body so the client is not blocked uploading, but never answer
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'slowBody':
        if (slowBody?.canned) {
          req.resume();
          const text = Buffer.from(JSON.stringify(slowBody.canned.body));
          res.writeHead(slowBody.canned.status, { 'content-type': 'application/json', 'content-length': text.length });
          res.flushHeaders();
          trickle(res, text, slowBody.durationMs, slowBody.chunks ?? 16);
          return;
        }
        break;
      case 'pass':
        break;
    }
    // Read at the request: a mode switched while the upstream answers does not change this answer.
    const slow = mode === 'slowBody' ? slowBody : undefined;

    const upstream = httpRequest(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: `${basePath}${req.url ?? '/'}`,
        headers: { ...forwardable(req.headers), host: target.host },
        agent,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardable(up.headers));
        up.on('error', () => res.destroy());
        if (!slow) {
          up.pipe(res);
          return;
        }
        // Headers now, the body (read whole first: token responses are small) trickled over the duration.
        res.flushHeaders();
        const parts: Buffer[] = [];
        up.on('data', (c: Buffer) => parts.push(c));
        up.on('end', () => trickle(res, Buffer.concat(parts), slow.durationMs, slow.chunks ?? 16));
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) json(502, { error: 'bad_gateway', error_description: `fault proxy: ${err.message}` });
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });

  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A "reset" client or an aborted "hang" can surface as socket errors; they are expected here.
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    setMode(m, opts) {
      if (m === 'slowBody' && (opts?.slowBody === undefined || !(opts.slowBody.durationMs >= 0))) {
        throw new RangeError(`slowBody needs opts.slowBody.durationMs >= 0, got ${JSON.stringify(opts?.slowBody)}`);
      }
      mode = m;
      retryAfterSeconds = opts?.retryAfterSeconds ?? 30;
      slowBody = opts?.slowBody;
    },
    requests: () => count,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        agent.destroy();
      }),
  };
}
