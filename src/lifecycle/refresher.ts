/**
 * The refresh engine: single-flight in process (a map of promises) and
 * across processes (a lease row with a TTL in the store, re-read after
 * taking it), classification of failures, the durable schedule, rotation-race
 * adoption. Nango's refreshCredentialsIfNeeded layers the same three guards;
 * the Frigg ADR-031 race (two refreshes 368 ms apart on a rotating provider)
 * is why a dead-looking grant is re-read before it is declared dead. What an
 * attempt comes to is written by {@link RefreshRecorder} (refreshRecorder.ts).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { classifyRefreshFailure, forClientCredentials } from "../domain/classify.js";
import { isGrantkeeperError } from "../domain/errors.js";
import { clientCredentialsGrant, isTokenEndpointError, refreshGrant, type TokenEndpointContext, type TokenSet } from "../oauth/tokenEndpoint.js";
import { forTokenCalls, parseConnectionConfig } from "../providers/connectionConfig.js";
import { grantTypeOf, type ProviderDefinition } from "../providers/definition.js";
import type { ProviderForCall, ProviderService } from "../providers/service.js";
import type { ConnectionRow } from "../store/connections.js";
import { inSpan, recordRefreshResult, SpanNames } from "../telemetry/tracing.js";
import { connectionNotFound } from "./errors.js";
import type { FreshTokenCache } from "./freshTokens.js";
import type { GateResult } from "./providerBreakers.js";
import { policyFor, RefreshRecorder, tokenContext, type RefreshRecorderDeps, type RefreshResult } from "./refreshRecorder.js";

/** Why a refresh runs. `scheduled` skips when no longer due; `ensure` skips when fresh; `forced` always calls (rate limit permitting). */
export type RefreshMode = "scheduled" | "ensure" | "forced";

/**
 * True when the token does not need refreshing at `nowMs`: no expiry, or an
 * expiry beyond the margin. For a token grantkeeper refreshed itself (its
 * lifetime is known) the margin is at most half that lifetime, so a margin
 * longer than a short-lived token does not make every use a refresh.
 */
export function isFresh(row: Pick<ConnectionRow, "expires_at" | "last_refreshed_at">, nowMs: number, marginMs: number): boolean {
  if (row.expires_at === null) return true;
  const lifetimeMs = row.last_refreshed_at !== null ? row.expires_at - row.last_refreshed_at : undefined;
  const lead = lifetimeMs !== undefined && lifetimeMs > 0 ? Math.min(marginMs, Math.floor(lifetimeMs / 2)) : marginMs;
  return row.expires_at - lead > nowMs;
}

/** The scopes a client-credentials renewal asks for: the ones the connection holds, else the provider's. */
function scopesToRenew(row: Pick<ConnectionRow, "scope">, def: ProviderDefinition): string[] {
  const held = row.scope.split(/[\s,]+/).filter(Boolean);
  return held.length > 0 ? held : def.scopes;
}

const LEASE_POLL_MS = 25;
/** Reads of the provider breaker per refresh when deferrals keep being refused because it closed meanwhile. */
const MAX_GATES = 2;
/** Lease time, beyond the call's timeout, that must be left before a token call is made without renewing the lease (milliseconds). */
const LEASE_CALL_SLACK_MS = 1_000;

/** Dependencies of {@link RefreshEngine}: the {@link RefreshRecorder}'s, and what a token endpoint call needs. */
export interface RefreshEngineDeps extends RefreshRecorderDeps {
  providers: ProviderService;
  fetch: typeof fetch;
  /** The instance's fresh tokens in memory: every refresh attempt, whatever its outcome, invalidates the connection's entry. */
  freshTokens?: FreshTokenCache;
}

/** Single-flight refresh of one connection at a time, in process and across processes; its results are written by a {@link RefreshRecorder}. */
export class RefreshEngine {
  private readonly inFlight = new Map<string, Promise<RefreshResult>>();
  /** Token endpoint calls made by this engine (benchmarks count them). */
  tokenCalls = 0;

  private readonly recorder: RefreshRecorder;

  constructor(private readonly deps: RefreshEngineDeps) {
    this.recorder = new RefreshRecorder(deps);
  }

  /** The lease owner id of this engine (the instance id). */
  get owner(): string {
    return this.deps.instanceId;
  }

  /** Lease lifetime: one call's timeout plus slack, in milliseconds. */
  get leaseTtlMs(): number {
    return this.deps.policy.timeoutMs + 5_000;
  }

  /**
   * Resolves when no refresh is in flight in this process (including ones
   * that start while waiting); never throws. `close()` waits on it so a
   * refresh started outside the scheduler (a CLI command, an API call) ends,
   * and emits its events, before the store closes.
   */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  /** The refresh of a connection in flight in this process, if any (callers join it instead of reading the store). */
  inFlightFor(connectionId: string): Promise<RefreshResult> | undefined {
    return this.inFlight.get(connectionId);
  }

  /**
   * Refresh a connection, joining any refresh of it already in flight in this process.
   * @throws {@link GrantkeeperError} 404 when the connection does not exist
   */
  refresh(connectionId: string, mode: RefreshMode): Promise<RefreshResult> {
    const existing = this.inFlight.get(connectionId);
    if (existing) return existing;
    const p = this.run(connectionId, mode).finally(() => this.ended(connectionId));
    this.inFlight.set(connectionId, p);
    return p;
  }

  /**
   * Refresh connections whose leases the caller already took in one statement
   * (the scheduler's batch), joining the in-process single-flight map.
   * @param rows rows returned by {@link ConnectionRepository.acquireLeases} for this instance
   */
  refreshLeased(rows: ConnectionRow[], mode: RefreshMode): Array<Promise<RefreshResult>> {
    return rows.map((row) => {
      const existing = this.inFlight.get(row.id);
      if (existing) return existing;
      const p = this.run(row.id, mode, row).finally(() => this.ended(row.id));
      this.inFlight.set(row.id, p);
      return p;
    });
  }

  /** A refresh ended: joiners read its result; the token in memory (if any) is stale or confirmed, so it is read again. */
  private ended(id: string): void {
    this.inFlight.delete(id);
    this.deps.freshTokens?.invalidate(id);
  }

  private async run(id: string, mode: RefreshMode, leased?: ConnectionRow): Promise<RefreshResult> {
    const { repo, clock, instanceId } = this.deps;
    let row = leased ?? (await repo.acquireLease(id, instanceId, clock.now(), this.leaseTtlMs));
    if (!row) {
      const current = await repo.get(id);
      if (!current) throw connectionNotFound(id);
      // Another instance holds the lease: wait for its result rather than calling the provider twice.
      return { outcome: "skipped", row: await this.waitForLease(id) };
    }
    try {
      return await this.underLease(row, mode);
    } catch (e) {
      // Never leave a lease behind on an unexpected error; the TTL is the last resort. Fenced: if ours
      // expired meanwhile, the lease is another instance's now, and freeing it would let a third refresh
      // spend the refresh token that one is spending (issue 12 item 3, Frigg ADR-031).
      await repo.releaseLease(id, instanceId, {}).catch(() => undefined);
      throw e;
    }
  }

  private async waitForLease(id: string): Promise<ConnectionRow> {
    const deadline = Date.now() + this.leaseTtlMs + 1_000;
    for (;;) {
      const row = await this.deps.repo.get(id);
      if (!row) throw connectionNotFound(id);
      if (row.lease_owner === null || (row.lease_until ?? 0) <= this.deps.clock.now() || Date.now() > deadline) return row;
      // Wall-clock polling: this waits on another process's I/O, not on domain time.
      await sleep(LEASE_POLL_MS, undefined, { ref: false });
    }
  }

  private async underLease(row: ConnectionRow, mode: RefreshMode): Promise<RefreshResult> {
    const { clock, policy } = this.deps;
    const now = clock.now();
    if (row.state === "error") return this.recorder.release(row, "skipped");
    if (mode === "scheduled" && (row.next_refresh_at === null || row.next_refresh_at > now)) return this.recorder.release(row, "skipped");
    // Read once per refresh: another instance may have redefined the provider, so never cached across refreshes.
    const provider = await this.deps.providers.forCall(row.provider_id);
    const margin = policyFor(this.deps.policy, provider.definition).marginMs;
    if (mode === "ensure" && isFresh(row, now, margin)) return this.recorder.release(row, "skipped");
    if (mode !== "scheduled" && row.last_attempt_at !== null && now - row.last_attempt_at < policy.minIntervalMs) {
      return this.recorder.release(row, "skipped", { rateLimitedForMs: row.last_attempt_at + policy.minIntervalMs - now });
    }
    // A client-credentials connection never has a refresh token: it asks again (RFC 6749 §4.4).
    if (row.refresh_token_ct === null && grantTypeOf(provider.definition) !== "client_credentials") {
      if (row.expires_at !== null && row.expires_at <= now) {
        return this.traced(row, mode, () => this.recorder.fail(row, classifyRefreshFailure({ kind: "not_refreshable" }), "access token expired and no refresh token was issued", now, 0));
      }
      return this.recorder.commit(row, "skipped", { next_refresh_at: row.expires_at }, undefined);
    }
    if (!(await this.leaseCoversCall(row))) {
      this.deps.logger.warn({ connectionId: row.id, providerId: row.provider_id }, "refresh lease lost before the token call (this instance stalled past it): not calling");
      const current = await this.deps.repo.get(row.id);
      if (!current) throw connectionNotFound(row.id);
      return { outcome: "skipped", row: current };
    }
    // The provider's token endpoint breaker: closed → call; open → one half-open probe per cooldown, the rest deferred.
    // A deferral lands only while the breaker is still open; when another instance closed it since this gate was
    // read, the gate is read again and the connection refreshes now instead of waiting out a cooldown.
    for (let gates = 1; ; gates++) {
      const gate = await this.deps.breakers.gate(row.provider_id);
      if (gate.kind !== "blocked") return this.traced(row, mode, () => this.callTokenEndpoint(row, provider, now, gate));
      const deferred = await this.recorder.defer(row, gate.retryAtMs, "the provider's token endpoint breaker is open");
      if (deferred !== undefined) return deferred;
      // Closed and open again in between (a flapping endpoint): leave the connection as it is, due or deferred.
      if (gates >= MAX_GATES) return this.recorder.release(row, "skipped");
    }
  }

  /**
   * True when this instance still holds the lease for at least one token call
   * (`timeoutMs` plus {@link LEASE_CALL_SLACK_MS}). Without that much left on
   * the clock — the instance stalled after taking it — the lease is renewed
   * with a fenced write, which fails when another instance took it over: then
   * this one must not spend the refresh token the other is spending.
   */
  private async leaseCoversCall(row: ConnectionRow): Promise<boolean> {
    const now = this.deps.clock.now();
    if (row.lease_owner === this.deps.instanceId && row.lease_until !== null && row.lease_until - now >= this.deps.policy.timeoutMs + LEASE_CALL_SLACK_MS) return true;
    return this.deps.repo.renewLease(row.id, this.deps.instanceId, now, this.leaseTtlMs);
  }

  /** One span per refresh attempt: ids, mode and result as attributes (never tokens); see {@link recordRefreshResult} for its status. */
  private traced(row: ConnectionRow, mode: RefreshMode, attempt: () => Promise<RefreshResult>): Promise<RefreshResult> {
    const attributes = { "grantkeeper.connection.id": row.id, "grantkeeper.provider.id": row.provider_id, "grantkeeper.refresh.mode": mode, "grantkeeper.refresh.consecutive_failures": row.consecutive_failures };
    return inSpan(this.deps.telemetry.tracer, SpanNames.refresh, attributes, async (span) => {
      const result = await attempt();
      recordRefreshResult(span, result.outcome, result.verdict);
      return result;
    });
  }

  private async callTokenEndpoint(row: ConnectionRow, provider: ProviderForCall, startedAt: number, gate: GateResult): Promise<RefreshResult> {
    const { encryptor, policy, fetch } = this.deps;
    const def = provider.definition;
    const clientCredentials = grantTypeOf(def) === "client_credentials";
    let ctx: TokenEndpointContext;
    try {
      ctx = { provider: forTokenCalls(def, parseConnectionConfig(row.connection_config)), clientSecret: provider.clientSecret, fetch, timeoutMs: policy.timeoutMs, nowMs: startedAt };
    } catch (e) {
      // A token endpoint with a {placeholder} this connection has no value for: the configuration's fault, never the grant's.
      if (!isGrantkeeperError(e)) throw e;
      return this.recorder.fail(row, { class: "permanent", scope: "provider", reason: "connection_config", code: e.code }, e.message, startedAt, 0);
    }
    const t0 = performance.now();
    this.tokenCalls++;
    const { metrics } = this.deps.telemetry;
    let tokens: TokenSet;
    try {
      // The one place the grant call is chosen: the user's refresh token, or the client's own credentials.
      tokens = clientCredentials ? await clientCredentialsGrant(ctx, scopesToRenew(row, def)) : await refreshGrant(ctx, encryptor.decrypt(row.refresh_token_ct!, tokenContext(row.id, "refresh_token")));
    } catch (e) {
      if (!isTokenEndpointError(e)) throw e;
      const classified = classifyRefreshFailure(e.observation, def.errorClassOverrides, def.providerErrorCodes?.classes);
      const verdict = clientCredentials ? forClientCredentials(classified) : classified;
      const durationMs = performance.now() - t0;
      metrics.refreshCallDuration(verdict.class, durationMs / 1000);
      const endpointFault = await this.deps.breakers.record(row.provider_id, verdict, gate);
      // A failed half-open probe is the provider's failure, not this grant's: its own budget is not spent.
      // (When another instance closed the breaker meanwhile, the deferral is refused: it is this grant's failure then.)
      if (gate.kind === "probe" && endpointFault) {
        const deferred = await this.recorder.defer(row, this.deps.clock.now() + this.deps.breakers.cooldownMs, `the half-open probe of the provider's token endpoint failed (${verdict.code})`, startedAt);
        if (deferred !== undefined) return deferred;
      }
      return this.recorder.fail(row, verdict, e.message, startedAt, durationMs);
    }
    const durationMs = performance.now() - t0;
    metrics.refreshCallDuration("none", durationMs / 1000);
    await this.deps.breakers.record(row.provider_id, undefined, gate);
    return this.recorder.succeed(row, tokens, def, startedAt, durationMs);
  }

}
