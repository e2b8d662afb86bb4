/**
 * How a refresh attempt's result is written (split from the refresh engine,
 * {@link ./refresher.ts}, which decides whether and how to call the token
 * endpoint): new tokens, a failure with its classification, or a deferral
 * while the provider's token endpoint breaker is open — each in one
 * transaction with its events and the participants it runs (a dead grant's
 * integrations, design.md "status propagation"), fenced by the lease and by
 * `token_version` (issue 12 item 3, Frigg ADR-031), then its log line,
 * metrics and lifecycle event. New tokens are held and retried while the
 * store is unavailable: the provider has already consumed the refresh token.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { sql, type Expression, type ExpressionBuilder, type SqlBool, type Transaction } from "kysely";
import type { Classification } from "../domain/classify.js";
import type { Clock } from "../domain/clock.js";
import { ErrorCode, isGrantkeeperError } from "../domain/errors.js";
import { policyForProvider, type RefreshPolicy } from "../domain/policy.js";
import { afterDeferred, BREAKER_OPEN_CODE } from "../domain/providerBreaker.js";
import type { FailureClass, LastError } from "../domain/states.js";
import { afterRefreshFailure, afterRefreshSuccess } from "../domain/transitions.js";
import type { TokenSet } from "../oauth/tokenEndpoint.js";
import { parseConnectionConfig } from "../providers/connectionConfig.js";
import { grantTypeOf, timingOf, type ProviderDefinition } from "../providers/definition.js";
import type { ConnectionPatch, ConnectionRepository, ConnectionRow } from "../store/connections.js";
import type { Encryptor } from "../store/encryption.js";
import type { Database } from "../store/schema.js";
import type { UnitsOfWork } from "../store/unitOfWork.js";
import type { Logger } from "../telemetry/logger.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import { connectionNotFound } from "./errors.js";
import { readFailureStreak, type FailureStreak } from "./failureStreak.js";
import type { LifecycleHooks } from "./hooks.js";
import type { ProviderBreakers } from "./providerBreakers.js";
import { lastErrorCodeOf } from "./view.js";

/**
 * What one refresh request came to.
 * - `refreshed`: this call got new tokens;
 * - `skipped`: nothing to do (fresh, not due, rate limited, or another instance did it);
 * - `adopted`: another instance had already rotated the grant; its tokens are used;
 * - `failed`: the token endpoint call failed (see `verdict`).
 */
export interface RefreshResult {
  outcome: "refreshed" | "skipped" | "adopted" | "failed";
  /** The row after the attempt (re-read). */
  row: ConnectionRow;
  verdict?: Classification;
  /** Set when `skipped` because of the per-connection rate limit: milliseconds until a call is allowed. */
  rateLimitedForMs?: number;
  /**
   * Set when `skipped` because the provider's token endpoint breaker is open (no call was made):
   * milliseconds until its cooldown ends and a half-open probe may go out.
   */
  breakerOpenForMs?: number;
}

/** Associated-data context of a connection's token ciphertext. */
export function tokenContext(connectionId: string, field: "access_token" | "refresh_token"): string {
  return `connection:${connectionId}:${field}`;
}

/** The refresh policy of one provider's connections (its margin, its refresh tokens' idle lifetime): the instance's, with the provider's timing. */
export function policyFor(policy: RefreshPolicy, def: ProviderDefinition): RefreshPolicy {
  return policyForProvider(policy, timingOf(def));
}

/** An event appended with a refresh's result. */
type CommitEvent = { type: string; class?: FailureClass; code?: string; message: string; detail: Record<string, unknown> | null };
/** How long refreshed tokens are held and their write retried while the store is unavailable (milliseconds). */
const NEW_TOKENS_RETRY_MS = 60_000;
/** Pause between those retries (milliseconds). */
const NEW_TOKENS_RETRY_INTERVAL_MS = 250;

/** Dependencies of {@link RefreshRecorder} (a subset of the refresh engine's). */
export interface RefreshRecorderDeps {
  repo: ConnectionRepository;
  encryptor: Encryptor;
  clock: Clock;
  logger: Logger;
  policy: RefreshPolicy;
  hooks: LifecycleHooks;
  /** Units of work for what other parts write in a refresh's transaction (a dead grant's integrations). */
  units: UnitsOfWork;
  /** Number in [0, 1) for jitter. */
  random: () => number;
  /** Unique per process; the lease owner. */
  instanceId: string;
  /** Metrics and the tracer (span `grantkeeper.refresh` per attempt). */
  telemetry: Telemetry;
  /** The provider token endpoint breakers (one probe per cooldown while open). */
  breakers: ProviderBreakers;
}

/**
 * Writes the result of one refresh attempt under the lease the refresh
 * engine holds (see the module comment). Every method releases that lease
 * (or leaves it to the instance that took it over) before it returns.
 */
export class RefreshRecorder {
  constructor(private readonly deps: RefreshRecorderDeps) {}

  /** Nothing to write: release the lease and report `outcome`. */
  async release(row: ConnectionRow, outcome: RefreshResult["outcome"], extra: Partial<RefreshResult> = {}): Promise<RefreshResult> {
    await this.deps.repo.releaseLease(row.id, this.deps.instanceId, {});
    return { outcome, row: { ...row, lease_owner: null, lease_until: null }, ...extra };
  }

  /**
   * New tokens from the token endpoint: store them encrypted, with the rotated
   * refresh token, or the stored one kept when none came (Nango #298), or
   * none when a rotating provider sent none (reusing the spent one would
   * revoke the grant); reset the failure count; append `refreshed` (and
   * `suspicious_refresh` / `refresh_token_not_rotated`); then emit
   * `connection.refreshed`. The write is held and retried while the store is
   * unavailable: the provider has already consumed the refresh token.
   * @param startedAt when the attempt began, ms since the epoch
   * @param durationMs how long the token call took, milliseconds
   * @throws the store's error when it is not back within {@link NEW_TOKENS_RETRY_MS}
   */
  async succeed(row: ConnectionRow, tokens: TokenSet, def: ProviderDefinition, startedAt: number, durationMs: number): Promise<RefreshResult> {
    const { encryptor, policy, clock, random } = this.deps;
    const now = clock.now();
    const assumed = tokens.expiresInSeconds === undefined;
    const expiresAt = now + (assumed ? policy.assumedLifetimeMs : tokens.expiresInSeconds! * 1000);
    const clientCredentials = grantTypeOf(def) === "client_credentials";
    // A rotating provider consumed the refresh token we sent: without a new one, presenting it again would be a
    // reuse, which providers with reuse detection answer by revoking the whole grant. Drop it, and say so.
    const notRotated = def.quirks.rotatesRefreshTokens === true && !clientCredentials && tokens.refreshToken === undefined;
    // Nango #298: elsewhere a response without a refresh token keeps the stored one.
    const refreshCt = tokens.refreshToken !== undefined ? encryptor.encrypt(tokens.refreshToken, tokenContext(row.id, "refresh_token")) : notRotated ? null : row.refresh_token_ct;
    const next = afterRefreshSuccess({ state: row.state, expiresAtMs: expiresAt, renewable: refreshCt !== null || clientCredentials, issuedAtMs: now, lastErrorCode: lastErrorCodeOf(row.last_error) }, now, policyFor(this.deps.policy, def), random());
    const unchanged = encryptor.decrypt(row.access_token_ct, tokenContext(row.id, "access_token")) === tokens.accessToken;
    const patch: ConnectionPatch = {
      access_token_ct: encryptor.encrypt(tokens.accessToken, tokenContext(row.id, "access_token")),
      refresh_token_ct: refreshCt,
      token_type: tokens.tokenType,
      scope: tokens.scope ?? row.scope,
      ...(tokens.connectionConfig ? { connection_config: JSON.stringify({ ...parseConnectionConfig(row.connection_config), ...tokens.connectionConfig }) } : {}),
      expires_at: expiresAt,
      expires_at_assumed: assumed ? 1 : 0,
      last_refreshed_at: now,
      last_attempt_at: startedAt,
      next_refresh_at: next.nextRefreshAtMs,
      consecutive_failures: 0,
      // Still degraded (the API rejects its tokens): the error that says why stays.
      last_error: next.state === "degraded" ? row.last_error : null,
      state: next.state,
      token_version: row.token_version + 1,
      updated_at: now,
    };
    const events = [
      {
        type: "refreshed",
        message: `access token refreshed${tokens.refreshToken ? " (refresh token rotated)" : ""}${assumed ? "; no expires_in, lifetime assumed" : ""}`,
        detail: { rotated: tokens.refreshToken !== undefined, expiresInAssumed: assumed, durationMs: Math.round(durationMs), recoveredAfterFailures: row.consecutive_failures },
      },
      ...(unchanged ? [{ type: "suspicious_refresh", message: "refresh succeeded but returned the same access token", detail: null }] : []),
      ...(notRotated
        ? [{ type: "refresh_token_not_rotated", message: "the provider rotates refresh tokens but sent no new one: the consumed one is not used again; the user must reconnect when this access token expires", detail: null }]
        : []),
    ];
    // Read before the commit appends "refreshed", which ends the streak in the history.
    const streak = row.state === "degraded" && row.consecutive_failures > 0 ? await this.failureStreak(row) : undefined;
    const result = await this.commitNewTokens(() => this.commit(row, "refreshed", patch, events), row);
    this.log(row, result.outcome, undefined, durationMs, next.nextRefreshAtMs, { ...(unchanged ? { suspicious: true } : {}), ...(notRotated ? { refreshTokenNotRotated: true } : {}) });
    if (result.outcome === "refreshed") {
      const { metrics } = this.deps.telemetry;
      if (row.expires_at !== null) metrics.refreshExpiryLead((row.expires_at - now) / 1000);
      if (streak) metrics.connectionRecovered((now - streak.firstFailureAtMs) / 1000, streak.recoveryEnteredAtMs !== undefined ? (now - streak.recoveryEnteredAtMs) / 1000 : undefined);
      await this.deps.hooks.emit("connection.refreshed", { connectionId: row.id, providerId: row.provider_id, entityId: row.entity_id, previousFailures: row.consecutive_failures });
    }
    return result;
  }

  /**
   * No call: the provider's token endpoint breaker is open. The connection is
   * `degraded` (still usable), tried again when the cooldown ends; its own
   * failure count is left alone, so an outage does not run out its retries.
   * A connection already deferred to that time is not written again.
   *
   * The write is fenced by the breaker (`ProviderBreakers.whileOpen`): it
   * lands only while the breaker is open. When another instance closed it
   * since the caller read it, that close has rescheduled the deferred
   * connections, and this deferral would hold the connection back for a
   * whole cooldown (issue 12, PostgreSQL with two instances): nothing is
   * written, the lease is kept, and the caller decides again.
   * @param retryAtMs when the cooldown ends (ms since the epoch)
   * @param probedAt when a failed probe was sent (ms since the epoch): recorded as the last attempt
   * @returns the result, or undefined when the breaker is no longer open (nothing written, the lease still held)
   */
  async defer(row: ConnectionRow, retryAtMs: number, message: string, probedAt?: number): Promise<RefreshResult | undefined> {
    const now = this.deps.clock.now();
    const breakerOpenForMs = Math.max(0, retryAtMs - now);
    const subject = { state: row.state, lastErrorCode: lastErrorCodeOf(row.last_error), nextRefreshAtMs: row.next_refresh_at };
    const d = afterDeferred(subject, retryAtMs, probedAt !== undefined, this.deps.breakers.cooldownMs, this.deps.random());
    if (!d.write) return this.release(row, "skipped", { breakerOpenForMs });
    const next = d.nextRefreshAtMs;
    const lastError: LastError = { class: "transient", code: BREAKER_OPEN_CODE, message, at: new Date(now).toISOString() };
    const patch: ConnectionPatch = {
      state: d.state,
      next_refresh_at: next,
      ...(d.replaceLastError ? { last_error: JSON.stringify(lastError) } : {}),
      ...(probedAt !== undefined ? { last_attempt_at: probedAt } : {}),
      updated_at: now,
    };
    const events = [{ type: "refresh_deferred", class: "transient" as const, code: BREAKER_OPEN_CODE, message, detail: { nextRefreshAt: new Date(next).toISOString(), probe: probedAt !== undefined } }];
    if (!(await this.write(row, "skipped", patch, events, undefined, this.deps.breakers.whileOpen(row.provider_id)))) {
      const after = await this.deps.repo.get(row.id);
      if (after && after.lease_owner === this.deps.instanceId && after.token_version === row.token_version) {
        this.deps.logger.debug({ connectionId: row.id, providerId: row.provider_id }, "refresh not deferred: the token endpoint breaker closed meanwhile");
        return undefined;
      }
      return this.notWritten(row, "skipped", undefined, after);
    }
    this.deps.logger.debug({ connectionId: row.id, providerId: row.provider_id, nextRefreshAt: new Date(next).toISOString(), probe: probedAt !== undefined }, "refresh deferred: token endpoint breaker open");
    return { outcome: "skipped", row: { ...row, ...patch, lease_owner: null, lease_until: null } as ConnectionRow, breakerOpenForMs };
  }

  /**
   * A failed attempt, classified (`verdict`). A grant-scoped permanent
   * failure first re-reads the row: newer tokens stored by another instance
   * are adopted instead (the rotation race, Frigg ADR-031). Otherwise the
   * next state, retry time or recovery phase comes from `afterRefreshFailure`,
   * written with its events; a dead grant runs the `invalidated` participants
   * in the same transaction (its integrations ERROR, design.md "status
   * propagation"). After commit: `connection.invalidated`,
   * `provider.misconfigured` or `connection.degraded`.
   * @param message grantkeeper's own wording of the failure (never a provider body)
   * @param startedAt when the attempt began, ms since the epoch
   * @param durationMs how long the token call took, milliseconds (0 when none was made)
   */
  async fail(row: ConnectionRow, verdict: Classification, message: string, startedAt: number, durationMs: number): Promise<RefreshResult> {
    const { repo, clock, policy, random, hooks } = this.deps;
    const now = clock.now();
    if (verdict.class === "permanent" && verdict.scope === "grant" && verdict.reason !== "not_refreshable") {
      // Rotation race: another instance may have rotated the refresh token we just used.
      const current = await repo.get(row.id);
      if (current && current.token_version !== row.token_version) {
        await repo.appendEvent({ connectionId: row.id, atMs: now, type: "adopted", message: "invalid_grant after another instance rotated the grant: its tokens were adopted", code: verdict.code });
        await repo.releaseLease(row.id, this.deps.instanceId, {});
        this.log(row, "adopted", verdict, durationMs, current.next_refresh_at);
        return { outcome: "adopted", row: current, verdict };
      }
    }
    const t = afterRefreshFailure({ consecutiveFailures: row.consecutive_failures }, verdict, now, policy, random());
    const lastError: LastError = { class: verdict.class, code: verdict.code, message, at: new Date(now).toISOString() };
    const patch: ConnectionPatch = {
      state: t.state,
      consecutive_failures: t.consecutiveFailures,
      next_refresh_at: t.nextRefreshAtMs,
      last_error: JSON.stringify(lastError),
      last_attempt_at: startedAt,
      updated_at: now,
    };
    const detail = { reason: verdict.reason, phase: t.phase, nextRefreshAt: t.nextRefreshAtMs === null ? null : new Date(t.nextRefreshAtMs).toISOString(), ...(verdict.class === "transient" && verdict.retryAfterMs !== undefined ? { retryAfterMs: verdict.retryAfterMs } : {}) };
    const events = [
      { type: "refresh_failed", class: verdict.class, code: verdict.code, message, detail },
      ...(t.enteredRecovery ? [{ type: "recovery_entered", class: verdict.class, code: verdict.code, message: `retries exhausted; trying every ${Math.round(policy.recoveryIntervalMs / 1000)} s until it works or turns permanent`, detail: null }] : []),
      ...(t.state === "error" ? [{ type: "invalidated", class: verdict.class, code: verdict.code, message: "grant is dead; the user must reconnect", detail: null }] : []),
    ];
    const participants = t.state === "error" ? (trx: Transaction<Database>) => hooks.inTransaction("invalidated", this.deps.units.of(trx), { connectionId: row.id, nowMs: now, lastError }) : undefined;
    const result = await this.commit(row, "failed", patch, events, verdict, participants);
    this.log(row, result.outcome, verdict, durationMs, t.nextRefreshAtMs, { phase: t.phase, consecutiveFailures: t.consecutiveFailures });
    if (result.outcome === "failed") {
      if (t.enteredRecovery) this.deps.telemetry.metrics.recoveryActivated();
      const base = { connectionId: row.id, providerId: row.provider_id, entityId: row.entity_id, lastError };
      if (t.state === "error") await hooks.emit("connection.invalidated", base);
      else if (verdict.class === "permanent") await hooks.emit("provider.misconfigured", { providerId: row.provider_id, connectionId: row.id, lastError });
      else await hooks.emit("connection.degraded", { ...base, consecutiveFailures: t.consecutiveFailures, enteredRecovery: t.enteredRecovery === true });
    }
    return result;
  }

  /**
   * Write the patch and its events, releasing the lease, in one transaction,
   * only if no one stored newer tokens meanwhile (token_version unchanged).
   *
   * Fenced by the lease (issue 12 item 3): a failure or skip is written, and
   * the lease released, only while this instance still holds it — an
   * instance whose lease expired must not overwrite or free the state of the
   * one that took it over. New tokens are the exception: the provider has
   * already consumed the refresh token we sent, so if no newer tokens are
   * stored (token_version unchanged, the data's own fencing token) ours are
   * written — dropping them would leave only a spent refresh token behind —
   * but the other instance's lease is left untouched; that instance then
   * adopts them on its `invalid_grant` or finds its own write refused.
   */
  async commit(
    row: ConnectionRow,
    outcome: RefreshResult["outcome"],
    patch: ConnectionPatch,
    events: CommitEvent[] | undefined,
    verdict?: Classification,
    participants?: (trx: Transaction<Database>) => Promise<void>,
  ): Promise<RefreshResult> {
    if (await this.write(row, outcome, patch, events, participants)) return { outcome, row: { ...row, ...patch, lease_owner: null, lease_until: null } as ConnectionRow, ...(verdict ? { verdict } : {}) };
    return this.notWritten(row, outcome, verdict, await this.deps.repo.get(row.id));
  }

  /**
   * The transaction of {@link RefreshEngine.commit}, fenced as it says, plus
   * `fence` when given (a condition on the connection's row that must hold
   * when it is written).
   * @returns false when nothing was written
   */
  private async write(
    row: ConnectionRow,
    outcome: RefreshResult["outcome"],
    patch: ConnectionPatch,
    events: CommitEvent[] | undefined,
    participants?: (trx: Transaction<Database>) => Promise<void>,
    fence?: (eb: ExpressionBuilder<Database, "connections">) => Expression<SqlBool>,
  ): Promise<boolean> {
    const { repo, clock } = this.deps;
    const now = clock.now();
    const owner = this.deps.instanceId;
    const newTokens = outcome === "refreshed";
    return repo.transaction(async (trx) => {
      let q = trx
        .updateTable("connections")
        .set(
          newTokens
            ? { ...patch, lease_owner: sql<string | null>`case when lease_owner = ${owner} then null else lease_owner end`, lease_until: sql<number | null>`case when lease_owner = ${owner} then null else lease_until end` }
            : { ...patch, lease_owner: null, lease_until: null },
        )
        .where("id", "=", row.id)
        .where("token_version", "=", row.token_version);
      if (!newTokens) q = q.where("lease_owner", "=", owner);
      if (fence) q = q.where(fence);
      const r = await q.executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      for (const e of events ?? []) await repo.appendEvent({ connectionId: row.id, atMs: now, ...e }, trx);
      await participants?.(trx);
      return true;
    });
  }

  /**
   * A result the lease or token fence refused: newer tokens are adopted; another instance's lease is left to it.
   * @param after the connection's row as re-read after the refused write (undefined: it was deleted)
   */
  private async notWritten(row: ConnectionRow, outcome: RefreshResult["outcome"], verdict: Classification | undefined, after: ConnectionRow | undefined): Promise<RefreshResult> {
    const { repo } = this.deps;
    const owner = this.deps.instanceId;
    if (!after) throw connectionNotFound(row.id);
    await repo.releaseLease(row.id, owner, {});
    if (after.token_version !== row.token_version) {
      // Someone stored newer tokens while we were calling (our lease had expired): theirs win.
      return { outcome: "adopted", row: after, ...(verdict ? { verdict } : {}) };
    }
    // Our lease expired and another instance holds it now: its result, not our stale one, is the connection's.
    this.deps.logger.warn({ connectionId: row.id, providerId: row.provider_id, result: outcome }, "refresh lease lost before this instance's result was stored: the result was dropped");
    return { outcome: "skipped", row: after };
  }

  /**
   * Store new tokens, retrying for up to {@link NEW_TOKENS_RETRY_MS} while
   * the store is unavailable: the provider has consumed the refresh token we
   * sent, so on a rotating provider these are the grant's only live tokens. A
   * PostgreSQL failover in the middle of a refresh must not kill the grant
   * (found by the chaos suite, issue 12). The write stays guarded by
   * `token_version`, so it never overwrites newer tokens.
   * @throws the store's error when it is not back within the bound, or any other error at once
   */
  private async commitNewTokens(write: () => Promise<RefreshResult>, row: ConnectionRow): Promise<RefreshResult> {
    // Wall-clock waits: this waits on the database coming back, not on domain time.
    const deadline = Date.now() + NEW_TOKENS_RETRY_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (e) {
        if (!isGrantkeeperError(e, ErrorCode.storeUnavailable) || Date.now() >= deadline) throw e;
        if (attempt === 0) this.deps.logger.warn({ connectionId: row.id, providerId: row.provider_id }, "store unavailable while storing refreshed tokens: holding them and retrying until it is back");
        await sleep(NEW_TOKENS_RETRY_INTERVAL_MS);
      }
    }
  }

  /** The failure streak a recovering connection ends; a history that cannot be read costs the metric, never the refresh. */
  private async failureStreak(row: ConnectionRow): Promise<FailureStreak | undefined> {
    try {
      return await readFailureStreak((id, before, limit) => this.deps.repo.listEvents(id, before, limit), row.id, row.consecutive_failures);
    } catch (e) {
      this.deps.logger.warn({ connectionId: row.id, err: { name: (e as Error).name, message: (e as Error).message } }, "could not read the failure streak for recovery metrics");
      return undefined;
    }
  }

  /** The "refresh attempt" log line and its counter: one of each per attempt. */
  private log(row: ConnectionRow, result: RefreshResult["outcome"], verdict: Classification | undefined, durationMs: number, nextMs: number | null, extra: Record<string, unknown> = {}): void {
    this.deps.telemetry.metrics.refreshAttempt(result, verdict?.class ?? "none", verdict?.reason ?? "ok");
    const level = verdict === undefined ? "info" : verdict.class === "permanent" ? "error" : "warn";
    this.deps.logger[level](
      {
        connectionId: row.id,
        providerId: row.provider_id,
        result,
        class: verdict?.class ?? "none",
        reason: verdict?.reason ?? "ok",
        code: verdict?.code,
        durationMs: Math.round(durationMs),
        nextRefreshAt: nextMs === null ? null : new Date(nextMs).toISOString(),
        ...extra,
      },
      "refresh attempt",
    );
  }
}
