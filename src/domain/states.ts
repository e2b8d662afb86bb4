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

/**
 * True when `value` is one of `values` (a state list of this module): narrows
 * an unchecked string (a CLI flag, a stored value) to the union.
 */
export function isOneOf<T extends string>(values: readonly T[], value: string): value is T {
  return (values as readonly string[]).includes(value);
}

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

/**
 * Integration statuses (design.md "Integration status"), mirrored in the
 * store's `integrations.status` column.
 *
 * - `ENABLED`  runs its jobs
 * - `DISABLED` user intent only ("off, keep settings"), never set by the system
 * - `ERROR`    system-caused, always with a machine-readable reason and the connection or target that caused it
 */
export const INTEGRATION_STATUSES = ["ENABLED", "DISABLED", "ERROR"] as const;

/** One of {@link INTEGRATION_STATUSES}. */
export type IntegrationStatus = (typeof INTEGRATION_STATUSES)[number];

/**
 * Job states (api-contract.md "Shapes", design.md "Jobs and delivery"),
 * mirrored in the store's `jobs.state` column (pg-boss mirrors its
 * `JOB_STATES` the same way). The transitions between them are
 * {@link ./jobLifecycle.ts}.
 *
 * - `queued`    waiting to run (at its `run_at`)
 * - `running`   claimed by a worker, under a lease
 * - `succeeded` done
 * - `failed`    a user/workflow error: recorded, not retried, no ops alert
 * - `faulted`   an infrastructure fault that will be retried (claimable again at its `run_at`)
 * - `parked`    kept, not run, until its integration is ENABLED again (or it is replayed by hand)
 * - `dead`      faulted on its last attempt; ops were alerted
 * - `discarded` arrived (or waited) while its integration was DISABLED and `parkWhenDisabled` is false; recorded, never run
 */
export const JOB_STATES = ["queued", "running", "succeeded", "failed", "faulted", "parked", "dead", "discarded"] as const;

/** One of {@link JOB_STATES}. */
export type JobState = (typeof JOB_STATES)[number];

/** States a worker may claim a job from, once its `run_at` has come (the queue's partial index covers exactly these). */
export const CLAIMABLE_JOB_STATES = ["queued", "faulted"] as const satisfies readonly JobState[];

/** States a job never leaves by itself (only a replay by hand moves `dead` on). */
export const FINISHED_JOB_STATES = ["succeeded", "failed", "dead", "discarded"] as const satisfies readonly JobState[];

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
