/**
 * What a library user passes to `createGrantkeeper` (src/grantkeeper.ts):
 * the store, the keys, the providers to define at start, and the policies of
 * every part, each with its defaults and units.
 */
import type { Clock } from "./domain/clock.js";
import type { RefreshPolicy } from "./domain/policy.js";
import type { IntegrationPolicy } from "./integrations/service.js";
import type { ApiClientOptions } from "./lifecycle/api/authorizedFetch.js";
import type { WorkerOptions } from "./jobs/workerTypes.js";
import type { BreakerPolicy } from "./domain/breaker.js";
import type { SinkConfig } from "./alerts/sinks.js";
import type { EpisodePolicy } from "./domain/alertEpisodes.js";
import type { SchedulerOptions } from "./lifecycle/scheduler.js";
import type { ProviderInput } from "./providers/definition.js";
import type { Logger } from "./telemetry/logger.js";
import type { RetentionPolicy } from "./domain/retention.js";
import type { Telemetry } from "./telemetry/telemetry.js";

/** Options of {@link createGrantkeeper}. */
export interface GrantkeeperOptions {
  /** `sqlite:<path>` or `postgres://…`. @defaultValue "sqlite:./data/grantkeeper.db" */
  databaseUrl?: string;
  /** 32 bytes, base64 (or a Buffer). Required: tokens are encrypted at rest. */
  encryptionKey: string | Buffer;
  /** Older keys still accepted for decryption while rotating. */
  retiredEncryptionKeys?: Array<string | Buffer>;
  /** Providers to define (or redefine) at start, by id. */
  providers?: Record<string, ProviderInput>;
  /** Refresh policy in milliseconds; defaults of design.md. */
  refresh?: Partial<RefreshPolicy>;
  scheduler?: Partial<SchedulerOptions>;
  /** Integration policy. @defaultValue `{ resetOnReauth: ["ERROR"], parkWhenDisabled: true }` */
  integrations?: Partial<IntegrationPolicy>;
  /** Job queue tuning (milliseconds). */
  jobs?: Partial<Omit<WorkerOptions, "parkWhenDisabled">> & { maxBodyBytes?: number };
  /**
   * Inbound webhooks: how long a rotated-out secret is still accepted beside
   * the new one (ms; config `webhook.secretOverlapSeconds`, Stripe's practice).
   * @defaultValue `{ secretOverlapMs: 86 400 000 }`
   */
  webhook?: { secretOverlapMs?: number };
  /**
   * Per delivery target and per provider token endpoint breaker (design.md "Breakers and cooldowns").
   * @defaultValue `{ maxConsecutiveFailures: 3, cooldownMs: 120 000 }`
   */
  breaker?: Partial<BreakerPolicy>;
  /**
   * Alert episodes and sinks. `reconnectUrl` is a URL template on the host app
   * (`{providerId}`, `{entityId}`, `{connectionId}` are filled in, URL-encoded)
   * where the host authenticates its user and mints a fresh connect session;
   * user-facing alert text links there, or, without it, tells the user to
   * reconnect in the app. Alerts never carry a live connect link.
   * @defaultValue one log sink for operators; no reconnectUrl
   */
  alerts?: { sinks?: SinkConfig[]; policy?: Partial<EpisodePolicy>; maxPerMinutePerSink?: number; reconnectUrl?: string | null };
  /**
   * Provider API calls (the proxy and `ctx.fetch`): timeout, rejections that
   * make a connection `degraded`, connections per provider origin, an undici
   * dispatcher to send through. @defaultValue `{ timeoutMs: 30 000, authFailuresToDegrade: 3, connectionsPerOrigin: 64 }`
   */
  proxy?: Partial<ApiClientOptions>;
  /** Origin users' browsers reach. @defaultValue "http://127.0.0.1:7420" */
  publicUrl?: string;
  /** Extra origins allowed for `returnTo`. */
  allowedReturnOrigins?: string[];
  /** Lifetime of a connect-flow `state`, milliseconds. @defaultValue 600 000 */
  stateTtlMs?: number;
  /**
   * Data retention (api-contract.md v1.1 "Data lifecycle"): how long finished
   * rows are kept and how often `start()`ed instances sweep, milliseconds.
   * Queued, running, faulted and parked jobs are never deleted.
   * @defaultValue succeeded jobs 7 d, failed/dead/discarded jobs 30 d, alerts and connection events 90 d, a sweep every 5 min
   */
  retention?: Partial<RetentionPolicy>;
  clock?: Clock;
  fetch?: typeof fetch;
  logger?: Logger;
  /** Source of jitter, a number in [0, 1). @defaultValue Math.random */
  random?: () => number;
  /** Run migrations on open. @defaultValue true */
  migrate?: boolean;
  /** Lease owner id of this instance. @defaultValue a random UUID */
  instanceId?: string;
  /** Metrics and tracer. One per instance: its store-backed gauges read this instance's store. @defaultValue `createTelemetry()` (own registry, global OTel tracer) */
  telemetry?: Telemetry;
}
