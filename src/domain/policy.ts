/**
 * Refresh policy numbers, in milliseconds internally (the config file uses
 * seconds; {@link ../config/config.ts} converts at the edge).
 */
export interface RefreshPolicy {
  /** Refresh this long before expiry. @defaultValue 300 000 ms (5 min) */
  marginMs: number;
  /** Up to this much earlier, at random, so grants issued together do not refresh together. @defaultValue 30 000 ms */
  jitterMs: number;
  /** One token endpoint call times out after this. @defaultValue 30 000 ms */
  timeoutMs: number;
  /** Transient failures retried with backoff before active recovery. @defaultValue 5 */
  maxRetries: number;
  /** First backoff delay. @defaultValue 5 000 ms */
  backoffBaseMs: number;
  /** Backoff cap. @defaultValue 300 000 ms */
  backoffMaxMs: number;
  /** Active recovery: try this often until it works or turns permanent. @defaultValue 1 800 000 ms (30 min) */
  recoveryIntervalMs: number;
  /** At most one token endpoint call per connection per this interval, forced refreshes included (Nango INC-88). @defaultValue 5 000 ms */
  minIntervalMs: number;
  /** Lifetime assumed when a token response has no `expires_in` (Nango #6775). @defaultValue 3 600 000 ms */
  assumedLifetimeMs: number;
  /** Refresh idle grants at least this often so refresh tokens that expire when idle stay alive. @defaultValue 86 400 000 ms */
  keepAliveMs: number;
}

/** Defaults of design.md / api-contract.md. Frozen. */
export const defaultRefreshPolicy: Readonly<RefreshPolicy> = Object.freeze({
  marginMs: 300_000,
  jitterMs: 30_000,
  timeoutMs: 30_000,
  maxRetries: 5,
  backoffBaseMs: 5_000,
  backoffMaxMs: 300_000,
  recoveryIntervalMs: 1_800_000,
  minIntervalMs: 5_000,
  assumedLifetimeMs: 3_600_000,
  keepAliveMs: 86_400_000,
});

/**
 * Merge and validate a partial policy.
 * @throws RangeError naming the first value that is not a finite number ≥ 0 (or, for `maxRetries`, an integer)
 */
export function resolveRefreshPolicy(partial: Partial<RefreshPolicy> = {}): RefreshPolicy {
  const merged: RefreshPolicy = { ...defaultRefreshPolicy, ...stripUndefined(partial) };
  for (const [key, value] of Object.entries(merged)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new RangeError(`refresh policy ${key} must be a finite number >= 0, got ${String(value)}`);
    }
  }
  if (!Number.isInteger(merged.maxRetries)) throw new RangeError(`refresh policy maxRetries must be an integer, got ${merged.maxRetries}`);
  if (merged.timeoutMs === 0) throw new RangeError("refresh policy timeoutMs must be > 0");
  return merged;
}

/**
 * What a provider's definition says about timing, in the units of its
 * definition (seconds). Plain numbers: the domain does not know provider definitions.
 */
export interface ProviderTiming {
  /** Overrides `marginMs` for this provider's connections. */
  refreshMarginSeconds?: number;
  /** The provider's refresh tokens die after this long unused (Xero 60 days, QuickBooks 100 days). */
  refreshTokenIdleExpirySeconds?: number;
}

/**
 * The refresh policy for one provider's connections: its own margin when it
 * has one, and a keep-alive short enough to refresh idle grants at least
 * twice per refresh-token idle lifetime, so that one failed keep-alive and
 * its retries still land before the refresh token dies. Every place that
 * asks "is this token fresh" or "when is it due" — storing a grant,
 * `ensureFresh`, the refresh engine — uses this one rule.
 * @returns `policy` itself when the provider changes nothing
 * @see design.md "Keep-alive"
 */
export function policyForProvider(policy: RefreshPolicy, timing: ProviderTiming): RefreshPolicy {
  const marginMs = timing.refreshMarginSeconds !== undefined ? timing.refreshMarginSeconds * 1000 : policy.marginMs;
  const idleMs = timing.refreshTokenIdleExpirySeconds !== undefined ? timing.refreshTokenIdleExpirySeconds * 1000 : undefined;
  const keepAliveMs = idleMs !== undefined ? Math.min(policy.keepAliveMs, Math.floor(idleMs / 2)) : policy.keepAliveMs;
  return marginMs === policy.marginMs && keepAliveMs === policy.keepAliveMs ? policy : { ...policy, marginMs, keepAliveMs };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
