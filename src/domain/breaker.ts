/**
 * A breaker per delivery target, as pure transitions. The state lives in the
 * store so every instance sees one breaker and one cooldown — cockatiel's
 * CircuitBreakerPolicy keeps its state in memory and reads Date.now(), so it
 * can neither be shared across instances nor driven by an injected clock.
 * (The chat-agent incident: no breaker, and a cooldown some paths bypassed.)
 */

/** Breaker state names, mirrored in the store's `breakers.state` column. */
export const BREAKER_STATES = ["closed", "open"] as const;

/** One of {@link BREAKER_STATES}. */
export type BreakerStateName = (typeof BREAKER_STATES)[number];

/**
 * A breaker's persisted state. Times in ms since the epoch. There is no
 * separate half-open state: an open breaker whose cooldown has passed lets
 * one probe through ({@link probeDue}); the probe's success closes it, its
 * fault starts another cooldown.
 */
export type BreakerState =
  | { state: "closed"; consecutiveFailures: number; cooldownUntil: number | null }
  | { state: "open"; consecutiveFailures: number; openedAt: number; cooldownUntil: number };

/** Breaker policy (config `breaker`). */
export interface BreakerPolicy {
  /** Consecutive faults that open the breaker. @defaultValue 3 */
  maxConsecutiveFailures: number;
  /** After each fault, no job for the target starts for this long, on any path. @defaultValue 120 000 ms */
  cooldownMs: number;
}

/** A closed breaker with no history. */
export const closedBreaker: BreakerState = { state: "closed", consecutiveFailures: 0, cooldownUntil: null };

/** What a transition asks the caller to do besides storing the new state. */
export interface BreakerTransition {
  next: BreakerState;
  /** The breaker just opened: integrations using the target → ERROR(circuit_open), ops alerted once. */
  opened: boolean;
  /** The breaker just closed: integrations in ERROR(circuit_open) for the target → ENABLED, parked jobs replay. */
  closed: boolean;
}

/**
 * After a fault: start a cooldown; open after `maxConsecutiveFailures`.
 * The store counts the fault atomically and hands this function the state
 * the increment started from, so concurrent faults (instances, jobs of one
 * batch) each count once and only one of them opens the breaker.
 */
export function onFault(s: BreakerState, nowMs: number, p: BreakerPolicy): BreakerTransition {
  const failures = s.consecutiveFailures + 1;
  const cooldownUntil = nowMs + p.cooldownMs;
  if (s.state === "open") return { next: { ...s, consecutiveFailures: failures, cooldownUntil }, opened: false, closed: false };
  if (failures >= p.maxConsecutiveFailures) return { next: { state: "open", consecutiveFailures: failures, openedAt: nowMs, cooldownUntil }, opened: true, closed: false };
  return { next: { state: "closed", consecutiveFailures: failures, cooldownUntil }, opened: false, closed: false };
}

/** After a success (a normal run, or the half-open probe): closed, no cooldown. */
export function onSuccess(s: BreakerState): BreakerTransition {
  return { next: closedBreaker, opened: false, closed: s.state === "open" };
}

/**
 * True when jobs for the target may start at `nowMs` (no cooldown running).
 * The rule of every entry path: the queue's claim SQL (`store/jobs.ts`)
 * implements it inside {@link ./jobLifecycle.ts mayClaim} and is tested
 * against it; there is no second copy.
 */
export function mayStart(s: BreakerState, nowMs: number): boolean {
  return s.cooldownUntil === null || s.cooldownUntil <= nowMs;
}

/**
 * True when an open breaker's cooldown has passed and one probe may go
 * through. `BreakerRepository.dueForProbe` selects exactly these (tested
 * against this function).
 */
export function probeDue(s: BreakerState, nowMs: number): boolean {
  return s.state === "open" && s.cooldownUntil <= nowMs;
}
