/** Serving the app on a real socket (@hono/node-server). */
import { serve, type ServerType } from "@hono/node-server";
import type { Hono } from "hono";

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
  });
}
