/**
 * Rejections of fresh tokens by a provider's API, counted per connection in
 * the store (design.md "Failure classification": a second 401 "counts toward
 * `degraded`"). `authFailuresToDegrade` in a row make the connection
 * `degraded` with `lastError.code` `api_auth_rejected` — still usable, never
 * `error` by this path: only the token endpoint can say a grant is dead. A
 * call the API accepts resets the count, and a connection degraded this way
 * is `ready` again.
 *
 * Bookkeeping never changes the call's answer: a write that fails is logged.
 */
import type { Clock } from "../../domain/clock.js";
import type { ConnectionState, LastError } from "../../domain/states.js";
import { afterApiAuthAccepted, afterApiAuthRejected, API_AUTH_REJECTED } from "../../domain/transitions.js";
import type { ConnectionRepository, ConnectionSummaryRow } from "../../store/connections.js";
import type { Logger } from "../../telemetry/logger.js";
import type { LifecycleHooks } from "../hooks.js";
import { lastErrorCodeOf } from "../view.js";

/** Dependencies of {@link ApiAuthTracker}. */
export interface ApiAuthTrackerDeps {
  repo: Pick<ConnectionRepository, "countApiAuthRejection" | "resetApiAuthRejections" | "updateIfUnchanged">;
  clock: Clock;
  logger: Logger;
  hooks: LifecycleHooks;
  /** Rejections in a row that make a connection `degraded`. @defaultValue 3 */
  authFailuresToDegrade: number;
  /** Fresh tokens in memory: their remembered summary (count, state) is forgotten when this changes it. */
  freshTokens?: { invalidate(connectionId: string): void };
}

/** The part of a connection the tracker reads (a summary row: no ciphertext). */
export type TrackedConnection = Pick<ConnectionSummaryRow, "id" | "provider_id" | "entity_id" | "state" | "last_error" | "api_auth_rejections">;

/** Counts API rejections of a connection's token and moves its state when they pile up. */
export class ApiAuthTracker {
  constructor(private readonly d: ApiAuthTrackerDeps) {}

  /** The API rejected a token that was refreshed for this very call. */
  async rejected(conn: TrackedConnection): Promise<void> {
    this.d.freshTokens?.invalidate(conn.id);
    try {
      await this.countRejection(conn);
    } catch (e) {
      this.d.logger.error({ connectionId: conn.id, err: { name: (e as Error).name, message: (e as Error).message } }, "could not record an API auth rejection");
    }
  }

  /** True when {@link accepted} would write nothing for this connection: no rejection counted, not degraded by rejections. */
  isClear(conn: TrackedConnection): boolean {
    return clearAfter(conn, acceptance(conn));
  }

  /** The API accepted the token: reset a count above 0 and recover from `api_auth_rejected`. Costs no write otherwise. */
  async accepted(conn: TrackedConnection): Promise<void> {
    const t = acceptance(conn);
    if (clearAfter(conn, t)) return;
    try {
      await this.d.repo.resetApiAuthRejections(conn.id);
      this.d.freshTokens?.invalidate(conn.id);
      if (!t.recovered) return;
      const now = this.d.clock.now();
      const event = { connectionId: conn.id, atMs: now, type: "api_auth_accepted", message: "the provider's API accepts the token again", detail: null };
      if (await this.d.repo.updateIfUnchanged(conn.id, conn, { state: t.state, last_error: null, updated_at: now }, event)) {
        this.d.logger.info({ connectionId: conn.id, providerId: conn.provider_id, state: t.state }, "provider API accepts the token again");
        await this.d.hooks.emit("connection.apiAuthAccepted", { connectionId: conn.id, providerId: conn.provider_id, entityId: conn.entity_id });
      }
    } catch (e) {
      this.d.logger.error({ connectionId: conn.id, err: { name: (e as Error).name, message: (e as Error).message } }, "could not reset the API auth rejection count");
    }
  }

  private async countRejection(conn: TrackedConnection): Promise<void> {
    const counted = await this.d.repo.countApiAuthRejection(conn.id);
    if (!counted) return;
    const t = afterApiAuthRejected({ state: counted.state as ConnectionState, apiAuthRejections: counted.api_auth_rejections }, this.d);
    const log = { connectionId: conn.id, providerId: conn.provider_id, apiAuthRejections: counted.api_auth_rejections, authFailuresToDegrade: this.d.authFailuresToDegrade };
    if (!t.degrade) {
      this.d.logger.warn({ ...log, state: counted.state }, "provider API rejected a freshly refreshed token");
      return;
    }
    const now = this.d.clock.now();
    const message = `the provider's API rejected a freshly refreshed token ${counted.api_auth_rejections} times in a row`;
    const lastError: LastError = { class: "transient", code: API_AUTH_REJECTED, message, at: new Date(now).toISOString() };
    const event = { connectionId: conn.id, atMs: now, type: API_AUTH_REJECTED, class: "transient" as const, code: API_AUTH_REJECTED, message, detail: { apiAuthRejections: counted.api_auth_rejections, previousState: counted.state } };
    const written = await this.d.repo.updateIfUnchanged(conn.id, counted, { state: t.state, last_error: JSON.stringify(lastError), updated_at: now }, event);
    if (!written) return;
    this.d.logger.warn({ ...log, state: t.state }, "connection degraded: its provider's API keeps rejecting fresh tokens");
    await this.d.hooks.emit("connection.apiAuthRejected", { connectionId: conn.id, providerId: conn.provider_id, entityId: conn.entity_id, apiAuthRejections: counted.api_auth_rejections, lastError });
  }
}

/** True when an acceptance `t` of `conn` changes nothing: no rejection counted, and `t` recovers nothing. */
function clearAfter(conn: TrackedConnection, t: ReturnType<typeof afterApiAuthAccepted>): boolean {
  return conn.api_auth_rejections === 0 && !t.recovered;
}

/** What an accepted call does to this connection (domain/transitions.ts). */
function acceptance(conn: TrackedConnection): ReturnType<typeof afterApiAuthAccepted> {
  return afterApiAuthAccepted({ state: conn.state as ConnectionState, lastErrorCode: lastErrorCodeOf(conn.last_error) });
}
