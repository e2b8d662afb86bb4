/**
 * An HTTP reverse proxy on 127.0.0.1 that can be switched at runtime between
 * forwarding traffic and a set of canned failures, for testing how a client
 * copes with a flaky authorization server.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * Behaviour of the proxy for the next requests:
 * - `pass`: forward to the target and stream the answer back;
 * - `503`: 503 JSON `{"error":"temporarily_unavailable"}`;
 * - `html500`: 500 `text/html` `<html><body>Internal error</body></html>`;
 * - `429`: 429 with `Retry-After` (seconds) and JSON `{"error":"slow_down"}`;
 * - `hang`: never answers (until the client gives up or the proxy is closed);
 * - `reset`: destroys the client's socket immediately.
 */
export type FaultMode = 'pass' | '503' | 'html500' | 'hang' | 'reset' | '429';

/** A running fault-injecting proxy; see {@link startFaultProxy}. */
export interface FaultProxy {
  /** Proxy base URL, `http://127.0.0.1:<port>`; request paths are forwarded unchanged. */
  url: string;
  /** Switches behaviour for subsequent requests. `retryAfterSeconds` (default 30) applies to "429". */
  setMode(m: FaultMode, opts?: { retryAfterSeconds?: number }): void;
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
      case 'pass':
        break;
    }

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
        up.pipe(res);
        up.on('error', () => res.destroy());
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
      mode = m;
      retryAfterSeconds = opts?.retryAfterSeconds ?? 30;
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
