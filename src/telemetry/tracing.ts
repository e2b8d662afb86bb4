/**
 * OpenTelemetry tracing (design.md "Observability"). Instrumented code uses
 * the OTel API only (a {@link Tracer} injected through {@link Telemetry});
 * the SDK is loaded by {@link startTracing}, and only when an OTLP endpoint is
 * configured: with no provider registered every span is a no-op.
 *
 * Status rules: a user error (a `UserError` from a handler, a consumer's 4xx,
 * a dead grant the user must reconnect, an upstream auth rejection) is an
 * expected outcome — it is recorded on the span as an exception event and the
 * status stays UNSET, so error-rate views show what operators must act on.
 * A fault (infrastructure, provider outage, misconfiguration, a thrown bug)
 * records the exception and sets ERROR. Attributes carry ids, results and
 * classes, never tokens, secrets or request bodies.
 */
import { SpanStatusCode, trace, type Attributes, type Exception, type Span, type Tracer } from "@opentelemetry/api";
import type { Classification } from "../domain/classify.js";
import type { JobOutcome } from "../domain/jobOutcome.js";
import { isAuthError, isUserError } from "../jobs/errors.js";

/** The instrumentation scope name. */
export const TRACER_NAME = "grantkeeper";

/** Span names. */
export const SpanNames = {
  /** One refresh attempt of one connection (token endpoint call, classification, store write). */
  refresh: "grantkeeper.refresh",
  /** One run of one job: execution and the recorded outcome. */
  jobRun: "grantkeeper.job.run",
  /** The POST of a job to its consumer. */
  jobDeliver: "grantkeeper.job.deliver",
  /** A provider API call through the proxy or a handler's `ctx.fetch` (with its refresh-and-retry on an auth failure). */
  apiCall: "grantkeeper.api.call",
} as const;

/** The tracer instrumented code uses when none is injected: the global provider's (a no-op until one is registered). */
export function defaultTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/**
 * What the OTel API records of any thrown value: name, message and stack.
 * A `code` is left out on purpose — the SDK would report it as
 * `exception.type` instead of the class name; codes go in attributes.
 */
function asException(e: unknown): Exception {
  if (typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string") {
    const { name, message, stack } = e as { name?: unknown; message: string; stack?: unknown };
    return { name: typeof name === "string" ? name : "Error", message, ...(typeof stack === "string" ? { stack } : {}) };
  }
  return { name: "NonError", message: String(e) };
}

/** Record an expected (user-side) failure: an exception event, status left UNSET. */
export function recordUserError(span: Span, e: unknown): void {
  span.recordException(asException(e));
}

/** Record a fault: an exception event and status ERROR. */
export function recordFault(span: Span, e: unknown): void {
  const ex = asException(e) as { message?: string };
  span.recordException(ex as Exception);
  span.setStatus({ code: SpanStatusCode.ERROR, message: ex.message ?? "fault" });
}

/** True for errors a handler throws on purpose for a non-fault outcome (`UserError`, `AuthError`). */
export function isExpectedError(e: unknown): boolean {
  return isUserError(e) || isAuthError(e);
}

/**
 * Run `fn` in a new active span (children nest under it when a context
 * manager is registered). A thrown `UserError`/`AuthError` is recorded
 * without ERROR, anything else as a fault; the error is rethrown and the span
 * always ended.
 */
export function inSpan<T>(tracer: Tracer, name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      if (isExpectedError(e)) recordUserError(span, e);
      else recordFault(span, e);
      throw e;
    } finally {
      span.end();
    }
  });
}

/**
 * Put a job outcome on a span: attributes `grantkeeper.job.outcome` and
 * `grantkeeper.job.code`; `failed` and `auth_failed` as exception events
 * without ERROR; `faulted` as ERROR.
 * @param error what the handler threw, when it threw (else an exception is synthesized from the outcome)
 */
export function recordJobOutcome(span: Span, outcome: JobOutcome, error?: unknown): void {
  span.setAttribute("grantkeeper.job.outcome", outcome.kind);
  if (outcome.kind === "succeeded") return;
  const code = outcome.kind === "auth_failed" ? "auth_failed" : outcome.code;
  span.setAttribute("grantkeeper.job.code", code);
  const name = outcome.kind === "failed" ? "UserError" : outcome.kind === "auth_failed" ? "AuthError" : "JobFault";
  const ex = error ?? { name, message: outcome.message };
  if (outcome.kind === "faulted") recordFault(span, ex);
  else recordUserError(span, ex);
}

/**
 * Put a refresh attempt's result on a span. A dead grant (permanent, scope
 * grant: revoked, expired without a refresh token) is the user's to fix:
 * exception without ERROR. Transient failures and a misconfigured provider
 * are faults: ERROR.
 */
export function recordRefreshResult(span: Span, result: string, verdict: Classification | undefined): void {
  span.setAttributes({ "grantkeeper.refresh.result": result, "grantkeeper.refresh.class": verdict?.class ?? "none", "grantkeeper.refresh.reason": verdict?.reason ?? "ok" });
  if (!verdict || result !== "failed") return;
  span.setAttribute("grantkeeper.refresh.code", verdict.code);
  const ex = { name: "RefreshFailed", message: `refresh failed: ${verdict.class} ${verdict.reason} (${verdict.code})` };
  if (verdict.class === "permanent" && verdict.scope === "grant") recordUserError(span, ex);
  else recordFault(span, ex);
}

/** Options of {@link startTracing}. */
export interface TracingOptions {
  /** OTLP/HTTP endpoint base (`OTEL_EXPORTER_OTLP_ENDPOINT`); spans go to `<base>/v1/traces`. Tracing is off when neither URL is set. */
  otlpEndpoint?: string;
  /** Full OTLP/HTTP traces URL (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); wins over `otlpEndpoint`. */
  otlpTracesUrl?: string;
  /** `service.name` of the exported spans. @defaultValue "grantkeeper" */
  serviceName?: string;
}

/** What {@link startTracing} returns when tracing is on. */
export interface TracingHandle {
  /** Where spans are sent. */
  tracesUrl: string;
  /** Flush buffered spans and unregister the provider. */
  shutdown(): Promise<void>;
}

/**
 * Tracing options from the standard OTel environment variables:
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
 * `OTEL_SERVICE_NAME`; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`
 * turn it off.
 */
export function tracingOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): TracingOptions {
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || "grantkeeper";
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true" || env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === "none") return { serviceName };
  const tracesUrl = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || undefined;
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || undefined;
  return { serviceName, ...(tracesUrl ? { otlpTracesUrl: tracesUrl } : {}), ...(endpoint ? { otlpEndpoint: endpoint } : {}) };
}

/**
 * Register a global `NodeTracerProvider` exporting over OTLP/HTTP in batches,
 * when an endpoint is configured. The SDK is imported only then, so tracing
 * that is off costs nothing but the API's no-op spans.
 * @returns a handle to flush and stop it, or undefined when tracing is off
 * @throws RangeError naming the value when an endpoint is not an absolute http(s) URL
 */
export async function startTracing(options: TracingOptions): Promise<TracingHandle | undefined> {
  const tracesUrl = options.otlpTracesUrl ?? (options.otlpEndpoint !== undefined ? `${options.otlpEndpoint.replace(/\/+$/, "")}/v1/traces` : undefined);
  if (tracesUrl === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(tracesUrl);
  } catch {
    throw new RangeError(`OTLP traces endpoint must be an absolute URL, got ${JSON.stringify(tracesUrl)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new RangeError(`OTLP traces endpoint must be http(s), got ${JSON.stringify(tracesUrl)}`);
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
  ]);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName ?? "grantkeeper" }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl }))],
  });
  provider.register();
  return {
    tracesUrl,
    async shutdown() {
      await provider.shutdown();
      trace.disable();
    },
  };
}
