/**
 * A job's last error: what ended (or deferred) its last attempt, as stored in
 * `jobs.last_error` and shown as the API's `Job.lastError`. One union and one
 * serializer/parser pair, so the worker, the ingress and the queue's
 * set-based moves never hand-build the JSON.
 *
 * The vocabulary is the job's own, not the connection's: a connection's
 * failure is `transient | permanent` (will a retry of the grant help?); a
 * job's is who has to act (design.md "Jobs and delivery", the background-jobs
 * incident where every user error alerted ops):
 * - `user`  — a user/workflow error (handler `UserError`, consumer 4xx) or the
 *   integration's own status (`integration_disabled`): recorded, not retried, no ops alert;
 * - `infra` — an infrastructure fault (consumer 5xx/408/429, timeout, refused,
 *   handler crash): retried with backoff, `dead` + ops alert after the last attempt;
 * - `auth`  — the upstream API rejected a connection's token: the connection is
 *   refreshed and the job re-run, deferred, or parked — never retried to death.
 */

/** Classes of {@link JobLastError}. */
export const JOB_ERROR_CLASSES = ["user", "infra", "auth"] as const;

/** One of {@link JOB_ERROR_CLASSES}. */
export type JobErrorClass = (typeof JOB_ERROR_CLASSES)[number];

/**
 * Codes of `auth` errors; each says what became of the job.
 * - `auth_failed`: the token was rejected, a refresh gave a fresh one, the job re-runs once with it;
 * - `auth_refresh_deferred`: the token was rejected and no refresh could be made now (rate limit, provider
 *   unreachable): the job re-runs no sooner than the refresh may;
 * - `auth_rejected`: a freshly refreshed token was rejected again, or no fresh token could be had by the last
 *   attempt: the job is parked and its integration paused (ERROR `auth_rejected`) until the connection is
 *   re-authorized or the integration enabled by hand;
 * - `connection_error`: the grant is dead: the job is parked (its integration is in ERROR by propagation);
 * - `no_connection`: nothing to refresh (the integration depends on no connection): failed, not retried.
 */
export const JobAuthCode = {
  authFailed: "auth_failed",
  refreshDeferred: "auth_refresh_deferred",
  rejected: "auth_rejected",
  connectionError: "connection_error",
  noConnection: "no_connection",
} as const;

/** One of the values of {@link JobAuthCode}. */
export type JobAuthCodeValue = (typeof JobAuthCode)[keyof typeof JobAuthCode];

/**
 * A job's last error. `code` is machine-readable (`http_503`, `timeout`,
 * `handler_error`, a host app's `UserError` code, one of {@link JobAuthCode}, …);
 * `message` is for operators (at most {@link MAX_JOB_ERROR_MESSAGE} characters);
 * `at` is an RFC 3339 timestamp.
 */
export type JobLastError =
  | { class: "user"; code: string; message: string; at: string }
  | { class: "infra"; code: string; message: string; at: string }
  | { class: "auth"; code: JobAuthCodeValue; message: string; at: string; connectionId?: string };

/** Longest stored message, in characters: a handler's error text is not under our control. */
export const MAX_JOB_ERROR_MESSAGE = 1_000;

/** A {@link JobLastError} of class `user` or `infra` at `nowMs` (ms since the epoch). */
export function jobError(cls: "user" | "infra", code: string, message: string, nowMs: number): JobLastError {
  return { class: cls, code, message: clip(message), at: new Date(nowMs).toISOString() };
}

/**
 * A {@link JobLastError} of class `auth` at `nowMs`.
 * @param connectionId the connection whose token was rejected, when known
 */
export function jobAuthError(code: JobAuthCodeValue, message: string, nowMs: number, connectionId?: string): JobLastError {
  return { class: "auth", code, message: clip(message), at: new Date(nowMs).toISOString(), ...(connectionId !== undefined ? { connectionId } : {}) };
}

/** The stored form (`jobs.last_error`): JSON with the fields in a fixed order, or null. */
export function serializeJobLastError(e: JobLastError | null): string | null {
  if (e === null) return null;
  const base = { class: e.class, code: e.code, message: e.message, at: e.at };
  return JSON.stringify(e.class === "auth" && e.connectionId !== undefined ? { ...base, connectionId: e.connectionId } : base);
}

/**
 * Read a stored last error. Never throws: a value this version did not write
 * (an older or hand-edited row) is read as an `infra` error with what can be
 * recovered of it, code `unreadable` when there is no code at all, so a list of
 * jobs never fails on one row.
 */
export function parseJobLastError(stored: string | null): JobLastError | null {
  if (stored === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(stored);
  } catch {
    return { class: "infra", code: "unreadable", message: "the stored error is not JSON", at: new Date(0).toISOString() };
  }
  const o = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
  const str = (x: unknown, fallback: string) => (typeof x === "string" ? x : fallback);
  const code = str(o.code, "unreadable");
  const message = str(o.message, "");
  const at = str(o.at, new Date(0).toISOString());
  if (o.class === "auth" && (Object.values(JobAuthCode) as string[]).includes(code)) {
    return { class: "auth", code: code as JobAuthCodeValue, message, at, ...(typeof o.connectionId === "string" ? { connectionId: o.connectionId } : {}) };
  }
  return { class: o.class === "user" ? "user" : "infra", code, message, at };
}

function clip(message: string): string {
  return message.length > MAX_JOB_ERROR_MESSAGE ? `${message.slice(0, MAX_JOB_ERROR_MESSAGE - 1)}…` : message;
}
