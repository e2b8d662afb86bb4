/** The public Integration shape (api-contract.md "Shapes"). */
import type { IntegrationStatus } from "../domain/states.js";
import type { IntegrationEventRow, IntegrationRow } from "../store/integrations.js";

export { INTEGRATION_STATUSES, type IntegrationStatus } from "../domain/states.js";

/** Webhook signature schemes an integration's ingress may use (`none` only when asked for by name). */
export const WEBHOOK_SIGNING = ["github", "slack", "stripe", "hmac-sha256", "none"] as const;

/**
 * Stored in `integrations.webhook_signing` for an integration created without
 * a `webhook` block: it accepts no inbound webhook (401
 * `webhook_signing_not_configured`). Migration `0008_webhook_signing_required`
 * gave every row stored as `none` before it this value (docs/security.md "Webhook ingress").
 */
export const WEBHOOK_NOT_CONFIGURED = "not_configured";

/** What `integrations.webhook_signing` holds: a scheme, or {@link WEBHOOK_NOT_CONFIGURED}. */
export type StoredWebhookSigning = (typeof WEBHOOK_SIGNING)[number] | typeof WEBHOOK_NOT_CONFIGURED;

/** An integration as the API and library show it. Never carries secrets. Times are RFC 3339. */
export interface Integration {
  id: string;
  name: string;
  entityId: string;
  status: IntegrationStatus;
  /** Machine-readable, on ERROR: `credential_invalidated`, `connection_deleted`, `circuit_open`, … */
  statusReason?: string;
  /** What caused the ERROR. */
  statusCause?: { connectionId?: string; target?: string };
  connectionIds: string[];
  /** Jobs kept for replay (the jobs part counts them; 0 until then). */
  parkedJobs: number;
  delivery?: { url: string; timeoutMs: number };
  /** Inbound webhook signing; absent when the integration takes no inbound webhooks. */
  webhook?: { signing: (typeof WEBHOOK_SIGNING)[number] };
  createdAt: string;
  updatedAt: string;
}

/** One status change in an integration's history. */
export interface IntegrationEvent {
  id: number;
  integrationId: string;
  at: string;
  /** `user`, `system` (propagation) or `reauthorization`. */
  actor: string;
  from: string | null;
  to: string;
  reason?: string;
  cause?: { connectionId?: string };
  message: string;
}

/** Row + dependencies → {@link Integration}. */
export function toIntegration(row: IntegrationRow, connectionIds: string[], parkedJobs = 0): Integration {
  const cause = row.status_cause_connection_id ? { connectionId: row.status_cause_connection_id } : row.status_cause_target ? { target: row.status_cause_target } : undefined;
  return {
    id: row.id,
    name: row.name,
    entityId: row.entity_id,
    status: row.status,
    ...(row.status_reason ? { statusReason: row.status_reason } : {}),
    ...(cause ? { statusCause: cause } : {}),
    connectionIds,
    parkedJobs,
    ...(row.delivery ? { delivery: JSON.parse(row.delivery) as { url: string; timeoutMs: number } } : {}),
    ...(row.webhook_signing !== WEBHOOK_NOT_CONFIGURED ? { webhook: { signing: row.webhook_signing as (typeof WEBHOOK_SIGNING)[number] } } : {}),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/** Row → {@link IntegrationEvent}. */
export function toIntegrationEvent(r: IntegrationEventRow): IntegrationEvent {
  return {
    id: Number(r.id),
    integrationId: r.integration_id,
    at: new Date(r.at).toISOString(),
    actor: r.actor,
    from: r.from_status,
    to: r.to_status,
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.cause ? { cause: JSON.parse(r.cause) as { connectionId?: string } } : {}),
    message: r.message,
  };
}
