/**
 * Lifecycle events other parts subscribe to (integrations, jobs, alerts).
 * Delivered after the change is committed; a failing subscriber is logged and
 * never changes the refresh result (design.md "Permanent failure … the
 * notification is best-effort").
 */
import type { UnitOfWork } from "../store/unitOfWork.js";
import type { Logger } from "../telemetry/logger.js";
import type { LastError } from "../domain/states.js";

/** Event payloads by name. */
export interface LifecycleEventMap {
  /** A refresh succeeded. */
  "connection.refreshed": { connectionId: string; providerId: string; entityId: string; /** Consecutive failures this success ended (0 on a routine refresh). */ previousFailures: number };
  /** A transient failure left the connection `degraded`. */
  "connection.degraded": { connectionId: string; providerId: string; entityId: string; lastError: LastError; consecutiveFailures: number; enteredRecovery: boolean };
  /** The provider's API rejected freshly refreshed tokens `apiAuthRejections` times in a row: the connection is now `degraded` (still usable). */
  "connection.apiAuthRejected": { connectionId: string; providerId: string; entityId: string; apiAuthRejections: number; lastError: LastError };
  /** The provider's API accepted a token of a connection it had been rejecting (`api_auth_rejected`): the connection is `ready` again. */
  "connection.apiAuthAccepted": { connectionId: string; providerId: string; entityId: string };
  /** A permanent failure: the grant is dead (state `error`). */
  "connection.invalidated": { connectionId: string; providerId: string; entityId: string; lastError: LastError };
  /** A provider-level permanent failure (`invalid_client` …): the client configuration is wrong. */
  "provider.misconfigured": { providerId: string; connectionId: string; lastError: LastError };
  /** A connection got a working grant from the connect flow or an import. `previousState` is undefined for a new one. */
  "connection.granted": { connectionId: string; providerId: string; entityId: string; previousState: string | undefined };
  /** A job exhausted its attempts on infrastructure faults. */
  "job.dead": { jobId: string; integrationId: string; attempts: number; lastError: { code: string; message: string } };
  /**
   * A provider's token endpoint breaker opened after `consecutiveFailures` endpoint faults across its
   * connections: refreshes are deferred, one half-open probe per cooldown (`cooldownSeconds`).
   */
  "provider.breakerOpened": { providerId: string; consecutiveFailures: number; cooldownSeconds: number; lastErrorCode?: string };
  /** The provider's token endpoint answered the probe: its breaker closed, `rescheduled` deferred connections refresh now. */
  "provider.breakerClosed": { providerId: string; rescheduled: number };
  /** A delivery target's breaker opened; its integrations are in ERROR(circuit_open). */
  "breaker.opened": { target: string; integrations: number };
  /** A delivery target answered a probe; its integrations are ENABLED again. */
  "breaker.closed": { target: string; integrations: number };
}

/**
 * Changes that must happen in the same transaction as a connection's own
 * change (design.md: a permanent failure moves every dependent integration to
 * ERROR "in one transaction"). Unlike events, a participant that throws rolls
 * the whole change back — so participants do SQL only, no I/O elsewhere.
 */
export interface TransactionPayloads {
  /** The connection is being marked `error`. */
  invalidated: { connectionId: string; nowMs: number; lastError: LastError };
  /** The connection got a working grant (import or connect) after having one before. */
  reauthorized: { connectionId: string; previousState: string; nowMs: number };
  /** The connection is being deleted. */
  deleted: { connectionId: string; nowMs: number };
}

/** A function run inside the transaction of a connection change, given what it may write there. */
export type TransactionParticipant<K extends keyof TransactionPayloads> = (uow: UnitOfWork, payload: TransactionPayloads[K]) => Promise<void>;

/** Name of a lifecycle event. */
export type LifecycleEventName = keyof LifecycleEventMap;

/** A subscriber of one lifecycle event; what it throws is logged and never changes the change it hears about. */
export type LifecycleListener<K extends LifecycleEventName> = (payload: LifecycleEventMap[K]) => void | Promise<void>;

/** Subscribing to lifecycle events: what the library hands out as `gk.hooks` (the transaction machinery stays inside). */
export interface LifecycleEvents {
  /** Subscribe to `name`, delivered after the change committed. @returns a function that unsubscribes */
  on<K extends LifecycleEventName>(name: K, fn: LifecycleListener<K>): () => void;
}

/** A small typed event bus; listeners run in order, each guarded. */
export class LifecycleHooks implements LifecycleEvents {
  private readonly listeners = new Map<LifecycleEventName, Array<LifecycleListener<any>>>();
  private readonly participants = new Map<keyof TransactionPayloads, Array<TransactionParticipant<any>>>();

  /** Register a participant in connection-change transactions (see {@link TransactionPayloads}). */
  participate<K extends keyof TransactionPayloads>(kind: K, fn: TransactionParticipant<K>): void {
    this.participants.set(kind, [...(this.participants.get(kind) ?? []), fn]);
  }

  /**
   * Run the participants of `kind` in the caller's transaction.
   * @param uow the unit of work of that transaction
   * @throws whatever a participant throws; the caller's transaction then rolls back
   */
  async inTransaction<K extends keyof TransactionPayloads>(kind: K, uow: UnitOfWork, payload: TransactionPayloads[K]): Promise<void> {
    for (const fn of this.participants.get(kind) ?? []) await fn(uow, payload);
  }

  constructor(private readonly logger: Logger) {}

  /** Subscribe. @returns a function that unsubscribes */
  on<K extends LifecycleEventName>(name: K, fn: LifecycleListener<K>): () => void {
    const list = this.listeners.get(name) ?? [];
    list.push(fn);
    this.listeners.set(name, list);
    return () => this.listeners.set(name, (this.listeners.get(name) ?? []).filter((l) => l !== fn));
  }

  /** Deliver to every listener; errors are logged, never thrown. */
  async emit<K extends LifecycleEventName>(name: K, payload: LifecycleEventMap[K]): Promise<void> {
    for (const fn of this.listeners.get(name) ?? []) {
      try {
        await fn(payload);
      } catch (e) {
        this.logger.error({ event: name, err: { name: (e as Error)?.name, message: (e as Error)?.message } }, "lifecycle subscriber failed");
      }
    }
  }
}
