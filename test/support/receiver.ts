/** An HTTP receiver on 127.0.0.1 that records raw requests and answers from a script (default 200). */
import { createServer } from "node:http";

/** One request as received. */
export interface ReceivedRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** What {@link startReceiver} returns. */
export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  /** Answer the next requests with these statuses; when empty, 200. */
  answer(...statuses: number[]): void;
  close(): Promise<void>;
}

/** Start a receiver. */
export async function startReceiver(): Promise<Receiver> {
  const queue: number[] = [];
  const requests: ReceivedRequest[] = [];
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    requests.push({ path: req.url ?? "/", headers: req.headers, body });
    res.writeHead(queue.shift() ?? 200, { "content-type": "text/plain" });
    res.end("ok");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    requests,
    answer: (...s) => queue.push(...s),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
