/**
 * `startTracing` with an OTLP/HTTP endpoint exports grantkeeper's spans to
 * it (here a receiver on 127.0.0.1 that records what it is sent), and
 * `shutdown()` flushes them.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { context, propagation, trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpanNames, startTracing, TRACER_NAME } from "./tracing.js";

describe("OTLP export", () => {
  let receiver: Server;
  let origin: string;
  const received: Array<{ path: string; headers: IncomingHttpHeaders; body: Buffer }> = [];

  beforeAll(async () => {
    receiver = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      received.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    origin = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    trace.disable();
    context.disable();
    propagation.disable();
    await new Promise((r) => receiver?.close(r));
  });

  it("sends spans to <endpoint>/v1/traces with the service name, flushed on shutdown", async () => {
    const handle = await startTracing({ otlpEndpoint: `${origin}/`, serviceName: "gk-otlp-test" });
    expect(handle?.tracesUrl).toBe(`${origin}/v1/traces`);
    trace.getTracer(TRACER_NAME).startActiveSpan(SpanNames.refresh, { attributes: { "grantkeeper.provider.id": "acme" } }, (span) => span.end());
    await handle!.shutdown();
    expect(received).toHaveLength(1);
    expect(received[0]!.path).toBe("/v1/traces");
    const body = received[0]!.body.toString("latin1");
    expect(body).toContain("gk-otlp-test");
    expect(body).toContain(SpanNames.refresh);
    expect(body).toContain("grantkeeper.provider.id");
  });
});
