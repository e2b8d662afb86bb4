/**
 * Job outcome classes (design.md "Jobs and delivery"): the background-jobs
 * incident alerted ops on every user error; here a user/workflow error is a
 * recorded failure, an infrastructure fault is retried then alerted, and an
 * auth failure refreshes or parks instead of failing.
 */

/** What running a job produced. */
export type JobOutcome =
  | { kind: "succeeded" }
  /** User/workflow error: recorded, not retried, no ops alert. */
  | { kind: "failed"; code: string; message: string }
  /** Infrastructure fault: retried with backoff up to maxAttempts, then dead. */
  | { kind: "faulted"; code: string; message: string; retryAfterMs?: number }
  /**
   * Upstream auth rejection: refresh the connection and re-run, or park (see jobLifecycle.ts).
   * `refreshed`: the rejection was already answered with a refresh of the connection (`ctx.fetch` refreshes
   * once before it throws), so no second refresh is asked for.
   */
  | { kind: "auth_failed"; connectionId?: string; message: string; refreshed?: boolean };

/** What a consumer answered, or that it did not. */
export type DeliveryObservation =
  | { kind: "http"; status: number; code?: string; connectionId?: string; retryAfterMs?: number }
  | { kind: "timeout" }
  | { kind: "network" };

/**
 * Classify a consumer's answer (api-contract.md "Delivery to a consumer"):
 * 2xx succeeded; 424 `{"code":"auth_failed","connectionId"}` auth; 408, 429,
 * 5xx, timeout, refused faulted; any other 4xx failed (user error).
 */
export function classifyDelivery(obs: DeliveryObservation): JobOutcome {
  if (obs.kind === "timeout") return { kind: "faulted", code: "timeout", message: "consumer did not answer in time" };
  if (obs.kind === "network") return { kind: "faulted", code: "network_error", message: "consumer unreachable" };
  const { status } = obs;
  if (status >= 200 && status < 300) return { kind: "succeeded" };
  if (status === 424 && obs.code === "auth_failed") return { kind: "auth_failed", ...(obs.connectionId ? { connectionId: obs.connectionId } : {}), message: "consumer reported an upstream auth failure" };
  const retry = obs.retryAfterMs !== undefined ? { retryAfterMs: obs.retryAfterMs } : {};
  if (status >= 500 || status === 408 || status === 429) return { kind: "faulted", code: `http_${status}`, message: `consumer answered ${status}`, ...retry };
  if (status >= 400) return { kind: "failed", code: `http_${status}`, message: `consumer answered ${status}` };
  return { kind: "faulted", code: `http_${status}`, message: `consumer answered ${status}` };
}

/**
 * Delay before the next attempt of a faulted job: exponential with full
 * jitter, `random × min(maxMs, baseMs × 2^(attempt−1))`, at least `retryAfterMs`.
 * @param attempt attempts made so far (1-based)
 * @returns milliseconds
 */
export function jobBackoffMs(attempt: number, baseMs: number, maxMs: number, random: number, retryAfterMs = 0): number {
  return Math.max(retryAfterMs, Math.floor(random * Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))), 1);
}
