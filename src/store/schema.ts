/**
 * Table types for kysely. Times are integers, milliseconds since the Unix
 * epoch (`bigint` on PostgreSQL, converted to number by the driver edge in
 * {@link ./database.ts}). Ciphertexts are strings made by {@link ./encryption.ts}.
 */
import type { Generated } from "kysely";
import type { BreakerStateName } from "../domain/breaker.js";
import type { ConnectionState, FailureClass, IntegrationStatus, JobState } from "../domain/states.js";

export interface ProvidersTable {
  id: string;
  /** JSON of the provider definition without its client secret. */
  definition: string;
  client_secret_ct: string | null;
  created_at: number;
  updated_at: number;
}

export interface ConnectionsTable {
  id: string;
  provider_id: string;
  entity_id: string;
  /** CHECK: one of `CONNECTION_STATES`. */
  state: ConnectionState;
  access_token_ct: string;
  refresh_token_ct: string | null;
  token_type: string;
  scope: string;
  expires_at: number | null;
  /** 1 when `expires_at` was assumed because the token response had no `expires_in`. */
  expires_at_assumed: number;
  last_refreshed_at: number | null;
  last_attempt_at: number | null;
  next_refresh_at: number | null;
  consecutive_failures: number;
  /** JSON {class, code, message, at} or null. */
  last_error: string | null;
  /** Bumped on every token write; a changed value after `invalid_grant` means another instance rotated first. */
  token_version: number;
  lease_owner: string | null;
  lease_until: number | null;
  /** Consecutive calls whose freshly refreshed token the provider's API still rejected (migration 0014); a success resets it. */
  api_auth_rejections: Generated<number>;
  created_at: number;
  updated_at: number;
  /** JSON object of strings: the connection's `connectionConfig` (migration 0010). Never secrets. */
  connection_config: string;
}

export interface ConnectionEventsTable {
  id: Generated<number>;
  connection_id: string;
  at: number;
  type: string;
  class: FailureClass | null;
  code: string | null;
  message: string;
  /** JSON object or null. */
  detail: string | null;
}

export interface OAuthStatesTable {
  /** SHA-256 of the `state` value (hex): the raw value is never stored. */
  state_hash: string;
  provider_id: string;
  entity_id: string;
  code_verifier_ct: string;
  return_to: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  /** The connect session whose link started this flow (migration 0007); null for rows written before it. */
  session_id: string | null;
  /** SHA-256 (hex) of the browser-binding cookie set when the flow started (RFC 9700 §4.7.1); null rows are bound to no browser and refused. */
  binding_hash: string | null;
}

/**
 * A connect session (migration 0007): what one connect link may do, minted
 * per click by the host app. Only a hash of the link's secret is stored, so a
 * database read yields no usable link.
 */
export interface ConnectSessionsTable {
  /** `cs_` + 26 url-safe characters. */
  id: string;
  /** SHA-256 (hex) of the link secret (`connectToken`). */
  token_hash: string;
  provider_id: string;
  entity_id: string;
  /** JSON array of scopes, or null for the provider's defaults. */
  scopes: string | null;
  return_to: string | null;
  /** JSON object of per-connection settings (never secrets), or null. */
  connection_config: string | null;
  created_at: number;
  /** After this, the link answers 410 `connect_link_expired`. */
  expires_at: number;
  /** Set by the first completed connect; the link then answers 410 `connect_link_used`. */
  completed_at: number | null;
  /** The connection the completed connect stored. */
  connection_id: string | null;
}

export interface IntegrationsTable {
  id: string;
  name: string;
  entity_id: string;
  /** CHECK: one of `INTEGRATION_STATUSES`. */
  status: IntegrationStatus;
  status_reason: string | null;
  status_cause_connection_id: string | null;
  status_cause_target: string | null;
  /** JSON {url, timeoutMs} or null. */
  delivery: string | null;
  delivery_secret_ct: string | null;
  webhook_signing: string;
  webhook_secret_ct: string | null;
  /** The secret a rotation replaced (encrypted), still accepted until `webhook_secret_rotated_at` + the overlap (`webhook.secretOverlapSeconds`). */
  webhook_previous_secret_ct: string | null;
  /** When the secret was last rotated, ms since the epoch; null when it never was. */
  webhook_secret_rotated_at: number | null;
  /** Breaker key of where this integration's jobs go: the delivery URL, or `handler:<name>`. */
  delivery_target: string;
  created_at: number;
  updated_at: number;
}

/** Which connections an integration depends on (found by dependency, not by where it is filed). */
export interface IntegrationConnectionsTable {
  integration_id: string;
  connection_id: string;
}

/** Who changed an integration's status. */
export type IntegrationActor = "user" | "system" | "reauthorization";

export interface IntegrationEventsTable {
  id: Generated<number>;
  integration_id: string;
  at: number;
  /** Who changed it: `user` (API/CLI), `system` (propagation), `reauthorization`. */
  actor: IntegrationActor;
  from_status: IntegrationStatus | null;
  to_status: IntegrationStatus;
  reason: string | null;
  /** JSON {connectionId?, target?} or null. */
  cause: string | null;
  message: string;
}

/**
 * What a job carries, written once at ingress and read when it runs. Kept out
 * of `jobs` (migration 0006) so the state changes of a job — claim, outcome,
 * retry — do not rewrite its body: with a 1 KB body inline, every change
 * copied it (PostgreSQL MVCC, SQLite page rewrites; 215 MB of WAL for 100k jobs).
 */
export interface JobPayloadsTable {
  job_id: string;
  /** JSON object of the delivery's headers (credentials removed); "" when sealed (src/store/payloadCipher.ts). */
  headers: string;
  /** Sealed: one `v1.` ciphertext of headers and body (src/store/payloadCipher.ts). Legacy rows: the raw body, base64. */
  body: string;
}

export interface JobsTable {
  /** Arrival order. */
  seq: Generated<number>;
  id: string;
  integration_id: string;
  /** CHECK: one of `JOB_STATES`; transitions in `domain/jobLifecycle.ts`. */
  state: JobState;
  attempts: number;
  idempotency_key: string | null;
  /** When the job may next run, ms since the epoch. */
  run_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  /** `serializeJobLastError` of a `JobLastError` (`domain/jobLastError.ts`), or null. */
  last_error: string | null;
  /** 1 for a half-open breaker probe: runs although its integration is in ERROR(circuit_open). */
  probe: number;
  received_at: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

/** Per delivery target breaker, shared by every instance through the store. */
export interface BreakersTable {
  target: string;
  /** CHECK (migration 0009): one of `BREAKER_STATES`. */
  state: BreakerStateName;
  consecutive_failures: number;
  opened_at: number | null;
  /** No job for this target starts before this time (ms since the epoch), whatever the entry path. */
  cooldown_until: number | null;
  updated_at: number;
}

/**
 * Per provider token endpoint breaker (migration 0012), shared by every
 * instance through the store. Times in ms since the epoch. While `open`,
 * `cooldown_until` is when the next half-open probe may go out; claiming the
 * probe moves it one cooldown forward.
 */
export interface ProviderBreakersTable {
  provider_id: string;
  /** CHECK: one of `BREAKER_STATES`. */
  state: BreakerStateName;
  /** Consecutive token endpoint faults across the provider's connections. */
  consecutive_failures: number;
  opened_at: number | null;
  cooldown_until: number | null;
  updated_at: number;
}

export interface AlertsTable {
  id: Generated<number>;
  kind: string;
  subject_type: string;
  subject_id: string;
  severity: string;
  /** Text for operators (codes, ids, what to check). */
  message: string;
  /** Text for the end user, when the alert is user-facing (no codes, no provider bodies, no tokens). */
  user_message: string | null;
  /** JSON (reconnectUrl, durationMs, …) or null. */
  detail: string | null;
  at: number;
}

export interface AlertEpisodesTable {
  /** `<subject_type>:<subject_id>` */
  subject: string;
  /** JSON of the episode. */
  episode: string;
  updated_at: number;
}

/**
 * Dashboard sessions that were signed out before they expired (migration
 * 0013): their cookie is refused even if replayed. Rows go after `expires_at`.
 */
export interface DashboardSignOutsTable {
  /** SHA-256 (hex) of the session's random id (never the id or the cookie). */
  session_hash: string;
  /** When the session would have expired, ms since the epoch. */
  expires_at: number;
}

/** The whole schema. */
export interface Database {
  providers: ProvidersTable;
  connections: ConnectionsTable;
  connection_events: ConnectionEventsTable;
  oauth_states: OAuthStatesTable;
  connect_sessions: ConnectSessionsTable;
  integrations: IntegrationsTable;
  integration_connections: IntegrationConnectionsTable;
  integration_events: IntegrationEventsTable;
  jobs: JobsTable;
  job_payloads: JobPayloadsTable;
  breakers: BreakersTable;
  provider_breakers: ProviderBreakersTable;
  alerts: AlertsTable;
  alert_episodes: AlertEpisodesTable;
  dashboard_sign_outs: DashboardSignOutsTable;
}
