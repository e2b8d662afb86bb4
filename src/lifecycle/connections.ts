/**
 * The connection API of the lifecycle: import a grant, read, ensure a fresh
 * access token, refresh on demand, host-reported state, delete with
 * revocation, event history.
 */
import type { Clock } from "../domain/clock.js";
import { forClientCredentials, classifyRefreshFailure } from "../domain/classify.js";
import { policyForProvider, type RefreshPolicy } from "../domain/policy.js";
import type { ConnectionState, HostReportedState } from "../domain/states.js";
import { applyHostReport, nextRefreshAfterSuccess } from "../domain/transitions.js";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import { clientCredentialsGrant, isTokenEndpointError, revokeToken, type TokenSet } from "../oauth/tokenEndpoint.js";
import { assertConnectionConfigComplete, forTokenCalls, parseConnectionConfig, type ConnectionConfig } from "../providers/connectionConfig.js";
import { grantTypeOf, timingOf, type ProviderDefinition } from "../providers/definition.js";
import type { ProviderService } from "../providers/service.js";
import { newConnectionId, type ConnectionFilter, type ConnectionRepository, type ConnectionRow } from "../store/connections.js";
import type { Encryptor } from "../store/encryption.js";
import type { UnitsOfWork } from "../store/unitOfWork.js";
import type { Logger } from "../telemetry/logger.js";
import { connectionInError, connectionNotFound, providerNotFound, refreshRateLimited, tokenEndpointUnavailable, tokenUnavailable } from "./errors.js";
import { cacheableUntil, type AccessToken, type CachedGrant, type FreshTokenCache } from "./freshTokens.js";
import type { LifecycleHooks } from "./hooks.js";
import { isFresh, type RefreshEngine } from "./refresher.js";
import { tokenContext } from "./refreshRecorder.js";
import type { RefreshScheduler } from "./scheduler.js";
import { toConnection, type Connection, type ConnectionEvent } from "./view.js";
import { seqCursor } from "../domain/cursor.js";

export type { AccessToken } from "./freshTokens.js";

/** A grant to store: from an import, a code exchange or a client-credentials request. */
export interface GrantInput {
  providerId: string;
  entityId: string;
  tokens: TokenSet;
  /** Absolute expiry in milliseconds since the epoch; overrides `tokens.expiresInSeconds`. */
  expiresAtMs?: number;
  source: "import" | "connect" | "client_credentials";
  /**
   * The connection's settings (`{subdomain}`, `{tenant}`; never secrets), from the import or the connect
   * session, validated by `connectionConfigSchema` (src/providers/connectionConfig.ts). Merged over the connection's stored ones; the token response's `tokenResponseConfig` fields win over both.
   */
  connectionConfig?: ConnectionConfig;
}

/** What {@link ConnectionService.obtain} needs: a client-credentials connection has no user grant to import. */
export interface ClientCredentialsInput {
  providerId: string;
  entityId: string;
  /** Scopes to ask for. @defaultValue the provider's `scopes` */
  scopes?: readonly string[];
  connectionConfig?: ConnectionConfig;
}

/** Dependencies of {@link ConnectionService}. */
export interface ConnectionServiceDeps {
  repo: ConnectionRepository;
  providers: ProviderService;
  engine: RefreshEngine;
  scheduler: RefreshScheduler;
  encryptor: Encryptor;
  clock: Clock;
  fetch: typeof fetch;
  logger: Logger;
  policy: RefreshPolicy;
  hooks: LifecycleHooks;
  /** Units of work for what other parts write in a connection change's transaction. */
  units: UnitsOfWork;
  random: () => number;
  /** Fresh tokens in memory (docs/architecture.md "Fresh tokens from memory"); the engine shares it. */
  freshTokens: FreshTokenCache;
}

/** Connections: the library surface (`gk.connections`) and what the HTTP API calls. */
export class ConnectionService {
  constructor(private readonly d: ConnectionServiceDeps) {}

  /**
   * Store a grant for an entity at a provider: creates the connection, or
   * gives the entity's existing one its new tokens (re-authorization: state
   * back to `pending`, failures cleared).
   * @returns the connection and whether it was created
   * @throws {@link GrantkeeperError} 422 `provider_not_found`; 422 `connection_config_missing` when an import
   *   leaves a placeholder of the provider's URLs without a value
   */
  async storeGrant(input: GrantInput): Promise<{ connection: Connection; created: boolean }> {
    const { repo, encryptor, clock, random } = this.d;
    const def = await this.d.providers.get(input.providerId);
    if (!def) throw providerNotFound(input.providerId, "body");
    const policy = this.policyFor(def);
    const now = clock.now();
    const t = input.tokens;
    const clientCredentials = grantTypeOf(def) === "client_credentials";
    const renewable = t.refreshToken !== undefined || clientCredentials;
    const assumed = input.expiresAtMs === undefined && t.expiresInSeconds === undefined && renewable;
    const expiresAt = input.expiresAtMs ?? (t.expiresInSeconds !== undefined ? now + t.expiresInSeconds * 1000 : assumed ? now + policy.assumedLifetimeMs : null);
    // A token the provider just issued has a known lifetime; an imported one may be near its end.
    const issuedAtMs = input.source === "import" ? undefined : now;
    const next = nextRefreshAfterSuccess({ expiresAtMs: expiresAt, renewable, issuedAtMs }, now, policy, random());
    // An expiring grant that cannot be renewed dies at expiry: expected at some providers, a setup mistake elsewhere.
    const noRefreshToken = !renewable && expiresAt !== null && def.quirks.refreshTokenOptional !== true;
    const { row, created, previousState } = await repo.transaction(async (trx) => {
      const existing = await repo.findByEntity(input.providerId, input.entityId, trx);
      const id = existing?.id ?? newConnectionId();
      const connectionConfig = { ...parseConnectionConfig(existing?.connection_config), ...input.connectionConfig, ...t.connectionConfig };
      // A connect was checked when it began and the provider's answer is never thrown away; an import is checked here.
      if (input.source !== "connect") assertConnectionConfigComplete(def, connectionConfig);
      const fields = {
        access_token_ct: encryptor.encrypt(t.accessToken, tokenContext(id, "access_token")),
        refresh_token_ct: t.refreshToken !== undefined ? encryptor.encrypt(t.refreshToken, tokenContext(id, "refresh_token")) : null,
        token_type: t.tokenType,
        scope: t.scope ?? "",
        expires_at: expiresAt,
        expires_at_assumed: assumed ? 1 : 0,
        // An imported grant may already be due (expires within the margin): the scheduler refreshes it.
        next_refresh_at: expiresAt !== null && renewable && issuedAtMs === undefined && expiresAt - policy.marginMs <= now ? now : next,
        consecutive_failures: 0,
        last_error: null,
        // A new grant starts with a clean slate at the provider's API too.
        api_auth_rejections: 0,
        lease_owner: null,
        lease_until: null,
        updated_at: now,
        connection_config: JSON.stringify(connectionConfig),
      };
      if (existing) {
        const keep: ConnectionState = existing.state === "syncing" || existing.state === "ready" ? existing.state : "pending";
        await repo.update(id, { ...fields, state: keep, token_version: existing.token_version + 1 }, trx);
        await repo.appendEvent({ connectionId: id, atMs: now, type: "reauthorized", message: `new grant stored by ${input.source}; was ${existing.state}`, detail: { source: input.source, previousState: existing.state } }, trx);
        await this.d.hooks.inTransaction("reauthorized", this.d.units.of(trx), { connectionId: id, previousState: existing.state, nowMs: now });
      } else {
        await repo.insert(
          { id, provider_id: input.providerId, entity_id: input.entityId, state: "pending", ...fields, last_refreshed_at: null, last_attempt_at: null, token_version: 1, created_at: now },
          trx,
        );
        await repo.appendEvent({ connectionId: id, atMs: now, type: "granted", message: `grant stored by ${input.source}`, detail: { source: input.source } }, trx);
      }
      if (noRefreshToken) {
        const message = "the provider issued no refresh token: this grant dies when its access token expires (ask for offline access, e.g. offline_access or access_type=offline)";
        await repo.appendEvent({ connectionId: id, atMs: now, type: "refresh_token_missing", message, detail: null }, trx);
      }
      return { row: (await repo.get(id, trx))!, created: !existing, previousState: existing?.state };
    });
    // A re-authorization replaces the token: the old one is never handed out from memory again.
    this.d.freshTokens.invalidate(row.id);
    this.d.scheduler.wake(row.next_refresh_at);
    this.d.logger.info({ connectionId: row.id, providerId: row.provider_id, source: input.source, created }, "grant stored");
    if (noRefreshToken) this.d.logger.warn({ connectionId: row.id, providerId: row.provider_id }, "grant stored without a refresh token at a provider that normally issues one");
    await this.d.hooks.emit("connection.granted", { connectionId: row.id, providerId: row.provider_id, entityId: row.entity_id, previousState });
    return { connection: toConnection(row), created };
  }

  /**
   * Create a client-credentials connection (RFC 6749 §4.4): obtain its first
   * token now; grantkeeper renews it before expiry like any other. For an
   * entity that already has one, renew it now (its settings updated when
   * given; rate limited like `refresh`).
   * @returns the connection and whether it was created
   * @throws {@link GrantkeeperError} 422 `provider_not_found`, `grant_type_mismatch` (the provider does not use
   *   client credentials), `connection_config_missing`; 502 `token_request_failed` (504 when it timed out) with
   *   the failure's class and code in `details.failureClass` / `details.failureCode` — nothing is stored then;
   *   429 `refresh_rate_limited`
   */
  async obtain(input: ClientCredentialsInput): Promise<{ connection: Connection; created: boolean }> {
    const { repo, fetch, policy, clock } = this.d;
    const provider = await this.d.providers.forCall(input.providerId).catch(() => {
      throw providerNotFound(input.providerId, "body");
    });
    const def = provider.definition;
    if (grantTypeOf(def) !== "client_credentials") {
      throw new GrantkeeperError(ErrorCode.grantTypeMismatch, `provider ${def.id} uses the authorization code grant: import a grant (accessToken) or send the user through the connect flow`);
    }
    const existing = await repo.findByEntity(input.providerId, input.entityId);
    if (existing) {
      if (input.connectionConfig) {
        const connectionConfig = { ...parseConnectionConfig(existing.connection_config), ...input.connectionConfig };
        assertConnectionConfigComplete(def, connectionConfig);
        await repo.update(existing.id, { connection_config: JSON.stringify(connectionConfig), updated_at: clock.now() });
      }
      return { connection: await this.refresh(existing.id), created: false };
    }
    const connectionConfig = input.connectionConfig ?? {};
    assertConnectionConfigComplete(def, connectionConfig);
    const scopes = input.scopes ?? def.scopes;
    let tokens: TokenSet;
    try {
      tokens = await clientCredentialsGrant({ provider: forTokenCalls(def, connectionConfig), clientSecret: provider.clientSecret, fetch, timeoutMs: policy.timeoutMs, nowMs: clock.now() }, scopes);
    } catch (e) {
      if (!isTokenEndpointError(e)) throw e;
      const verdict = forClientCredentials(classifyRefreshFailure(e.observation, def.errorClassOverrides, def.providerErrorCodes?.classes));
      this.d.logger.warn({ providerId: def.id, class: verdict.class, code: verdict.code, reason: e.message }, "client credentials request failed");
      throw new GrantkeeperError(ErrorCode.tokenRequestFailed, e.message, { ...(e.kind === "upstream_timeout" ? { kind: "upstream_timeout" as const } : {}), details: { failureClass: verdict.class, failureCode: verdict.code } });
    }
    // RFC 6749 §5.1: a response without `scope` granted what was asked for.
    if (tokens.scope === undefined && scopes.length > 0) tokens = { ...tokens, scope: scopes.join(" ") };
    return this.storeGrant({ providerId: def.id, entityId: input.entityId, tokens, source: "client_credentials", connectionConfig });
  }

  /** The refresh policy of one provider's connections (its margin, its refresh tokens' idle lifetime). */
  private policyFor(def: ProviderDefinition): RefreshPolicy {
    return policyForProvider(this.d.policy, timingOf(def));
  }

  /** One connection. @throws {@link GrantkeeperError} 404 */
  async get(id: string): Promise<Connection> {
    const row = await this.d.repo.getSummary(id);
    if (!row) throw connectionNotFound(id);
    return toConnection(row);
  }

  /** A page of connections, never touching ciphertext. `limit` 1..500 (default 100). */
  async list(filter: ConnectionFilter = {}, page: { cursor?: string; limit?: number } = {}): Promise<{ items: Connection[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 500);
    const rows = await this.d.repo.list(filter, page.cursor, limit + 1);
    const items = rows.slice(0, limit).map(toConnection);
    return rows.length > limit ? { items, nextCursor: items[items.length - 1]!.id } : { items };
  }

  /**
   * A usable access token: refreshed first when expired or within the margin
   * (single-flight). A still-valid token is returned even when that refresh
   * fails transiently. Served from memory while fresh (see {@link freshGrant}).
   * @throws {@link GrantkeeperError} 404 `connection_not_found`; 409 `connection_error` (grant dead);
   *   503 `token_unavailable` with `Retry-After` (expired and the provider is unreachable; still usable) — with
   *   `details.reason` `token_endpoint_breaker_open` and `Retry-After` = the breaker's remaining cooldown when the
   *   provider's token endpoint breaker is open (no call was made)
   */
  async ensureFresh(id: string): Promise<AccessToken> {
    return (await this.freshGrant(id)).token;
  }

  /**
   * The connection's token while it is fresh in this instance's memory, with the connection summary and
   * provider it was read with; undefined when the store must be read ({@link freshGrant} does). Never an
   * expired token, nor one within the refresh margin, nor one older than one margin.
   */
  cachedGrant(id: string): CachedGrant | undefined {
    return this.d.freshTokens.get(id, this.d.clock.now());
  }

  /**
   * {@link ensureFresh}, with the connection summary and provider definition it was decided on (what an API
   * call needs). From memory while the token is fresh and at most one margin old; else the store is read (and
   * the token refreshed when due), and the answer remembered.
   * @throws {@link GrantkeeperError} 404 `connection_not_found`; 409 `connection_error` (grant dead);
   *   503 `token_unavailable` with `Retry-After` (expired and the provider is unreachable; still usable)
   */
  async freshGrant(id: string): Promise<CachedGrant> {
    const { repo, clock, policy, freshTokens } = this.d;
    const hit = freshTokens.get(id, clock.now());
    if (hit) return hit;
    // Taken before the read: an invalidation meanwhile (a refresh here, a delete) refuses to remember this read.
    let epoch = freshTokens.epoch();
    // A refresh already running here answers every caller: no store read per caller.
    const joined = this.d.engine.inFlightFor(id);
    let row = joined ? (await joined).row : await repo.get(id);
    // The refresh's result is newer than its own invalidation.
    if (joined) epoch = freshTokens.epoch();
    if (!row) throw connectionNotFound(id);
    if (row.state === "error") throw connectionInError(id, this.lastErrorCode(row));
    // The provider's own timing decides (read fresh: another instance may have redefined it); the engine re-checks under its lease.
    const def = await this.d.providers.get(row.provider_id);
    const marginMs = def ? this.policyFor(def).marginMs : policy.marginMs;
    let breakerOpenForMs: number | undefined;
    if (!isFresh(row, clock.now(), marginMs)) {
      const result = await this.d.engine.refresh(id, "ensure");
      row = result.row;
      breakerOpenForMs = result.breakerOpenForMs;
      epoch = freshTokens.epoch();
    }
    if (row.state === "error") throw connectionInError(id, this.lastErrorCode(row));
    const now = clock.now();
    if (row.expires_at !== null && row.expires_at <= now && !expiryIsAGuess(row, def)) {
      if (breakerOpenForMs !== undefined) throw tokenEndpointUnavailable(id, row.provider_id, breakerOpenForMs);
      const retryMs = row.next_refresh_at !== null ? Math.max(1000, row.next_refresh_at - now) : policy.minIntervalMs;
      throw tokenUnavailable(id, retryMs, this.lastErrorCode(row) ?? "refresh pending");
    }
    const { access_token_ct: _a, refresh_token_ct: _r, ...connection } = row;
    const grant: CachedGrant = { token: this.tokenOf(row), connection, provider: def };
    freshTokens.fill(id, epoch, grant, cacheableUntil(row.expires_at, row.last_refreshed_at, now, marginMs), now);
    return grant;
  }

  /**
   * Refresh now (single-flight; counts against the per-connection rate limit).
   * @returns the connection after the attempt, whatever its result (see `lastError`)
   * @throws {@link GrantkeeperError} 404; 409 `connection_error`; 429 `refresh_rate_limited` with `Retry-After`
   */
  async refresh(id: string): Promise<Connection> {
    const row = await this.d.repo.getSummary(id);
    if (!row) throw connectionNotFound(id);
    if (row.state === "error") throw connectionInError(id, row.last_error ? (JSON.parse(row.last_error) as { code: string }).code : undefined);
    const result = await this.d.engine.refresh(id, "forced");
    if (result.rateLimitedForMs !== undefined) throw refreshRateLimited(id, result.rateLimitedForMs);
    return toConnection(result.row);
  }

  /**
   * Host-reported state (`pending` | `syncing` | `ready`).
   * @throws {@link GrantkeeperError} 404; 409 `connection_error` or `connection_degraded` when grantkeeper owns the state
   */
  async reportState(id: string, reported: HostReportedState): Promise<Connection> {
    const { repo, clock } = this.d;
    const row = await repo.getSummary(id);
    if (!row) throw connectionNotFound(id);
    const r = applyHostReport(row.state, reported);
    if (!r.ok) {
      throw new GrantkeeperError(r.code, r.code === "connection_error" ? `connection ${id} is in error; the user must reconnect` : `connection ${id} is degraded; it returns to ready on the next successful refresh`);
    }
    const now = clock.now();
    await repo.transaction(async (trx) => {
      await repo.update(id, { state: r.state, updated_at: now }, trx);
      await repo.appendEvent({ connectionId: id, atMs: now, type: "state_reported", message: `host reported ${reported}`, detail: { from: row.state, to: r.state } }, trx);
    });
    // The remembered summary carries the state (an API call's bookkeeping reads it).
    this.d.freshTokens.invalidate(id);
    return this.get(id);
  }

  /**
   * Revoke at the provider (RFC 7009; refresh token, else access token) when it
   * has a revocation endpoint, then delete. A failed revocation is logged and
   * reported, and the connection is deleted anyway (the user asked to forget it).
   * @returns whether the provider confirmed the revocation
   * @throws {@link GrantkeeperError} 404
   */
  async delete(id: string): Promise<{ revoked: boolean; revocationError?: string }> {
    const { repo, encryptor, providers, policy, clock, fetch } = this.d;
    const row = await repo.get(id);
    if (!row) throw connectionNotFound(id);
    // The token being revoked is not handed out from memory any more, and never again once deleted (below).
    this.d.freshTokens.invalidate(id);
    let revoked = false;
    let revocationError: string | undefined;
    const provider = await providers.forCall(row.provider_id).catch(() => undefined);
    if (provider?.definition.revocationEndpoint) {
      const useRefresh = row.refresh_token_ct !== null;
      const token = encryptor.decrypt(useRefresh ? row.refresh_token_ct! : row.access_token_ct, tokenContext(id, useRefresh ? "refresh_token" : "access_token"));
      try {
        const resolved = forTokenCalls(provider.definition, parseConnectionConfig(row.connection_config));
        revoked = await revokeToken({ provider: resolved, clientSecret: provider.clientSecret, fetch, timeoutMs: policy.timeoutMs, nowMs: clock.now() }, token, useRefresh ? "refresh_token" : "access_token");
      } catch (e) {
        revocationError = (e as Error).message;
        this.d.logger.warn({ connectionId: id, providerId: row.provider_id, reason: revocationError }, "revocation failed; deleting anyway");
      }
    }
    await repo.delete(id, (trx) => this.d.hooks.inTransaction("deleted", this.d.units.of(trx), { connectionId: id, nowMs: clock.now() }));
    this.d.freshTokens.invalidate(id, true);
    this.d.logger.info({ connectionId: id, providerId: row.provider_id, revoked }, "connection deleted");
    return revocationError ? { revoked, revocationError } : { revoked };
  }

  /** A connection's history, newest first. @throws {@link GrantkeeperError} 404 */
  async events(id: string, page: { cursor?: string; limit?: number } = {}): Promise<{ items: ConnectionEvent[]; nextCursor?: string }> {
    if (!(await this.d.repo.getSummary(id))) throw connectionNotFound(id);
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 500);
    const before = seqCursor(page.cursor);
    const rows = await this.d.repo.listEvents(id, before, limit + 1);
    const items: ConnectionEvent[] = rows.slice(0, limit).map((r) => ({
      id: Number(r.id),
      connectionId: r.connection_id,
      at: new Date(r.at).toISOString(),
      type: r.type,
      ...(r.class ? { class: r.class } : {}),
      ...(r.code ? { code: r.code } : {}),
      message: r.message,
      ...(r.detail ? { detail: JSON.parse(r.detail) as Record<string, unknown> } : {}),
    }));
    return rows.length > limit ? { items, nextCursor: String(items[items.length - 1]!.id) } : { items };
  }

  private tokenOf(row: ConnectionRow): AccessToken {
    return {
      accessToken: this.d.encryptor.decrypt(row.access_token_ct, tokenContext(row.id, "access_token")),
      tokenType: row.token_type,
      expiresAt: row.expires_at === null ? null : new Date(row.expires_at).toISOString(),
    };
  }

  private lastErrorCode(row: Pick<ConnectionRow, "last_error">): string | undefined {
    return row.last_error ? (JSON.parse(row.last_error) as { code: string }).code : undefined;
  }
}

/**
 * True when the token's expiry was assumed at a provider that never sends `expires_in`
 * (`expiresInMissing`, Salesforce): the token may well still work, so while the provider
 * cannot be reached it is handed out, and the API's 401 is the signal that it is dead.
 */
function expiryIsAGuess(row: Pick<ConnectionRow, "expires_at_assumed">, def: ProviderDefinition | undefined): boolean {
  return row.expires_at_assumed === 1 && def?.quirks.expiresInMissing === true;
}
