/**
 * A consumer of grantkeeper deliveries on 127.0.0.1: records what arrives,
 * verifies `Grantkeeper-Signature`, and answers from a script (default 200).
 */
import { createServer, type IncomingMessage } from "node:http";
import { verifyDeliverySignature } from "../../src/jobs/signatures.js";

/** One delivery as received. */
export interface Received {
  jobId: string;
  body: string;
  attempt: number;
  headers: Record<string, string>;
  signatureValid: boolean;
}

/** What {@link startConsumer} returns. */
export interface Consumer {
  url: string;
  received: Received[];
  /** Queue answers (status, JSON body); when empty, 200. */
  answer(...answers: Array<{ status: number; body?: unknown; headers?: Record<string, string> }>): void;
  /** Verify signatures with this secret (set after the integration is created). */
  secret: string;
  close(): Promise<void>;
}

async function text(req: IncomingMessage): Promise<string> {
  let s = "";
  for await (const c of req) s += c;
  return s;
}

/** Start a consumer. `nowMs` gives the time used to check signature freshness. */
export async function startConsumer(nowMs: () => number = Date.now): Promise<Consumer> {
  const queue: Array<{ status: number; body?: unknown; headers?: Record<string, string> }> = [];
  const c: Consumer = {
    url: "",
    received: [],
    secret: "",
    answer: (...a) => queue.push(...a),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  const server = createServer(async (req, res) => {
    const raw = await text(req);
    const j = JSON.parse(raw) as { jobId: string; body: string; attempt: number; headers: Record<string, string> };
    c.received.push({ jobId: j.jobId, body: j.body, attempt: j.attempt, headers: j.headers, signatureValid: verifyDeliverySignature(c.secret, String(req.headers["grantkeeper-signature"] ?? ""), raw, nowMs()) });
    const a = queue.shift() ?? { status: 200 };
    res.writeHead(a.status, { "content-type": "application/json", ...a.headers });
    res.end(JSON.stringify(a.body ?? {}));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  c.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  return c;
}
