/**
 * Alert sinks: the log, a Slack incoming webhook, and a signed generic
 * webhook delivered through the job queue (so it retries, survives restarts
 * and a receiver that is down for a while). Each sink has an audience and a
 * minimum severity; user-facing sinks receive only the user text.
 */
import type { Clock } from "../domain/clock.js";
import type { Encryptor } from "../store/encryption.js";
import type { IntegrationRepository } from "../store/integrations.js";
import type { JobRepository } from "../store/jobs.js";
import { newJobId } from "../store/jobRows.js";
import { sealPayload } from "../store/payloadCipher.js";
import type { Logger } from "../telemetry/logger.js";
import type { AlertKind } from "../domain/alertEpisodes.js";
import { alertSinkIntegrationId } from "../integrations/internal.js";
import { WEBHOOK_NOT_CONFIGURED } from "../integrations/view.js";
import { SEVERITIES, type AlertSubject, type Severity } from "./messages.js";

/** An alert as sinks receive it. */
export interface AlertRecord {
  id: number;
  kind: AlertKind;
  subject: AlertSubject;
  severity: Severity;
  /** Operator text. */
  message: string;
  /** End-user text, for user-facing kinds. */
  userMessage?: string;
  /** RFC 3339. */
  at: string;
  detail?: Record<string, unknown>;
}

/** Who a sink is for: operators get operator text; users only user-facing alerts, in user text. */
export type Audience = "ops" | "user";

/** A configured sink (config `alerts.sinks[]`). */
export interface SinkConfig {
  type: "log" | "slack" | "webhook";
  /** Slack incoming webhook URL, or the generic webhook's URL. */
  url?: string;
  /** HMAC secret of the generic webhook (`Grantkeeper-Signature`). */
  secret?: string;
  audience: Audience;
  /** Least severity sent. @defaultValue "info" */
  minSeverity: Severity;
  /** Only these kinds, when given. */
  kinds?: AlertKind[];
  /** Name in logs and metrics. @defaultValue the type */
  name?: string;
}

/** A sink that can send. */
export interface AlertSink {
  readonly name: string;
  readonly config: SinkConfig;
  send(alert: AlertRecord): Promise<void>;
}

/** True when the sink wants this alert (audience, severity, kinds). */
export function routes(config: SinkConfig, alert: AlertRecord): boolean {
  if (config.audience === "user" && alert.userMessage === undefined) return false;
  if (SEVERITIES.indexOf(alert.severity) < SEVERITIES.indexOf(config.minSeverity)) return false;
  return config.kinds === undefined || config.kinds.includes(alert.kind);
}

/** The text a sink shows: user text for user sinks, operator text otherwise. */
export function textFor(config: SinkConfig, alert: AlertRecord): string {
  return config.audience === "user" ? alert.userMessage! : alert.message;
}

/** Writes alerts to the JSON log. */
export class LogSink implements AlertSink {
  readonly name: string;
  constructor(
    readonly config: SinkConfig,
    private readonly logger: Logger,
  ) {
    this.name = config.name ?? "log";
  }
  async send(a: AlertRecord): Promise<void> {
    const level = a.severity === "critical" ? "error" : a.severity === "warning" ? "warn" : "info";
    this.logger[level]({ alertId: a.id, kind: a.kind, subject: a.subject, severity: a.severity, detail: a.detail }, textFor(this.config, a));
  }
}

/** Posts to a Slack incoming webhook (Block Kit). Best effort: a failure is logged by the caller. */
export class SlackSink implements AlertSink {
  readonly name: string;
  constructor(
    readonly config: SinkConfig,
    private readonly fetchImpl: typeof fetch,
  ) {
    this.name = config.name ?? "slack";
  }
  async send(a: AlertRecord): Promise<void> {
    const text = textFor(this.config, a);
    const icon = a.severity === "critical" ? ":red_circle:" : a.severity === "warning" ? ":large_orange_circle:" : ":large_green_circle:";
    const blocks =
      this.config.audience === "user"
        ? [{ type: "section", text: { type: "mrkdwn", text } }]
        : [
            { type: "section", text: { type: "mrkdwn", text: `${icon} *${a.kind.replaceAll("_", " ")}*\n${text}` } },
            { type: "context", elements: [{ type: "mrkdwn", text: `${Object.entries(a.subject).map(([k, v]) => `${k}: \`${v}\``).join(" · ")} · ${a.at}` }] },
          ];
    const res = await this.fetchImpl(this.config.url!, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text, blocks }), signal: AbortSignal.timeout(10_000) });
    await res.body?.cancel().catch(() => undefined);
    if (!res.ok) throw new Error(`slack answered ${res.status}`);
  }
}

/**
 * A generic webhook, signed like deliveries and carried by the job queue: the
 * alert becomes a job of a system integration whose delivery URL is the sink,
 * so it is retried with backoff, guarded by a breaker, and never lost. That
 * integration is internal (`src/integrations/internal.ts`): outbound only.
 */
export class WebhookSink implements AlertSink {
  readonly name: string;
  readonly integrationId: string;
  constructor(
    readonly config: SinkConfig,
    private readonly deps: { integrations: IntegrationRepository; jobs: JobRepository; encryptor: Encryptor; clock: Clock; wake: () => void },
  ) {
    this.name = config.name ?? "webhook";
    this.integrationId = alertSinkIntegrationId(config.url!);
  }

  /** Create the system integration once (idempotent). */
  async ensureIntegration(): Promise<void> {
    const { integrations, encryptor, clock } = this.deps;
    const now = clock.now();
    const existing = await integrations.get(this.integrationId);
    const secretCt = encryptor.encrypt(this.config.secret ?? "", `integration:${this.integrationId}:delivery_secret`);
    if (existing) {
      await integrations.transaction((trx) => trx.updateTable("integrations").set({ delivery_secret_ct: secretCt, updated_at: now }).where("id", "=", this.integrationId).execute());
      return;
    }
    await integrations.transaction((trx) =>
      integrations.insert(
        {
          id: this.integrationId,
          name: `alerts:${this.name}`,
          entity_id: "grantkeeper",
          status: "ENABLED",
          status_reason: null,
          status_cause_connection_id: null,
          status_cause_target: null,
          delivery: JSON.stringify({ url: this.config.url, timeoutMs: 10_000 }),
          delivery_secret_ct: secretCt,
          // Outbound only: ingress refuses inbound webhooks for internal integrations whatever this says.
          webhook_signing: WEBHOOK_NOT_CONFIGURED,
          webhook_secret_ct: null,
          delivery_target: this.config.url!,
          created_at: now,
          updated_at: now,
        },
        [],
        "alert sink",
        trx,
      ),
    );
  }

  async send(a: AlertRecord): Promise<void> {
    const now = this.deps.clock.now();
    const body = { id: a.id, kind: a.kind, subject: a.subject, severity: a.severity, message: textFor(this.config, a), at: a.at, ...(a.detail ? { detail: a.detail } : {}) };
    const id = newJobId(now);
    await this.deps.jobs.insertGroup([
      {
        id,
        integration_id: this.integrationId,
        state: "queued",
        attempts: 0,
        idempotency_key: `alert-${a.id}`,
        // Sealed like every payload at rest (src/store/payloadCipher.ts).
        ...sealPayload(this.deps.encryptor, id, { headers: JSON.stringify({ "content-type": "application/json" }), body: Buffer.from(JSON.stringify(body)).toString("base64") }),
        run_at: now,
        lease_owner: null,
        lease_until: null,
        last_error: null,
        probe: 0,
        received_at: now,
        created_at: now,
        updated_at: now,
        finished_at: null,
      },
    ]);
    this.deps.wake();
  }
}
