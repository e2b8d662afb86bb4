/**
 * zod schemas of what the HTTP API answers: the views the core returns
 * (src/lifecycle/view.ts, src/integrations/view.ts, src/jobs/service.ts,
 * src/alerts/sinks.ts…) and RFC 9457 problems. They feed the OpenAPI
 * document (src/http/openapi.ts); request schemas are the ones the routes
 * validate with, exported from src/http/routes/*.
 */
import { z } from "zod";
import { ALERT_KINDS } from "../domain/alertEpisodes.js";
import { CONNECTION_STATES, INTEGRATION_STATUSES, JOB_STATES } from "../domain/states.js";
import { SEVERITIES } from "../alerts/messages.js";
import { WEBHOOK_SIGNING } from "../integrations/view.js";
import { providerTemplateSchema } from "../providers/catalogue.js";
import { providerDefinitionSchema } from "../providers/definition.js";

const time = z.iso.datetime().describe("RFC 3339");
const nullableTime = time.nullable();

/** RFC 9457 problem details with grantkeeper's stable `code` (src/http/problem.ts). */
export const problemSchema = z
  .object({
    type: z.string().describe("https://grantkeeper.dev/problems/{code}"),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    code: z.string().describe("stable, machine-readable; clients switch on it"),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional().describe("every field issue of a 422"),
  })
  .catchall(z.unknown());

/** A connection's last refresh failure. */
const lastErrorSchema = z.object({ class: z.enum(["transient", "permanent"]), code: z.string(), message: z.string(), at: time });

/** {@link Connection} of src/lifecycle/view.ts: never carries tokens. */
export const connectionSchema = z.object({
  id: z.string().describe("conn_…"),
  providerId: z.string(),
  entityId: z.string(),
  state: z.enum(CONNECTION_STATES),
  usable: z.boolean().describe("every state but error"),
  scope: z.string().describe("space-separated (RFC 6749 §3.3)"),
  expiresAt: nullableTime,
  expiresAtAssumed: z.boolean().describe("the provider sent no expires_in"),
  lastRefreshedAt: nullableTime,
  nextRefreshAt: nullableTime,
  consecutiveFailures: z.number().int(),
  lastError: lastErrorSchema.optional(),
  connectionConfig: z.record(z.string(), z.string()).describe("per-connection settings the provider's URLs are resolved with; never secrets"),
  createdAt: time,
  updatedAt: time,
});

/** One entry of a connection's history. */
export const connectionEventSchema = z.object({
  id: z.number().int(),
  connectionId: z.string(),
  at: time,
  type: z.string().describe("granted, reauthorized, refreshed, refresh_failed, recovery_entered, invalidated, adopted, suspicious_refresh, refresh_token_not_rotated, refresh_token_missing, state_reported"),
  class: z.string().optional(),
  code: z.string().optional(),
  message: z.string(),
  detail: z.record(z.string(), z.unknown()).optional(),
});

/** A provider as the API shows it: its definition without the client secret. */
export const providerSchema = providerDefinitionSchema.extend({
  hasClientSecret: z.boolean(),
  createdAt: time,
  updatedAt: time,
  tokenEndpointBreaker: z
    .object({
      state: z.enum(["closed", "open"]),
      consecutiveFailures: z.number().int(),
      openedAt: time.optional(),
      retryAfterSeconds: z.number().int().optional().describe("seconds until the next half-open probe may go out"),
    })
    .optional()
    .describe("GET /v1/providers/{id} only: the provider's token endpoint breaker (design.md \"Breakers and cooldowns\"); while open, refreshes are deferred and one probe goes out per breaker.cooldownSeconds"),
});

/** A catalogue template. */
export const providerTemplateViewSchema = providerTemplateSchema;

/** An integration (src/integrations/view.ts); never secrets. */
export const integrationSchema = z.object({
  id: z.string().describe("int_…"),
  name: z.string(),
  entityId: z.string(),
  status: z.enum(INTEGRATION_STATUSES),
  statusReason: z.string().optional().describe("credential_invalidated, connection_deleted, circuit_open, …"),
  statusCause: z.object({ connectionId: z.string().optional(), target: z.string().optional() }).optional(),
  connectionIds: z.array(z.string()),
  parkedJobs: z.number().int(),
  delivery: z.object({ url: z.string(), timeoutMs: z.number().int().describe("milliseconds") }).optional(),
  webhook: z.object({ signing: z.enum(WEBHOOK_SIGNING) }).optional(),
  createdAt: time,
  updatedAt: time,
});

/** `POST /v1/integrations` answers the integration plus, once, a generated delivery secret. */
export const createdIntegrationSchema = integrationSchema.extend({ deliverySecret: z.string().optional().describe("returned once, when grantkeeper generated it") });

/** One status change of an integration. */
export const integrationEventSchema = z.object({
  id: z.number().int(),
  integrationId: z.string(),
  at: time,
  actor: z.string().describe("user, system or reauthorization"),
  from: z.string().nullable(),
  to: z.string(),
  reason: z.string().optional(),
  cause: z.object({ connectionId: z.string().optional() }).optional(),
  message: z.string(),
});

/** A job (never its body). */
export const jobSchema = z.object({
  id: z.string(),
  integrationId: z.string(),
  state: z.enum(JOB_STATES),
  attempts: z.number().int(),
  idempotencyKey: z.string().optional(),
  lastError: z.object({ class: z.enum(["user", "infra", "auth"]), code: z.string(), message: z.string(), at: time, connectionId: z.string().optional() }).optional(),
  receivedAt: time,
  createdAt: time,
  updatedAt: time,
});

/** An alert: one per episode phase. */
export const alertSchema = z.object({
  id: z.number().int(),
  kind: z.enum(ALERT_KINDS),
  subject: z.union([z.object({ connectionId: z.string() }), z.object({ providerId: z.string() }), z.object({ integrationId: z.string() }), z.object({ target: z.string() })]),
  severity: z.enum(SEVERITIES),
  message: z.string().describe("operator text"),
  userMessage: z.string().optional().describe("end-user text, for user-facing kinds"),
  at: time,
  detail: z.record(z.string(), z.unknown()).optional(),
});

/** `POST /v1/preflight`. */
export const preflightResultSchema = z.object({
  ok: z.boolean().describe("every action is none"),
  entityId: z.string(),
  providers: z.array(
    z.object({
      providerId: z.string(),
      usable: z.boolean(),
      connectionId: z.string().optional(),
      state: z.enum(CONNECTION_STATES).optional(),
      action: z.enum(["none", "connect", "reconnect"]),
      missingScopes: z.array(z.string()).optional(),
      connectUrl: z.string().optional().describe("single-use, short-lived connect link"),
    }),
  ),
});

/** `POST /v1/connections/{id}/token` (`Cache-Control: no-store`). */
export const accessTokenSchema = z.object({ accessToken: z.string(), tokenType: z.string(), expiresAt: nullableTime });

/** `POST /v1/connect-sessions`. */
export const connectSessionSchema = z.object({ id: z.string().describe("cs_…"), providerId: z.string(), entityId: z.string(), connectUrl: z.string().describe("a credential until used or expired"), expiresAt: time });

/** `DELETE /v1/connections/{id}`. */
export const deletedConnectionSchema = z.object({ id: z.string(), deleted: z.literal(true), revoked: z.boolean(), revocationError: z.string().optional() });

/** `POST /v1/webhooks/{integrationId}`. */
export const acceptedSchema = z.object({ jobId: z.string(), disposition: z.enum(["queued", "parked", "discarded", "duplicate"]), challenge: z.string().optional().describe("Slack url_verification only (then 200)") });

/** `GET /v1/oauth/callback` as JSON. */
export const callbackResultSchema = z.object({ status: z.literal("connected"), connection: connectionSchema });

/** `GET /healthz`. */
export const healthSchema = z.object({ status: z.literal("ok") });

/** `GET /readyz`. */
export const readySchema = z.object({ status: z.enum(["ready", "not_ready"]), store: z.enum(["reachable", "unreachable"]), pendingMigrations: z.array(z.string()) });

/** A page of a list: `{items, nextCursor?}`. */
export function pageOf(item: z.ZodType): z.ZodType {
  return z.object({ items: z.array(item), nextCursor: z.string().optional().describe("pass as cursor for the next page") });
}

/** A whole list (not paged): `{items}`. */
export function listOf(item: z.ZodType): z.ZodType {
  return z.object({ items: z.array(item) });
}
