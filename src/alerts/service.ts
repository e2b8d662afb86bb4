/**
 * Alerts: lifecycle events → episodes → rendered alerts → sinks. One alert
 * per episode phase, recorded in the store (`GET /v1/alerts`), then sent to
 * every sink that routes it, under a per-sink rate limit. Sending is best
 * effort and never changes what caused it (design.md "the notification is
 * best-effort and never changes the refresh result").
 */
import type { Clock } from "../domain/clock.js";
import type { LifecycleHooks } from "../lifecycle/hooks.js";
import type { ProviderService } from "../providers/service.js";
import type { AlertRepository, AlertRow } from "../store/alerts.js";
import type { ConnectionRepository } from "../store/connections.js";
import { maskConnectLinks, type Logger } from "../telemetry/logger.js";
import { stepEpisode, type AlertKind, type EpisodeInput, type EpisodePolicy } from "../domain/alertEpisodes.js";
import { renderAlert, type AlertFacts, type AlertSubject, type Severity } from "./messages.js";
import { renderReconnectUrl } from "./reconnectUrl.js";
import { routes, type AlertRecord, type AlertSink } from "./sinks.js";

/** Dependencies of {@link AlertService}. */
export interface AlertServiceDeps {
  repo: AlertRepository;
  connections: ConnectionRepository;
  providers: ProviderService;
  hooks: LifecycleHooks;
  sinks: AlertSink[];
  clock: Clock;
  logger: Logger;
  policy: EpisodePolicy;
  /** Most alerts one sink receives per minute; the rest are dropped and counted. @defaultValue 30 */
  maxPerMinutePerSink: number;
  /**
   * `alerts.reconnectUrl`: a URL template on the host app for reconnect
   * alerts ({@link ./reconnectUrl.ts}); without it the user text says to
   * reconnect in the app. Never a live connect link.
   */
  reconnectUrl?: string | undefined;
  /** Told about every alert a sink accepted (metrics). */
  onSent?: (kind: AlertKind, sink: string) => void;
  /** Told about every alert a sink failed to take (metrics). */
  onSendFailed?: (kind: AlertKind, sink: string) => void;
}

/** An alert as `GET /v1/alerts` shows it: the same record sinks receive. */
export type AlertView = AlertRecord;

function subjectKey(s: AlertSubject): string {
  const [k, v] = Object.entries(s)[0]!;
  return `${k}:${v}`;
}

function toView(r: AlertRow): AlertView {
  return {
    id: Number(r.id),
    kind: r.kind as AlertKind,
    subject: { [r.subject_type]: r.subject_id } as AlertSubject,
    severity: r.severity as Severity,
    message: r.message,
    ...(r.user_message ? { userMessage: r.user_message } : {}),
    at: new Date(r.at).toISOString(),
    ...(r.detail ? { detail: JSON.parse(r.detail) as Record<string, unknown> } : {}),
  };
}

/** Turns lifecycle events into episode alerts. */
export class AlertService {
  private readonly sent = new Map<string, number[]>();
  /** Alerts dropped by the rate limit, by sink. */
  readonly dropped = new Map<string, number>();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly d: AlertServiceDeps) {}

  /** Subscribe to the lifecycle. */
  attach(): void {
    const { hooks } = this.d;
    const conn = (connectionId: string) => ({ connectionId });
    hooks.on("connection.degraded", (e) => this.enqueue(conn(e.connectionId), [{ type: "failure", consecutiveFailures: e.consecutiveFailures }, ...(e.enteredRecovery ? [{ type: "recovery_entered" } as const] : [])], { lastErrorCode: e.lastError.code, lastErrorMessage: e.lastError.message, consecutiveFailures: e.consecutiveFailures }));
    // The API keeps rejecting fresh tokens (degraded, still usable): one alert per episode; an accepted call ends it.
    hooks.on("connection.apiAuthRejected", (e) => this.enqueue(conn(e.connectionId), [{ type: "api_auth_rejected" }], { lastErrorCode: e.lastError.code, lastErrorMessage: e.lastError.message, consecutiveFailures: e.apiAuthRejections }));
    hooks.on("connection.apiAuthAccepted", (e) => this.enqueue(conn(e.connectionId), [{ type: "success" }], {}));
    hooks.on("connection.invalidated", (e) => this.enqueue(conn(e.connectionId), [{ type: "invalidated" }], { lastErrorCode: e.lastError.code, lastErrorMessage: e.lastError.message }));
    hooks.on("connection.refreshed", (e) => {
      // A routine refresh ends no episode: skip the store entirely (this runs for every refresh).
      if (e.previousFailures === 0) return;
      this.enqueue(conn(e.connectionId), [{ type: "success" }], {});
      this.enqueue({ providerId: e.providerId }, [{ type: "success" }], {});
    });
    hooks.on("connection.granted", (e) => (e.previousState !== undefined ? this.enqueue(conn(e.connectionId), [{ type: "success" }], {}) : undefined));
    hooks.on("provider.misconfigured", (e) => this.enqueue({ providerId: e.providerId }, [{ type: "provider_misconfigured" }], { lastErrorCode: e.lastError.code }));
    // A provider's token endpoint breaker: one alert when it opens, one all-clear when the probe closes it (subject: the provider).
    hooks.on("provider.breakerOpened", (e) => this.enqueue({ providerId: e.providerId }, [{ type: "breaker_opened" }], { consecutiveFailures: e.consecutiveFailures, cooldownSeconds: e.cooldownSeconds, ...(e.lastErrorCode ? { lastErrorCode: e.lastErrorCode } : {}) }));
    hooks.on("provider.breakerClosed", (e) => this.enqueue({ providerId: e.providerId }, [{ type: "breaker_closed" }], {}));
    hooks.on("job.dead", (e) => this.enqueue({ integrationId: e.integrationId }, [{ type: "job_dead" }], { jobId: e.jobId, lastErrorCode: e.lastError.code }));
    hooks.on("breaker.opened", (e) => this.enqueue({ target: e.target }, [{ type: "breaker_opened" }], { integrations: e.integrations }));
    hooks.on("breaker.closed", (e) => this.enqueue({ target: e.target }, [{ type: "breaker_closed" }], { integrations: e.integrations }));
  }

  /**
   * Wait until every event received so far is handled, including events
   * that arrive while waiting (tests, and `close()`: a one-shot CLI command
   * must not destroy the store under an alert still being written — issue 12
   * item 5). Never throws: handling failures are logged where they happen.
   */
  async idle(): Promise<void> {
    let seen: Promise<void>;
    do {
      seen = this.queue;
      await seen;
    } while (seen !== this.queue);
  }

  /** Alerts at or after `sinceMs`, oldest first (at most 500). */
  async list(sinceMs: number): Promise<AlertView[]> {
    return (await this.d.repo.since(sinceMs, 500)).map(toView);
  }

  // Events are handled one at a time so an episode's read-modify-write never interleaves with itself.
  private enqueue(subject: AlertSubject, inputs: EpisodeInput[], facts: Partial<AlertFacts>): void {
    this.queue = this.queue.then(() => this.handle(subject, inputs, facts)).catch((e: Error) => this.d.logger.error({ err: { name: e.name, message: e.message } }, "alert handling failed"));
  }

  private async handle(subject: AlertSubject, inputs: EpisodeInput[], facts: Partial<AlertFacts>): Promise<void> {
    const { repo, clock, policy } = this.d;
    const key = subjectKey(subject);
    let episode = await repo.episode(key);
    if (!episode && inputs.every((i) => i.type === "success" || i.type === "breaker_closed")) return;
    const now = clock.now();
    const toSend: Array<{ kind: AlertKind; durationMs?: number }> = [];
    for (const input of inputs) {
      const step = stepEpisode(episode, input, now, policy);
      episode = step.episode;
      for (const kind of step.alerts) toSend.push({ kind, ...(step.durationMs !== undefined ? { durationMs: step.durationMs } : {}) });
    }
    await repo.saveEpisode(key, episode, now);
    if (toSend.length === 0) return;
    const full = await this.facts(subject, facts);
    for (const { kind, durationMs } of toSend) await this.emit(kind, { ...full, ...(durationMs !== undefined ? { durationMs } : {}) }, now);
  }

  private async facts(subject: AlertSubject, partial: Partial<AlertFacts>): Promise<AlertFacts> {
    const f: AlertFacts = { subject, ...partial };
    if ("connectionId" in subject) {
      const row = await this.d.connections.getSummary(subject.connectionId);
      if (row) {
        f.providerId = row.provider_id;
        f.entityId = row.entity_id;
        if (this.d.reconnectUrl) f.reconnectUrl = renderReconnectUrl(this.d.reconnectUrl, { providerId: row.provider_id, entityId: row.entity_id, connectionId: row.id });
      }
    }
    const providerId = f.providerId ?? ("providerId" in subject ? subject.providerId : undefined);
    if (providerId) {
      const p = await this.d.providers.get(providerId);
      if (p) f.providerName = p.displayName;
    }
    return f;
  }

  private async emit(kind: AlertKind, facts: AlertFacts, now: number): Promise<void> {
    // Masked again here, whatever a message was built from: alerts outlive any link (in channels, inboxes, the store).
    const rendered = renderAlert(kind, facts);
    const r = { ...rendered, message: maskConnectLinks(rendered.message), ...(rendered.userMessage !== undefined ? { userMessage: maskConnectLinks(rendered.userMessage) } : {}) };
    const [subjectType, subjectId] = Object.entries(facts.subject)[0]!;
    const detail = { ...(facts.reconnectUrl && kind === "grant_invalidated" ? { reconnectUrl: facts.reconnectUrl } : {}), ...(facts.durationMs !== undefined ? { durationMs: facts.durationMs } : {}), ...(facts.lastErrorCode ? { code: facts.lastErrorCode } : {}) };
    const id = await this.d.repo.insert({ kind, subject_type: subjectType, subject_id: subjectId, severity: r.severity, message: r.message, user_message: r.userMessage ?? null, detail: Object.keys(detail).length ? JSON.stringify(detail) : null, at: now });
    const alert: AlertRecord = { id, kind, subject: facts.subject, severity: r.severity, message: r.message, ...(r.userMessage ? { userMessage: r.userMessage } : {}), at: new Date(now).toISOString(), ...(Object.keys(detail).length ? { detail } : {}) };
    for (const sink of this.d.sinks) {
      if (!routes(sink.config, alert)) continue;
      if (!this.allow(sink.name, now)) {
        this.dropped.set(sink.name, (this.dropped.get(sink.name) ?? 0) + 1);
        this.d.logger.warn({ sink: sink.name, kind, alertId: id }, "alert dropped by the sink's rate limit");
        continue;
      }
      try {
        await sink.send(alert);
        this.d.onSent?.(kind, sink.name);
      } catch (e) {
        this.d.onSendFailed?.(kind, sink.name);
        this.d.logger.error({ sink: sink.name, kind, alertId: id, err: { message: (e as Error).message } }, "alert sink failed");
      }
    }
  }

  /** Sliding one-minute window per sink. */
  private allow(sink: string, now: number): boolean {
    const recent = (this.sent.get(sink) ?? []).filter((t) => now - t < 60_000);
    if (recent.length >= this.d.maxPerMinutePerSink) {
      this.sent.set(sink, recent);
      return false;
    }
    recent.push(now);
    this.sent.set(sink, recent);
    return true;
  }
}
