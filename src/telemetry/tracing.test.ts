import { SpanStatusCode } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { classifyRefreshFailure } from "../domain/classify.js";
import { AuthError, UserError } from "../jobs/errors.js";
import { inSpan, recordJobOutcome, recordRefreshResult, startTracing, tracingOptionsFromEnv } from "./tracing.js";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer("grantkeeper");

const only = () => {
  const spans = exporter.getFinishedSpans();
  expect(spans).toHaveLength(1);
  return spans[0]!;
};
const exceptions = (span: ReturnType<typeof only>) => span.events.filter((e) => e.name === "exception");

describe("tracing helpers", () => {
  beforeEach(() => exporter.reset());
  afterAll(() => provider.shutdown());

  it("a UserError thrown in a span is an exception event without ERROR status, and is rethrown", async () => {
    await expect(inSpan(tracer, "t", {}, async () => { throw new UserError("bad record", "invalid_record"); })).rejects.toThrow("bad record");
    const span = only();
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(exceptions(span)[0]!.attributes).toMatchObject({ "exception.type": "UserError", "exception.message": "bad record" });
  });

  it("an AuthError is expected too; any other throw is a fault (ERROR)", async () => {
    await expect(inSpan(tracer, "t", {}, async () => { throw new AuthError("rejected", "conn_x"); })).rejects.toThrow();
    expect(only().status.code).toBe(SpanStatusCode.UNSET);
    exporter.reset();
    await expect(inSpan(tracer, "t", {}, async () => { throw new Error("db down"); })).rejects.toThrow();
    const span = only();
    expect(span.status).toMatchObject({ code: SpanStatusCode.ERROR, message: "db down" });
    expect(exceptions(span)).toHaveLength(1);
  });

  it("job outcomes: failed and auth_failed record an exception only; faulted sets ERROR; succeeded neither", async () => {
    const cases = [
      [{ kind: "succeeded" }, SpanStatusCode.UNSET, 0],
      [{ kind: "failed", code: "http_400", message: "consumer answered 400" }, SpanStatusCode.UNSET, 1],
      [{ kind: "auth_failed", message: "rejected" }, SpanStatusCode.UNSET, 1],
      [{ kind: "faulted", code: "http_503", message: "consumer answered 503" }, SpanStatusCode.ERROR, 1],
    ] as const;
    for (const [outcome, status, events] of cases) {
      exporter.reset();
      await inSpan(tracer, "t", {}, async (span) => recordJobOutcome(span, outcome));
      const span = only();
      expect(span.status.code, outcome.kind).toBe(status);
      expect(exceptions(span), outcome.kind).toHaveLength(events);
      expect(span.attributes["grantkeeper.job.outcome"]).toBe(outcome.kind);
    }
  });

  it("refresh results: a dead grant is the user's (no ERROR); transient and provider-level failures are faults", async () => {
    const run = async (result: string, verdict?: ReturnType<typeof classifyRefreshFailure>) => {
      exporter.reset();
      await inSpan(tracer, "t", {}, async (span) => recordRefreshResult(span, result, verdict));
      return only();
    };
    const dead = await run("failed", classifyRefreshFailure({ kind: "http", status: 400, error: "invalid_grant", json: true }));
    expect(dead.status.code).toBe(SpanStatusCode.UNSET);
    expect(exceptions(dead)).toHaveLength(1);
    expect(dead.attributes).toMatchObject({ "grantkeeper.refresh.class": "permanent", "grantkeeper.refresh.reason": "invalid_grant" });
    expect((await run("failed", classifyRefreshFailure({ kind: "http", status: 503, json: false }))).status.code).toBe(SpanStatusCode.ERROR);
    expect((await run("failed", classifyRefreshFailure({ kind: "http", status: 401, error: "invalid_client", json: true }))).status.code).toBe(SpanStatusCode.ERROR);
    const ok = await run("refreshed");
    expect(ok.status.code).toBe(SpanStatusCode.UNSET);
    expect(ok.attributes).toMatchObject({ "grantkeeper.refresh.result": "refreshed", "grantkeeper.refresh.class": "none" });
  });
});

describe("tracing setup", () => {
  it("is off unless an OTLP endpoint is configured", async () => {
    expect(tracingOptionsFromEnv({})).toEqual({ serviceName: "grantkeeper" });
    expect(await startTracing(tracingOptionsFromEnv({}))).toBeUndefined();
    expect(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "true" })).toEqual({ serviceName: "grantkeeper" });
    expect(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_TRACES_EXPORTER: "none" })).toEqual({ serviceName: "grantkeeper" });
    expect(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/t", OTEL_SERVICE_NAME: "gk-eu" })).toEqual({
      serviceName: "gk-eu",
      otlpEndpoint: "http://c:4318",
      otlpTracesUrl: "http://c:4318/t",
    });
  });

  it("refuses an endpoint that is not an absolute http(s) URL, naming it", async () => {
    await expect(startTracing({ otlpEndpoint: "collector:4318" })).rejects.toThrow(RangeError);
    await expect(startTracing({ otlpTracesUrl: "ftp://collector/v1/traces" })).rejects.toThrow(/ftp:\/\/collector/);
  });
});
