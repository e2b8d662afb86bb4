/**
 * What instrumented components receive (constructor injection, no module
 * singletons): the instance's {@link Metrics} and an OTel {@link Tracer}.
 */
import type { Tracer } from "@opentelemetry/api";
import { Metrics, type MetricsOptions } from "./metrics.js";
import { defaultTracer } from "./tracing.js";

/** Metrics and tracing of one grantkeeper instance. */
export interface Telemetry {
  metrics: Metrics;
  /** Spans go to the provider behind it; the default, the global provider's, is a no-op until {@link startTracing} registers one. */
  tracer: Tracer;
}

/**
 * A fresh {@link Telemetry}: its own metrics registry, and the global OTel
 * provider's tracer unless one is given.
 */
export function createTelemetry(options: { metrics?: Partial<MetricsOptions>; tracer?: Tracer } = {}): Telemetry {
  return { metrics: new Metrics(options.metrics), tracer: options.tracer ?? defaultTracer() };
}
