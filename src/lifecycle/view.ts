/**
 * The public Connection shape (api-contract.md "Shapes"), built from a row
 * without ever touching ciphertext.
 */
import { isUsable, type ConnectionState, type LastError } from "../domain/states.js";
import { parseConnectionConfig, type ConnectionConfig } from "../providers/connectionConfig.js";
import type { ConnectionSummaryRow } from "../store/connections.js";

/** A connection as the API and library show it. Never carries tokens. Times are RFC 3339. */
export interface Connection {
  id: string;
  providerId: string;
  entityId: string;
  state: ConnectionState;
  /** Every state but `error`. */
  usable: boolean;
  scope: string;
  expiresAt: string | null;
  /** True when `expiresAt` was assumed because the provider sent no `expires_in`. */
  expiresAtAssumed: boolean;
  lastRefreshedAt: string | null;
  nextRefreshAt: string | null;
  consecutiveFailures: number;
  lastError?: LastError;
  /**
   * Per-connection settings the provider's URLs are resolved with (`{instance_url}`, `{subdomain}`),
   * from the token response (`tokenResponseConfig`), the connect session or the import. Never secrets.
   */
  connectionConfig: ConnectionConfig;
  createdAt: string;
  updatedAt: string;
}

/** RFC 3339 from milliseconds since the epoch; null stays null. */
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** Row → {@link Connection}. */
export function toConnection(row: ConnectionSummaryRow): Connection {
  const state = row.state;
  return {
    id: row.id,
    providerId: row.provider_id,
    entityId: row.entity_id,
    state,
    usable: isUsable(state),
    scope: row.scope,
    expiresAt: iso(row.expires_at),
    expiresAtAssumed: row.expires_at_assumed === 1,
    lastRefreshedAt: iso(row.last_refreshed_at),
    nextRefreshAt: iso(row.next_refresh_at),
    consecutiveFailures: row.consecutive_failures,
    ...(row.last_error ? { lastError: JSON.parse(row.last_error) as LastError } : {}),
    connectionConfig: parseConnectionConfig(row.connection_config),
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
  };
}

/** One entry of a connection's event history. */
export interface ConnectionEvent {
  id: number;
  connectionId: string;
  at: string;
  /**
   * e.g. `granted`, `reauthorized`, `refreshed`, `refresh_failed`, `recovery_entered`, `invalidated`, `adopted`,
   * `suspicious_refresh`, `refresh_token_not_rotated` (a rotating provider sent no new refresh token),
   * `refresh_token_missing` (an expiring grant stored without one), `state_reported`.
   */
  type: string;
  class?: string;
  code?: string;
  message: string;
  detail?: Record<string, unknown>;
}

/** The `code` of a row's stored `last_error` JSON, if any. */
export function lastErrorCodeOf(lastError: string | null): string | undefined {
  return lastError ? (JSON.parse(lastError) as { code?: string }).code : undefined;
}
