/**
 * A token endpoint on 127.0.0.1 that answers from a script, for provider
 * behaviours a certified authorization server never shows (GitHub's 200 with
 * an error body, responses without `expires_in`, unchanged access tokens…).
 */
import { createServer, type IncomingMessage } from "node:http";

/** One scripted answer. */
export interface ScriptedAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** A request the endpoint received, form-decoded. */
export interface SeenRequest {
  params: URLSearchParams;
  authorization: string | undefined;
}

/** What {@link startScriptedTokenEndpoint} returns. */
export interface ScriptedTokenEndpoint {
  /** `http://127.0.0.1:<port>/token` */
  tokenEndpoint: string;
  origin: string;
  /** Queue answers; when the queue is empty the endpoint answers 500. */
  push(...answers: ScriptedAnswer[]): void;
  requests: SeenRequest[];
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  let s = "";
  for await (const chunk of req) s += chunk;
  return s;
}

/** Start the endpoint on an ephemeral 127.0.0.1 port. */
export async function startScriptedTokenEndpoint(): Promise<ScriptedTokenEndpoint> {
  const queue: ScriptedAnswer[] = [];
  const requests: SeenRequest[] = [];
  const server = createServer(async (req, res) => {
    requests.push({ params: new URLSearchParams(await readBody(req)), authorization: req.headers.authorization });
    const a = queue.shift() ?? { status: 500, body: { error: "script_exhausted" } };
    const text = typeof a.body === "string" ? a.body : JSON.stringify(a.body);
    res.writeHead(a.status, { "content-type": typeof a.body === "string" ? "text/html" : "application/json", ...a.headers });
    res.end(text);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    tokenEndpoint: `${origin}/token`,
    origin,
    push: (...a) => queue.push(...a),
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
