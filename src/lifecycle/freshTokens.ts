/**
 * Fresh access tokens from memory (issue 16 "Fresh tokens"): a per-instance,
 * bounded (LRU) map of decrypted access tokens that are still fresh, so that
 * `ensureFresh`, `POST /v1/connections/{id}/token` and the proxy do not read
 * and decrypt the connection row on every call.
 *
 * Rules (docs/architecture.md "Fresh tokens from memory"):
 * - An entry is handed out only while the token is fresh by the same test the
 *   store path applies ({@link isFresh}: `expiresAt − margin > now`, the margin
 *   the provider's own `refreshMarginSeconds` or `refresh.marginSeconds`), so
 *   an expired token — or one due for refresh — is never handed out from here.
 * - An entry lives at most one margin after it was filled: a refresh by
 *   another instance (which changes the store, not this map) is seen within
 *   one `refresh.marginSeconds`.
 * - This instance's own changes invalidate at once: every refresh attempt of
 *   the engine (whatever its outcome: a new token, an adopted one, a grant
 *   turned `error`), a re-authorization, a delete (with revocation), an API
 *   auth rejection, a provider redefinition.
 * - A fill that read the store before an invalidation of the same connection
 *   is refused (an epoch per invalidation), so a read racing a refresh cannot
 *   put the old token back; a deleted connection is never filled again.
 *
 * Nothing here is persisted or logged; tokens live in this process's memory
 * only, as they already did for the duration of each call.
 */
import type { ConnectionState } from "../domain/states.js";
import type { ProviderView } from "../providers/service.js";
import type { ConnectionSummaryRow } from "../store/connections.js";

/** A fresh access token, as `POST /v1/connections/{id}/token` answers. */
export interface AccessToken {
  accessToken: string;
  tokenType: string;
  /** RFC 3339, or null for a token that does not expire. */
  expiresAt: string | null;
}

/** What one cached grant carries: the token, and what a provider API call needs besides it. */
export interface CachedGrant {
  token: AccessToken;
  /** The connection's summary row as read at fill time (no ciphertext). */
  connection: ConnectionSummaryRow;
  /** The provider's definition as read at fill time; undefined when it was not defined. */
  provider: ProviderView | undefined;
  /** Values derived from the two above by their users, computed once per entry (e.g. the connection's resolved `apiBaseUrl`). */
  memo?: { apiBaseUrl?: string };
}

interface Entry extends CachedGrant {
  /** Handed out while `now < validUntilMs` (milliseconds since the epoch). */
  validUntilMs: number;
}

interface Tombstone {
  /** The invalidation's epoch: fills that read before it are refused. */
  epoch: number;
  /** The connection was deleted: never filled again. */
  gone: boolean;
}

/** Options of {@link FreshTokenCache}. */
export interface FreshTokenCacheOptions {
  /** Entries kept at most (least recently used dropped first). @defaultValue 10 000 */
  maxEntries: number;
}

/** Default of {@link FreshTokenCacheOptions.maxEntries}. */
export const DEFAULT_FRESH_TOKEN_ENTRIES = 10_000;

/**
 * Until when a token read from the store at `nowMs` may be handed out from
 * memory: the earlier of one margin from now and the moment it stops being
 * fresh (the same lead as {@link isFresh}: at most half a lifetime grantkeeper
 * knows). Never after `expiresAtMs`.
 * @param expiresAtMs absolute expiry in milliseconds, or null (does not expire)
 * @param lastRefreshedAtMs when grantkeeper last refreshed it (its lifetime is then known), or null
 * @param marginMs the provider's refresh margin, milliseconds
 * @returns milliseconds since the epoch; `<= nowMs` means "do not cache"
 */
export function cacheableUntil(expiresAtMs: number | null, lastRefreshedAtMs: number | null, nowMs: number, marginMs: number): number {
  const byMargin = nowMs + marginMs;
  if (expiresAtMs === null) return byMargin;
  const lifetimeMs = lastRefreshedAtMs !== null ? expiresAtMs - lastRefreshedAtMs : undefined;
  const lead = lifetimeMs !== undefined && lifetimeMs > 0 ? Math.min(marginMs, Math.floor(lifetimeMs / 2)) : marginMs;
  return Math.min(byMargin, expiresAtMs - lead);
}

/** States whose token may be handed out (`error` never is). */
function usable(state: ConnectionState | string): boolean {
  return state !== "error";
}

/**
 * The per-instance map of fresh tokens; see the module comment for its rules.
 * Invalidations are kept apart from the tokens (each map bounded by `maxEntries`), so that the scheduler's
 * refreshes of many grants never push the tokens of the connections in use out of memory.
 */
export class FreshTokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly tombstones = new Map<string, Tombstone>();
  private epochCounter = 0;
  private readonly maxEntries: number;

  /** @throws RangeError when `maxEntries` is not an integer >= 0 (0 turns the cache off) */
  constructor(options: Partial<FreshTokenCacheOptions> = {}) {
    this.maxEntries = options.maxEntries ?? DEFAULT_FRESH_TOKEN_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 0) throw new RangeError(`fresh token cache maxEntries must be an integer >= 0, got ${this.maxEntries}`);
  }

  /** The current epoch: take it before reading the store, pass it to {@link fill}. */
  epoch(): number {
    return this.epochCounter;
  }

  /** Number of tokens held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The cached grant of a connection when its token is still fresh at `nowMs`; undefined otherwise
   * (and an entry past its time is dropped).
   */
  get(connectionId: string, nowMs: number): CachedGrant | undefined {
    const e = this.entries.get(connectionId);
    if (e === undefined) return undefined;
    this.entries.delete(connectionId);
    if (nowMs >= e.validUntilMs) return undefined;
    // Most recently used last: Map keeps insertion order.
    this.entries.set(connectionId, e);
    return e;
  }

  /**
   * Remember a token read at `epoch` (see {@link epoch}), valid until `validUntilMs`
   * (see {@link cacheableUntil}). Ignored when the connection was invalidated since,
   * was deleted, is in `error`, or the token is not fresh any more.
   */
  fill(connectionId: string, epoch: number, grant: CachedGrant, validUntilMs: number, nowMs: number): void {
    if (this.maxEntries === 0 || validUntilMs <= nowMs || !usable(grant.connection.state)) return;
    const t = this.tombstones.get(connectionId);
    if (t !== undefined && (t.gone || t.epoch > epoch)) return;
    this.entries.delete(connectionId);
    this.entries.set(connectionId, { ...grant, memo: {}, validUntilMs });
    evictOldest(this.entries, this.maxEntries);
  }

  /**
   * Forget a connection's token: the next call reads the store. Fills that read before this are refused.
   * @param gone the connection was deleted: refuse every later fill too
   */
  invalidate(connectionId: string, gone = false): void {
    this.epochCounter++;
    this.entries.delete(connectionId);
    const wasGone = this.tombstones.get(connectionId)?.gone === true;
    this.tombstones.delete(connectionId);
    this.tombstones.set(connectionId, { epoch: this.epochCounter, gone: gone || wasGone });
    evictOldest(this.tombstones, this.maxEntries);
  }

  /** Forget every token of a provider's connections (the provider was redefined: its API base URL or rules may have changed). */
  invalidateProvider(providerId: string): void {
    const ids = [...this.entries].filter(([, e]) => e.connection.provider_id === providerId).map(([id]) => id);
    for (const id of ids) this.invalidate(id);
  }
}

/** Drop the oldest keys of `map` (insertion order) until it holds at most `max`. */
function evictOldest(map: Map<string, unknown>, max: number): void {
  while (map.size > max) map.delete(map.keys().next().value as string);
}
