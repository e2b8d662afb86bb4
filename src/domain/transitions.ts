/**
 * Pure transitions of a connection after a refresh attempt or a host report
 * (design.md "Connection state", "Refresh lifecycle"). Persistence is
 * elsewhere; these functions are table-tested with explicit time and
 * randomness.
 */
import type { Classification } from "./classify.js";
import type { RefreshPolicy } from "./policy.js";
import type { ConnectionState, HostReportedState } from "./states.js";

/** Where a failing connection is in its retry life. */
export type RetryPhase = "backoff" | "recovery" | "provider_misconfigured" | "dead";

/** The facts of a connection a transition needs. Times in milliseconds since the Unix epoch. */
export interface RefreshSubject {
  state: ConnectionState;
  /** Access token expiry, or null for a token that does not expire. */
  expiresAtMs: number | null;
  /**
   * A new token can be obtained without the user: there is a refresh token, or the connection
   * uses client credentials (RFC 6749 §4.4: the client asks again).
   */
  renewable: boolean;
  /** When the token was issued, if it was just now (a refresh, a code exchange): its lifetime is then known. */
  issuedAtMs?: number;
  consecutiveFailures: number;
}

/** Result of a transition: the fields to persist. */
export interface RefreshTransition {
  state: ConnectionState;
  consecutiveFailures: number;
  /** When the scheduler should next act on this connection, or null for never. */
  nextRefreshAtMs: number | null;
  /** Set on failures only. */
  phase?: RetryPhase;
  /** True on the failure that exhausts `maxRetries` and starts active recovery (alerts key on it). */
  enteredRecovery?: boolean;
}

/**
 * When to refresh a token that was just stored.
 *
 * - renewable: `expiresAt − margin − jitter`, but no later than
 *   `now + keepAlive` (idle refresh tokens die at some providers) and no
 *   sooner than `now + minInterval` (the rate limit). For a token whose
 *   issue time is known, margin + jitter never exceed half its lifetime: a
 *   margin longer than a short-lived token (HubSpot and Xero issue 30-minute
 *   tokens) would otherwise make every refresh due at once, again and again;
 * - not renewable: at expiry, when the scheduler will mark it
 *   `not_refreshable`; never for a token that does not expire.
 *
 * @param random a number in [0, 1) for the jitter
 * @returns milliseconds since the Unix epoch, or null
 */
export function nextRefreshAfterSuccess(
  subject: Pick<RefreshSubject, "expiresAtMs" | "renewable" | "issuedAtMs">,
  nowMs: number,
  policy: RefreshPolicy,
  random: number,
): number | null {
  if (!subject.renewable) return subject.expiresAtMs;
  const keepAlive = nowMs + policy.keepAliveMs;
  if (subject.expiresAtMs === null) return Math.max(keepAlive, nowMs + policy.minIntervalMs);
  let lead = policy.marginMs + Math.floor(random * policy.jitterMs);
  if (subject.issuedAtMs !== undefined) lead = Math.min(lead, Math.floor((subject.expiresAtMs - subject.issuedAtMs) / 2));
  return Math.max(Math.min(subject.expiresAtMs - lead, keepAlive), nowMs + policy.minIntervalMs);
}

/**
 * Exponential backoff with full jitter for the `attempt`-th consecutive failure (1-based):
 * `random × min(backoffMax, backoffBase × 2^(attempt−1))`, never below `minInterval`.
 * @returns the delay in milliseconds
 */
export function backoffDelayMs(attempt: number, policy: RefreshPolicy, random: number): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(policy.minIntervalMs, Math.floor(random * ceiling));
}

/**
 * Transition after a successful refresh: degraded/pending → ready; syncing
 * stays syncing (the host owns it). A connection degraded because the
 * provider's *API* rejects its tokens (`lastErrorCode` {@link API_AUTH_REJECTED})
 * stays degraded: a new token from the token endpoint does not show the API
 * accepts it — an accepted API call does ({@link afterApiAuthAccepted}).
 */
export function afterRefreshSuccess(
  subject: Pick<RefreshSubject, "state" | "expiresAtMs" | "renewable" | "issuedAtMs"> & { lastErrorCode?: string | undefined },
  nowMs: number,
  policy: RefreshPolicy,
  random: number,
): RefreshTransition {
  const apiRejected = subject.state === "degraded" && subject.lastErrorCode === API_AUTH_REJECTED;
  return {
    state: subject.state === "syncing" ? "syncing" : apiRejected ? "degraded" : "ready",
    consecutiveFailures: 0,
    nextRefreshAtMs: nextRefreshAfterSuccess(subject, nowMs, policy, random),
  };
}

/**
 * Transition after a failed refresh.
 *
 * - permanent (grant): `error`, no further schedule;
 * - permanent (provider configuration): `degraded` — the grant may be fine, so
 *   it is not invalidated; retried at the recovery interval (and at once when
 *   the provider definition is fixed);
 * - transient: `degraded`; backoff for the first `maxRetries` failures, then
 *   active recovery every `recoveryInterval`. A `Retry-After` longer than the
 *   computed delay wins, capped at `keepAlive`.
 */
export function afterRefreshFailure(
  subject: Pick<RefreshSubject, "consecutiveFailures">,
  verdict: Classification,
  nowMs: number,
  policy: RefreshPolicy,
  random: number,
): RefreshTransition {
  const failures = subject.consecutiveFailures + 1;
  if (verdict.class === "permanent" && verdict.scope === "grant") {
    return { state: "error", consecutiveFailures: failures, nextRefreshAtMs: null, phase: "dead" };
  }
  if (verdict.class === "permanent") {
    return {
      state: "degraded",
      consecutiveFailures: failures,
      nextRefreshAtMs: nowMs + policy.recoveryIntervalMs,
      phase: "provider_misconfigured",
    };
  }
  const inRecovery = failures > policy.maxRetries;
  const delay = inRecovery ? policy.recoveryIntervalMs : backoffDelayMs(failures, policy, random);
  return {
    state: "degraded",
    consecutiveFailures: failures,
    // A provider's Retry-After is honoured, up to keepAlive: a bogus header must not park a grant for years.
    nextRefreshAtMs: nowMs + Math.max(delay, Math.min(verdict.retryAfterMs ?? 0, policy.keepAliveMs)),
    phase: inRecovery ? "recovery" : "backoff",
    enteredRecovery: failures === policy.maxRetries + 1,
  };
}

/**
 * Host-reported state change (`PATCH /v1/connections/{id}`).
 * @returns the new state, or a refusal when grantkeeper owns the current state
 *   (`error` needs re-authorization; `degraded` clears only on a successful refresh)
 */
export function applyHostReport(
  current: ConnectionState,
  reported: HostReportedState,
): { ok: true; state: ConnectionState } | { ok: false; code: "connection_error" | "connection_degraded" } {
  if (current === "error") return { ok: false, code: "connection_error" };
  if (current === "degraded") return { ok: false, code: "connection_degraded" };
  return { ok: true, state: reported };
}

/** `lastError.code` and event type of a connection the provider's API keeps rejecting. */
export const API_AUTH_REJECTED = "api_auth_rejected";

/** Result of {@link afterApiAuthRejected}. */
export interface ApiAuthRejectedTransition {
  state: ConnectionState;
  /** True when this rejection is the one that makes the connection `degraded` (write it, tell once). */
  degrade: boolean;
}

/**
 * Transition after the provider's API rejected a token that was just
 * refreshed (the retry's answer was a 401 or an `apiAuthFailure` match too).
 * The `authFailuresToDegrade`-th rejection in a row makes a working
 * connection `degraded` — never `error`: an API's rejection does not prove
 * the grant dead (a revoked scope, a suspended workspace, a provider bug),
 * and only the token endpoint's `invalid_grant` may say that. An `error` or
 * already `degraded` connection is left as it is.
 * @param subject `apiAuthRejections` counts this rejection
 * @param policy `authFailuresToDegrade` ≥ 1 (default 3)
 */
export function afterApiAuthRejected(
  subject: { state: ConnectionState; apiAuthRejections: number },
  policy: { authFailuresToDegrade: number },
): ApiAuthRejectedTransition {
  const working = subject.state === "pending" || subject.state === "syncing" || subject.state === "ready";
  if (working && subject.apiAuthRejections >= policy.authFailuresToDegrade) return { state: "degraded", degrade: true };
  return { state: subject.state, degrade: false };
}

/**
 * Transition after the provider's API accepted a token: the rejection count
 * goes back to 0, and a connection `degraded` *because of* API rejections
 * (its `lastError.code` is {@link API_AUTH_REJECTED}) is `ready` again. A
 * connection degraded by a failed refresh waits for a successful refresh.
 */
export function afterApiAuthAccepted(subject: { state: ConnectionState; lastErrorCode: string | undefined }): { state: ConnectionState; recovered: boolean } {
  if (subject.state === "degraded" && subject.lastErrorCode === API_AUTH_REJECTED) return { state: "ready", recovered: true };
  return { state: subject.state, recovered: false };
}
