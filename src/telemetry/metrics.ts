/**
 * Prometheus metrics (design.md "Observability"), on prom-client with a
 * registry per instance: several grantkeeper instances may share a process
 * (tests, the library embedded twice), and the global default registry would
 * mix their series or throw on re-registration.
 *
 * Label values come from closed sets (results, classes, reasons, outcomes,
 * states) or from configuration (provider ids, alert sink names): never a
 * connection, job or integration id, so the number of series stays bounded.
 * Store-backed gauges (jobs by state, connections by state, open breakers,
 * the oldest finished row per table)
 * are read at scrape time by `collect()` callbacks, never updated per event,
 * so they are right across instances sharing a store.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { CONNECTION_STATES } from "../domain/states.js";
import { JOB_STATES } from "../domain/states.js";

/** Where the scrape-time gauges read from (the store's repositories). */
export interface MetricsSources {
  /** Jobs by state (`JobRepository.countByState`). */
  jobsByState(): Promise<Record<string, number>>;
  /** Connections by state (`ConnectionRepository.countByState`). */
  connectionsByState(): Promise<Record<string, number>>;
  /** Delivery targets whose breaker is open. */
  openBreakers(): Promise<number>;
  /**
   * Age in seconds of the oldest row retention will delete once its window passes, per table
   * (`jobs`, `alerts`, `connection_events`, `oauth_states`, `connect_sessions`); 0 for a table with none.
   * Optional: without it the gauge exports nothing.
   */
  retentionOldestAgeSeconds?(): Promise<Record<string, number>>;
  /** Provider token endpoint breakers the store has seen, by provider id: true when open. Optional: without it the gauge exports nothing. */
  providerBreakers?(): Promise<Record<string, boolean>>;
}

/** Options of {@link Metrics}. */
export interface MetricsOptions {
  /** Also export prom-client's default process metrics (CPU, memory, event loop lag, GC). @defaultValue false */
  processMetrics: boolean;
}

/** Defaults of {@link MetricsOptions}. */
export const defaultMetricsOptions: Readonly<MetricsOptions> = Object.freeze({ processMetrics: false });

/** Result of one refresh attempt, as the "refresh attempt" log line says it in `result` (an attempt is never `skipped` in practice; the type mirrors `RefreshResult`). */
export type RefreshAttemptResult = "refreshed" | "adopted" | "failed" | "skipped";
/** Failure class of an attempt; `none` for a success. */
export type RefreshClassLabel = "none" | "transient" | "permanent";
/** Job run outcome kinds (design.md "Jobs and delivery"). */
export type JobRunOutcome = "succeeded" | "failed" | "faulted" | "auth_failed";

/** One scrape's reads of the store; each may fail alone. */
interface StoreSnapshot {
  jobs?: PromiseSettledResult<Record<string, number>>;
  connections?: PromiseSettledResult<Record<string, number>>;
  breakers?: PromiseSettledResult<number>;
  retention?: PromiseSettledResult<Record<string, number>>;
  providerBreakers?: PromiseSettledResult<Record<string, boolean>>;
}

/** Seconds; the default refresh timeout is 30 s. */
const DURATION_BUCKETS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds before expiry; the default margin is 300 s minus up to 30 s of jitter. Negative: late. */
const EXPIRY_LEAD_BUCKETS_SECONDS = [-3600, -300, -60, 0, 60, 120, 240, 270, 300, 600, 1800, 3600, 86_400];
/** Seconds, from one retry (seconds) to days of active recovery. */
const OUTAGE_BUCKETS_SECONDS = [1, 10, 60, 300, 900, 1800, 3600, 7200, 14_400, 43_200, 86_400, 259_200];

/**
 * The metrics of one grantkeeper instance. Components call the event methods;
 * `GET /metrics` calls {@link Metrics.render}.
 */
export class Metrics {
  /** This instance's registry (never prom-client's global one). */
  readonly registry = new Registry();
  private sources: MetricsSources | undefined;
  private snapshotInFlight: Promise<StoreSnapshot> | undefined;

  private readonly refreshAttempts = new Counter({ name: "grantkeeper_refresh_attempts_total", help: "Refresh attempts by result (refreshed, adopted, failed), failure class (none, transient, permanent) and reason.", labelNames: ["result", "class", "reason"] as const, registers: [this.registry] });
  private readonly refreshDuration = new Histogram({ name: "grantkeeper_refresh_duration_seconds", help: "Duration of token endpoint calls, by failure class (none for a success).", labelNames: ["class"] as const, buckets: DURATION_BUCKETS_SECONDS, registers: [this.registry] });
  private readonly expiryLead = new Histogram({ name: "grantkeeper_refresh_expiry_lead_seconds", help: "Old access token's expiry minus the time of its successful refresh; negative means the token had already expired (late).", buckets: EXPIRY_LEAD_BUCKETS_SECONDS, registers: [this.registry] });
  private readonly recoveryActivations = new Counter({ name: "grantkeeper_recovery_activations_total", help: "Connections that exhausted their retries and entered active recovery.", registers: [this.registry] });
  private readonly degraded = new Histogram({ name: "grantkeeper_connection_degraded_seconds", help: "Time a connection spent degraded, from its first failed refresh to the successful one; observed on recovery.", buckets: OUTAGE_BUCKETS_SECONDS, registers: [this.registry] });
  private readonly recovery = new Histogram({ name: "grantkeeper_recovery_duration_seconds", help: "Time from entering active recovery to the successful refresh that ended it; observed on recovery.", buckets: OUTAGE_BUCKETS_SECONDS, registers: [this.registry] });
  private readonly unauthorized = new Counter({ name: "grantkeeper_api_unauthorized_total", help: "Auth failures (401, or a match of the provider's apiAuthFailure) answered by provider APIs called with a grantkeeper token (proxy and ctx.fetch), by provider.", labelNames: ["provider"] as const, registers: [this.registry] });
  private readonly authRejected = new Counter({ name: "grantkeeper_api_auth_rejected_total", help: "API calls whose auth failure went back to the caller (the retry with a refreshed token failed too, or the body could not be sent again), by provider.", labelNames: ["provider"] as const, registers: [this.registry] });
  private readonly jobRuns = new Counter({ name: "grantkeeper_job_runs_total", help: "Job runs by outcome (succeeded, failed = user error, faulted, auth_failed).", labelNames: ["outcome"] as const, registers: [this.registry] });
  private readonly jobsDead = new Counter({ name: "grantkeeper_jobs_dead_total", help: "Jobs that exhausted their attempts.", registers: [this.registry] });
  private readonly providerBreakerTransitions = new Counter({ name: "grantkeeper_provider_breaker_transitions_total", help: "Provider token endpoint breaker transitions, by new state (open, closed).", labelNames: ["state"] as const, registers: [this.registry] });
  private readonly breakerTransitions = new Counter({ name: "grantkeeper_breaker_transitions_total", help: "Delivery breaker transitions, by new state (open, closed).", labelNames: ["state"] as const, registers: [this.registry] });
  private readonly alerts = new Counter({ name: "grantkeeper_alerts_sent_total", help: "Alerts handed to a sink, by alert kind and sink name.", labelNames: ["kind", "sink"] as const, registers: [this.registry] });
  private readonly retentionDeletedRows = new Counter({ name: "grantkeeper_retention_deleted_rows_total", help: "Rows deleted by retention sweeps (docs/operations.md \"Retention\"), by table.", labelNames: ["table"] as const, registers: [this.registry] });
  private readonly alertFailures = new Counter({ name: "grantkeeper_alert_send_failures_total", help: "Alerts a sink failed to send, by alert kind and sink name.", labelNames: ["kind", "sink"] as const, registers: [this.registry] });
  private readonly collectErrors = new Counter({
    name: "grantkeeper_metrics_collect_errors_total",
    help: "Scrapes where a store-backed gauge could not be read (its series are left out of that scrape).",
    labelNames: ["gauge"] as const,
    registers: [this.registry],
    collect: async () => {
      const s = await this.storeSnapshot();
      for (const [gauge, r] of [["jobs", s.jobs], ["connections", s.connections], ["breakers_open", s.breakers], ["retention_oldest", s.retention], ["provider_breaker_open", s.providerBreakers]] as const) if (r?.status === "rejected") this.collectErrors.inc({ gauge });
    },
  });

  /**
   * @param options see {@link MetricsOptions}
   */
  constructor(options: Partial<MetricsOptions> = {}) {
    const o = { ...defaultMetricsOptions, ...options };
    const self = this;
    new Gauge({
      name: "grantkeeper_jobs",
      help: "Jobs by state, read from the store at scrape time (queue depth: state=queued; parked: state=parked).",
      labelNames: ["state"] as const,
      registers: [this.registry],
      async collect() {
        fill(this, JOB_STATES, (await self.storeSnapshot()).jobs);
      },
    });
    new Gauge({
      name: "grantkeeper_connections",
      help: "Connections by state, read from the store at scrape time.",
      labelNames: ["state"] as const,
      registers: [this.registry],
      async collect() {
        fill(this, CONNECTION_STATES, (await self.storeSnapshot()).connections);
      },
    });
    new Gauge({
      name: "grantkeeper_breakers_open",
      help: "Delivery targets whose breaker is open, read from the store at scrape time (0 also when the read failed: see grantkeeper_metrics_collect_errors_total).",
      registers: [this.registry],
      async collect() {
        this.reset();
        const r = (await self.storeSnapshot()).breakers;
        if (r?.status === "fulfilled") this.set(r.value);
      },
    });
    new Gauge({
      name: "grantkeeper_retention_oldest_finished_age_seconds",
      help: "Age of the oldest finished row retention will delete once its window passes, by table, read from the store at scrape time (0: none). Above its window plus a sweep interval, sweeps are not keeping up.",
      labelNames: ["table"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const r = (await self.storeSnapshot()).retention;
        if (r?.status === "fulfilled") for (const [table, age] of Object.entries(r.value)) this.set({ table }, age);
      },
    });
    new Gauge({
      name: "grantkeeper_provider_breaker_open",
      help: "1 while a provider's token endpoint breaker is open (refreshes deferred, one probe per cooldown), 0 when closed; read from the store at scrape time.",
      labelNames: ["provider"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const r = (await self.storeSnapshot()).providerBreakers;
        if (r?.status === "fulfilled") for (const [provider, open] of Object.entries(r.value)) this.set({ provider }, open ? 1 : 0);
      },
    });
    if (o.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Connect the scrape-time gauges to a store. Until then they export nothing. A later call replaces the sources. */
  attach(sources: MetricsSources): void {
    this.sources = sources;
  }

  /** Content-Type of {@link Metrics.render}'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for `GET /metrics`; runs the scrape-time reads. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** One refresh attempt (one per "refresh attempt" log line). */
  refreshAttempt(result: RefreshAttemptResult, cls: RefreshClassLabel, reason: string): void {
    this.refreshAttempts.inc({ result, class: cls, reason });
  }

  /** One token endpoint call took `durationSeconds`. */
  refreshCallDuration(cls: RefreshClassLabel, durationSeconds: number): void {
    this.refreshDuration.observe({ class: cls }, durationSeconds);
  }

  /** A token was replaced `leadSeconds` before the old one expired (negative: after). */
  refreshExpiryLead(leadSeconds: number): void {
    this.expiryLead.observe(leadSeconds);
  }

  /** A connection entered active recovery. */
  recoveryActivated(): void {
    this.recoveryActivations.inc();
  }

  /**
   * A degraded connection refreshed successfully.
   * @param degradedSeconds time since its first failed attempt
   * @param activeRecoverySeconds time since it entered active recovery, when it did
   */
  connectionRecovered(degradedSeconds: number, activeRecoverySeconds?: number): void {
    this.degraded.observe(Math.max(0, degradedSeconds));
    if (activeRecoverySeconds !== undefined) this.recovery.observe(Math.max(0, activeRecoverySeconds));
  }

  /** A provider API answered an auth failure (401 or an `apiAuthFailure` match) to a call made with a grantkeeper token. */
  apiUnauthorized(providerId: string): void {
    this.unauthorized.inc({ provider: providerId });
  }

  /** An API call's auth failure went back to its caller (after the refresh and retry, or without a retry for a streamed body). */
  apiAuthRejected(providerId: string): void {
    this.authRejected.inc({ provider: providerId });
  }

  /** A job run ended with `outcome`. */
  jobRun(outcome: JobRunOutcome): void {
    this.jobRuns.inc({ outcome });
  }

  /** A job exhausted its attempts. */
  jobDead(): void {
    this.jobsDead.inc();
  }

  /** A provider's token endpoint breaker opened or closed. */
  providerBreakerTransition(state: "open" | "closed"): void {
    this.providerBreakerTransitions.inc({ state });
  }

  /** A delivery target's breaker opened or closed. */
  breakerTransition(state: "open" | "closed"): void {
    this.breakerTransitions.inc({ state });
  }

  /**
   * An alert was handed to a sink (called by the alerts module).
   * @param kind the alert kind (a closed set)
   * @param sink the sink's configured name
   */
  alertSent(kind: string, sink: string): void {
    this.alerts.inc({ kind, sink });
  }

  /**
   * A retention sweep deleted `rows` rows of `table` (one of `RETENTION_TABLES`, src/domain/retention.ts).
   * @param rows a count ≥ 0
   */
  retentionDeleted(table: string, rows: number): void {
    this.retentionDeletedRows.inc({ table }, rows);
  }

  /** A sink failed to send an alert. */
  alertSendFailed(kind: string, sink: string): void {
    this.alertFailures.inc({ kind, sink });
  }

  /**
   * The store reads of the scrape in progress. prom-client calls every
   * metric's collect() before awaiting any, so they all share one read, and
   * the error counter sees this scrape's failures in this scrape.
   */
  private storeSnapshot(): Promise<StoreSnapshot> {
    if (!this.snapshotInFlight) {
      const sources = this.sources;
      this.snapshotInFlight = (async (): Promise<StoreSnapshot> => {
        if (!sources) return {};
        const [jobs, connections, breakers, retention, providerBreakers] = await Promise.allSettled([
          sources.jobsByState(),
          sources.connectionsByState(),
          sources.openBreakers(),
          sources.retentionOldestAgeSeconds?.(),
          sources.providerBreakers?.(),
        ]);
        return {
          jobs,
          connections,
          breakers,
          ...(sources.retentionOldestAgeSeconds ? { retention: retention as PromiseSettledResult<Record<string, number>> } : {}),
          ...(sources.providerBreakers ? { providerBreakers: providerBreakers as PromiseSettledResult<Record<string, boolean>> } : {}),
        };
      })().finally(() => {
        this.snapshotInFlight = undefined;
      });
    }
    return this.snapshotInFlight;
  }
}

/**
 * Set a by-state gauge from one store read. A failed read leaves the series
 * out (a store that cannot be read must not fail the whole scrape); every
 * known state is exported, as 0 when absent, so a series does not vanish
 * when its count drops to nothing.
 */
function fill(gauge: Gauge<"state">, known: readonly string[], read: PromiseSettledResult<Record<string, number>> | undefined): void {
  gauge.reset();
  if (read?.status !== "fulfilled") return;
  for (const state of known) gauge.set({ state }, 0);
  for (const [state, n] of Object.entries(read.value)) gauge.set({ state }, n);
}
