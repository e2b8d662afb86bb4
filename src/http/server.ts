/** Serving the app on a real socket (@hono/node-server). */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { serve, type ServerType } from "@hono/node-server";
import type { Hono } from "hono";
import { ALLOW_HEADER } from "../lifecycle/api/target.js";
import { ProblemError } from "./problem.js";

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

/** A listening server. */
export interface RunningServer {
  /** `http://host:port` actually bound (port 0 resolves to the ephemeral port). */
  url: string;
  port: number;
  /** Stop accepting, close idle connections, resolve when closed. */
  close(): Promise<void>;
}

/**
 * Listen on `host:port`.
 * @param port 0 for an ephemeral port
 * @throws the listen error (e.g. EADDRINUSE) with its code
 */
export function listen(app: Hono, host: string, port: number): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    let server: ServerType;
    const onError = (e: Error) => reject(e);
    server = serve({ fetch: app.fetch, hostname: host, port }, (info) => {
      server.off("error", onError);
      const h = host.includes(":") ? `[${host}]` : host;
      resolve({
        url: `http://${h}:${info.port}`,
        port: info.port,
        close: () =>
          new Promise<void>((res) => {
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
            server.close(() => res());
          }),
      });
    });
    server.once("error", onError);
    server.on("connect", refuseConnect);
  });
}
