/**
 * Per-instance cache of integrations' inbound webhook signing settings
 * (issue 16 item 3): ingress verifies a signature without a store read per
 * webhook. An entry lives at most `ttlMs` (5 s by default) by the injected
 * clock. It is only ever trusted to ACCEPT: ingress re-reads the store before
 * it refuses a webhook that the cached settings reject, so no cache refuses a
 * valid webhook; and the instance that changes an integration's settings drops
 * its own entry at once. The integration's status is never cached: the job's
 * state is decided in the INSERT (store/jobs.ts `acceptGroup`).
 */
import type { Clock } from "../domain/clock.js";

/** An integration's inbound signing settings, secrets decrypted (kept in memory only; never logged). */
export interface WebhookSigning {
  /** The scheme (`github`, `stripe`, …, `none`), or `not_configured` (the integration takes no inbound webhooks). */
  signing: string;
  /** The current secret; undefined for `none` and `not_configured`. */
  secret: string | undefined;
  /** The secret the last rotation replaced, accepted until {@link previousUntilMs}; undefined when none. */
  previousSecret: string | undefined;
  /** End of the rotation overlap, ms since the epoch (`webhook_secret_rotated_at` + `webhook.secretOverlapSeconds`); 0 when no previous secret. */
  previousUntilMs: number;
}

/** Default lifetime of an entry, ms (issue 16: signing settings may be cached per instance for ≤ 5 s). */
export const SIGNING_CACHE_TTL_MS = 5_000;

/** Bounded, time-limited map of {@link WebhookSigning} by integration id. */
export class WebhookSigningCache {
  private readonly entries = new Map<string, { value: WebhookSigning; expiresAtMs: number }>();

  /**
   * @param clock the injected clock (entries expire by it)
   * @param ttlMs lifetime of an entry, ms; 0 disables the cache @defaultValue 5 000
   * @param capacity entries kept; the oldest inserted is dropped first @defaultValue 10 000
   */
  constructor(
    private readonly clock: Clock,
    private readonly ttlMs = SIGNING_CACHE_TTL_MS,
    private readonly capacity = 10_000,
  ) {}

  /** The settings cached for `integrationId` and not yet expired, or undefined. */
  get(integrationId: string): WebhookSigning | undefined {
    const e = this.entries.get(integrationId);
    if (!e) return undefined;
    if (this.clock.now() >= e.expiresAtMs) {
      this.entries.delete(integrationId);
      return undefined;
    }
    return e.value;
  }

  /** Cache settings just read from the store. */
  set(integrationId: string, value: WebhookSigning): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(integrationId);
    this.entries.set(integrationId, { value, expiresAtMs: this.clock.now() + this.ttlMs });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Drop an entry (this instance changed or deleted the integration's settings). */
  invalidate(integrationId: string): void {
    this.entries.delete(integrationId);
  }
}
