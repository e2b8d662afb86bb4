/**
 * A breaker per provider token endpoint, as pure decisions (design.md
 * "Breakers and cooldowns"). The state and its transitions are the delivery
 * breaker's ({@link ./breaker.ts}: `onFault`, `onSuccess`); what is specific to
 * a token endpoint lives here: which refresh outcomes are the endpoint's
 * fault, and what a refresh does when the breaker is open — one half-open
 * probe per cooldown, every other connection of the provider deferred to the
 * end of the cooldown without spending its own failure budget.
 *
 * Seed incident (issue 12): a lead crash-looped against a token endpoint that
 * was down, every connection hammering it and running out its retries.
 */
import type { BreakerState } from "./breaker.js";
import type { Classification, TransientReason } from "./classify.js";
import type { ConnectionState } from "./states.js";
import { API_AUTH_REJECTED } from "./transitions.js";

/**
 * Transient reasons that say the token endpoint itself is failing (no answer,
 * a 5xx, a 429/408, an HTML error page), as opposed to an answer about one
 * grant. Only these count toward the provider's breaker.
 */
const ENDPOINT_FAULTS: ReadonlySet<TransientReason> = new Set(["network", "timeout", "server_error", "rate_limited", "request_timeout", "non_json_response"]);

/**
 * True when a refresh verdict is the token endpoint's fault (counts toward
 * `breaker.maxConsecutiveFailures`). A permanent verdict, an unknown `error`
 * code or a provider override is an answer: the endpoint works.
 * @see design.md "Failure classification", "Breakers and cooldowns"
 */
export function isEndpointFault(verdict: Classification): boolean {
  return verdict.class === "transient" && ENDPOINT_FAULTS.has(verdict.reason);
}

/**
 * What a refresh may do at `nowMs` given its provider's breaker:
 * - `call`: the breaker is closed: call the token endpoint;
 * - `probe`: open, cooldown over: one caller may send the half-open probe — it
 *   must first claim it in the store (`ProviderBreakerRepository.claimProbe`),
 *   so only one instance sends it; a caller that loses the claim is `blocked`;
 * - `blocked`: open, cooldown running: no call; retry at `retryAtMs` (ms since the epoch).
 */
export type ProviderGate = { kind: "call" } | { kind: "probe" } | { kind: "blocked"; retryAtMs: number };

/**
 * Decide what a refresh may do.
 * @param s the provider's breaker (closed when never seen)
 * @param nowMs ms since the epoch
 */
export function providerGate(s: BreakerState, nowMs: number): ProviderGate {
  if (s.state !== "open") return { kind: "call" };
  return s.cooldownUntil <= nowMs ? { kind: "probe" } : { kind: "blocked", retryAtMs: s.cooldownUntil };
}

/** Last-error code of a connection whose refresh an open provider breaker deferred (no call was made). */
export const BREAKER_OPEN_CODE = "token_endpoint_breaker_open";

/**
 * When a deferred connection tries again: the end of the cooldown, spread
 * over at most a tenth of it (at most 30 s) so the connections of a provider
 * do not all wake in the same millisecond. Whoever wakes first after the
 * cooldown claims the probe; the others are deferred again until it closes
 * the breaker (which reschedules them at once).
 * @param retryAtMs end of the cooldown, ms since the epoch
 * @param cooldownMs the breaker's cooldown, ms
 * @param random a number in [0, 1)
 * @returns ms since the epoch
 */
export function deferredUntil(retryAtMs: number, cooldownMs: number, random: number): number {
  return retryAtMs + Math.floor(Math.min(cooldownMs / 10, 30_000) * random);
}

/** What {@link afterDeferred} tells the refresher to write for a deferred connection. */
export type Deferral =
  /** Already deferred to (at least) that time: write nothing, only give the lease back. */
  | { write: false }
  | {
      write: true;
      /** Always `degraded`: the grant is usable, its refresh could not happen. */
      state: "degraded";
      /** When to try again, ms since the epoch ({@link deferredUntil}). */
      nextRefreshAtMs: number;
      /** False when the last error must stay (a connection degraded because its API rejects its tokens). */
      replaceLastError: boolean;
    };

/**
 * A refresh the open breaker did not let through (or a failed half-open
 * probe): the connection becomes `degraded` and waits for the end of the
 * cooldown; its failure count is left alone (it is not the grant's failure).
 * @param subject the connection: state, last error code, next refresh (ms since the epoch or null)
 * @param retryAtMs end of the cooldown, ms since the epoch
 * @param probe true for a failed probe (always written: its attempt is recorded)
 * @param cooldownMs the breaker's cooldown, ms
 * @param random a number in [0, 1), for the spread
 */
export function afterDeferred(
  subject: { state: ConnectionState; lastErrorCode: string | undefined; nextRefreshAtMs: number | null },
  retryAtMs: number,
  probe: boolean,
  cooldownMs: number,
  random: number,
): Deferral {
  const alreadyDeferred = subject.state === "degraded" && subject.lastErrorCode === BREAKER_OPEN_CODE && subject.nextRefreshAtMs !== null && subject.nextRefreshAtMs >= retryAtMs;
  if (!probe && alreadyDeferred) return { write: false };
  return {
    write: true,
    state: "degraded",
    nextRefreshAtMs: deferredUntil(retryAtMs, cooldownMs, random),
    // A connection whose API rejects its tokens keeps saying so: the deferral is not why it is degraded.
    replaceLastError: !(subject.state === "degraded" && subject.lastErrorCode === API_AUTH_REJECTED),
  };
}

/** A provider breaker as `GET /v1/providers/{id}` and the dashboard show it (times ISO 8601, durations in seconds). */
export interface ProviderBreakerView {
  /** `open`: token calls are spaced to one half-open probe per cooldown. */
  state: "closed" | "open";
  /** Consecutive endpoint faults across the provider's connections. */
  consecutiveFailures: number;
  /** When it opened (only when open). */
  openedAt?: string;
  /** Seconds until the next probe may go out (only when open; 0 when one is due). */
  retryAfterSeconds?: number;
}

/**
 * The view of a breaker at `nowMs`.
 * @param s the breaker
 * @param nowMs ms since the epoch
 */
export function providerBreakerView(s: BreakerState, nowMs: number): ProviderBreakerView {
  if (s.state !== "open") return { state: "closed", consecutiveFailures: s.consecutiveFailures };
  return { state: "open", consecutiveFailures: s.consecutiveFailures, openedAt: new Date(s.openedAt).toISOString(), retryAfterSeconds: Math.max(0, Math.ceil((s.cooldownUntil - nowMs) / 1000)) };
}
