/**
 * Connection states (design.md "Connection state"), mirrored in the store's
 * `connections.state` column.
 *
 * - `pending`  granted, not yet used
 * - `syncing`  host app reports an initial sync
 * - `ready`    working
 * - `degraded` works, but the last refresh failed transiently
 * - `error`    permanent: the grant is dead until the user re-authorizes
 */
export const CONNECTION_STATES = ["pending", "syncing", "ready", "degraded", "error"] as const;

/** One of {@link CONNECTION_STATES}. */
export type ConnectionState = (typeof CONNECTION_STATES)[number];

/** States the host app may report through `PATCH /v1/connections/{id}`. */
export const HOST_REPORTED_STATES = ["pending", "syncing", "ready"] as const;

/** One of {@link HOST_REPORTED_STATES}. */
export type HostReportedState = (typeof HOST_REPORTED_STATES)[number];

/**
 * Usable = every state but `error` (the agentworkforce incident: only `ready`
 * counted as connected and users who had just connected were asked again).
 * A missing connection is not usable; callers pass `undefined` for it.
 */
export function isUsable(state: ConnectionState | undefined): boolean {
  return state !== undefined && state !== "error";
}

/** Failure classes of design.md "Failure classification". */
export type FailureClass = "transient" | "permanent";

/**
 * The last failure recorded on a connection, as the API shows it.
 * `at` is an RFC 3339 timestamp.
 */
export interface LastError {
  class: FailureClass;
  code: string;
  message: string;
  at: string;
}
