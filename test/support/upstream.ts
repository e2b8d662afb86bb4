/**
 * A provider API on 127.0.0.1 for proxy and `ctx.fetch` tests, recording
 * what reached it, and a raw HTTP/1.1 client that sends exactly what a test
 * says (paths are not normalized, hop-by-hop headers are sent as given).
 */
import { createHash } from "node:crypto";
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { connect } from "node:net";

/** A request the upstream received. */
export interface SeenUpstreamRequest {
  method: string;
  /** The request target exactly as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The headers as received, name and value in turn (node:http's `headers` drops a field named `__proto__`). */
  rawHeaders: string[];
  /** Body length and SHA-256 (hex), read only when the handler did not take the body itself. */
  bodyBytes?: number;
  bodySha256?: string;
  body?: string;
}

/** What {@link startUpstream} returns. */
export interface Upstream {
  origin: string;
  seen: SeenUpstreamRequest[];
  /** Replace the handler (default: 200 JSON echo of method and url). */
  handle(fn: UpstreamHandler): void;
  close(): Promise<void>;
}

/** Answers one request; `seen` is already recorded (the body is read first unless `takeBody` is set). */
export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, seen: SeenUpstreamRequest) => void | Promise<void>;

/** Start a recording upstream. @param opts.takeBody leave the body to the handler (streaming tests) */
export async function startUpstream(opts: { takeBody?: boolean } = {}): Promise<Upstream> {
  const seen: SeenUpstreamRequest[] = [];
  let handler: UpstreamHandler = (req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ method: req.method, url: req.url }));
  };
  const server = createServer(async (req, res) => {
    const s: SeenUpstreamRequest = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders };
    seen.push(s);
    if (!opts.takeBody) {
      const hash = createHash("sha256");
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of req) {
        hash.update(c as Buffer);
        n += (c as Buffer).length;
        if (n <= 65_536) chunks.push(c as Buffer);
      }
      s.bodyBytes = n;
      s.bodySha256 = hash.digest("hex");
      if (n <= 65_536) s.body = Buffer.concat(chunks).toString("utf8");
    }
    await handler(req, res, s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    origin: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    handle: (fn) => (handler = fn),
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

/** An answer read whole. */
export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Send one request with node:http, target and headers exactly as given.
 * @param origin `http://127.0.0.1:port`
 */
export function rawRequest(origin: string, method: string, target: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawAnswer> {
  const u = new URL(origin);
  // node:http sends a DELETE or OPTIONS body without framing unless told its length.
  const framed = body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-length" || h.toLowerCase() === "transfer-encoding") ? { ...headers, "content-length": String(Buffer.byteLength(body)) } : headers;
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path: target, headers: framed, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Write `text` on a fresh socket and read until the server closes it (for CONNECT and other targets node:http will not send). */
export function rawExchange(origin: string, text: string): Promise<string> {
  const u = new URL(origin);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => s.write(text));
    let d = "";
    s.setEncoding("latin1");
    s.on("data", (c: string) => (d += c));
    s.on("end", () => resolve(d));
    s.on("close", () => resolve(d));
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? resolve(d) : reject(e)));
  });
}
