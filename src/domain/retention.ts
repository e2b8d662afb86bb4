/**
 * Data retention (api-contract.md v1.1 "Data lifecycle", issue 13): which
 * finished rows are deleted after which window. Pure: the store
 * (src/store/retention.ts) turns the cutoffs into bounded deletes and the
 * sweeper (src/lifecycle/retention.ts) runs them.
 *
 * Units: every window and cutoff is in milliseconds (milliseconds since the
 * Unix epoch for a cutoff); the config file speaks seconds and is converted
 * at the edge (src/config/config.ts).
 */
import type { JobState } from "./states.js";

/**
 * How long finished rows are kept, in milliseconds. Queued, running, faulted
 * (awaiting retry) and parked jobs have no window: they are never deleted.
 */
export interface RetentionPolicy {
  /** Succeeded jobs and their payloads, counted from `finished_at`. @defaultValue 604 800 000 (7 d) */
  succeededJobsMs: number;
  /** Failed, dead and discarded jobs and their payloads, counted from `finished_at`. @defaultValue 2 592 000 000 (30 d) */
  failedJobsMs: number;
  /** Alerts, counted from their `at`. @defaultValue 7 776 000 000 (90 d) */
  alertsMs: number;
  /** Connection events, counted from their `at`. @defaultValue 7 776 000 000 (90 d) */
  eventsMs: number;
  /** Time between two sweeps of a running server. @defaultValue 300 000 (5 min) */
  sweepIntervalMs: number;
}

/** The contract's defaults (`retention.*` in the config file, converted to milliseconds). */
export const defaultRetentionPolicy: Readonly<RetentionPolicy> = Object.freeze({
  succeededJobsMs: 604_800_000,
  failedJobsMs: 2_592_000_000,
  alertsMs: 7_776_000_000,
  eventsMs: 7_776_000_000,
  sweepIntervalMs: 300_000,
});

/**
 * Connect sessions stay this long after they expire (or after a completed
 * one's link would have expired), milliseconds, so a late click still
 * answers 410 `connect_link_expired`/`connect_link_used` instead of an
 * unknown link. Not configurable (the contract has no key for it); the same
 * grace the connect flow's own purge uses.
 */
export const CONNECT_SESSION_GRACE_MS = 86_400_000;

/**
 * The tables a sweep deletes from, in the order it sweeps them, as the
 * `prune` output and the `table` label of the retention metrics name them.
 * `job_payloads` go with their jobs (same transaction).
 */
export const RETENTION_TABLES = ["jobs", "job_payloads", "alerts", "connection_events", "oauth_states", "connect_sessions"] as const;

/** One of {@link RETENTION_TABLES}. */
export type RetentionTable = (typeof RETENTION_TABLES)[number];

/**
 * Finished job states and the window each is kept under. Every state not
 * listed (queued, running, faulted, parked) is never deleted: a job that may
 * still run, or that waits for a replay, is not history.
 */
export const JOB_RETENTION_WINDOWS: Readonly<Partial<Record<JobState, "succeededJobsMs" | "failedJobsMs">>> = Object.freeze({
  succeeded: "succeededJobsMs",
  failed: "failedJobsMs",
  dead: "failedJobsMs",
  discarded: "failedJobsMs",
});

/** Rows older than these instants (ms since the epoch, exclusive) are deleted by a sweep at `nowMs`. */
export interface RetentionCutoffs {
  /** Per finished job state: jobs whose `finished_at` is before it. */
  jobs: Array<{ state: JobState; beforeMs: number }>;
  /** Alerts whose `at` is before it. */
  alertsBeforeMs: number;
  /** Connection events whose `at` is before it. */
  eventsBeforeMs: number;
  /** OAuth states whose `expires_at` is at or before it: expired ones, used or not (a used state expires within `connect.stateTtlSeconds`). */
  oauthStatesExpiredAtMs: number;
  /** Connect sessions whose `expires_at` is before it (expiry plus {@link CONNECT_SESSION_GRACE_MS}), completed or not. */
  connectSessionsBeforeMs: number;
}

/**
 * The cutoffs of the connect flow's leftovers at `nowMs` (no policy: states go once expired, sessions
 * {@link CONNECT_SESSION_GRACE_MS} after), for the sweep and the connect flow's own purge alike.
 * @param nowMs milliseconds since the epoch
 */
export function connectCutoffs(nowMs: number): Pick<RetentionCutoffs, "oauthStatesExpiredAtMs" | "connectSessionsBeforeMs"> {
  return { oauthStatesExpiredAtMs: nowMs, connectSessionsBeforeMs: nowMs - CONNECT_SESSION_GRACE_MS };
}

/**
 * The cutoffs of a sweep at `nowMs`: a row exactly at its window's edge is
 * kept; one millisecond older goes.
 * @param policy windows in milliseconds
 * @param nowMs the sweep's time, milliseconds since the epoch
 */
export function retentionCutoffs(policy: RetentionPolicy, nowMs: number): RetentionCutoffs {
  return {
    jobs: Object.entries(JOB_RETENTION_WINDOWS).map(([state, window]) => ({ state: state as JobState, beforeMs: nowMs - policy[window!] })),
    alertsBeforeMs: nowMs - policy.alertsMs,
    eventsBeforeMs: nowMs - policy.eventsMs,
    ...connectCutoffs(nowMs),
  };
}

/**
 * Check a policy: every window a finite number ≥ 0, the interval > 0.
 * @throws RangeError naming the bad field
 */
export function resolveRetentionPolicy(partial: Partial<RetentionPolicy> = {}): RetentionPolicy {
  const p = { ...defaultRetentionPolicy, ...partial };
  for (const [k, v] of Object.entries(p)) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`retention.${k} must be a finite number ≥ 0, got ${v}`);
  }
  if (p.sweepIntervalMs <= 0) throw new RangeError(`retention.sweepIntervalMs must be > 0, got ${p.sweepIntervalMs}`);
  return p;
}

/**
 * The size of a sweep's next batch, from how long the last one took: a
 * batch holds the store (on SQLite, the one connection every arriving
 * webhook's commit waits behind) for as long as it runs, so the sweep aims
 * every batch at `targetMs` rather than at a fixed row count — large when the
 * store is idle, small when it is loaded or the rows are heavy (issue 13:
 * ingress keeps its p99 while 10 million rows go). Proportional, growing at
 * most 2× per batch so one fast batch cannot overshoot.
 * @param current rows in the last batch (≥ 1)
 * @param tookMs how long it took, milliseconds
 * @param targetMs the wanted duration of one batch, milliseconds (> 0)
 * @param min fewest rows per batch (progress even on a saturated store), ≥ 1
 * @param max most rows per batch
 * @returns an integer in [min, max]
 */
export function nextBatchSize(current: number, tookMs: number, targetMs: number, min: number, max: number): number {
  const scaled = Math.floor((current * targetMs) / Math.max(tookMs, 0.01));
  return Math.max(min, Math.min(max, 2 * current, scaled));
}
