/**
 * A unit of work: the writes other parts may add to a change that must commit
 * as one — a dead grant and its integrations' ERROR, a breaker opening and
 * its integrations' jobs parked (design.md: "in one transaction"). Callers
 * see what they may do inside the transaction, never the raw
 * `Transaction<Database>`: they cannot start another transaction, use another
 * connection, or reach tables the change does not own.
 */
import type { Kysely, Transaction } from "kysely";
import type { BreakerState } from "../domain/breaker.js";
import type { BreakerRepository } from "./breakers.js";
import type { IntegrationRepository } from "./integrations.js";
import type { JobRepository } from "./jobs.js";
import type { Database } from "./schema.js";

/** Set-based integration status changes, each with its history entries. Times are ms since the epoch. */
export interface IntegrationStatusWrites {
  /** Every ENABLED integration that depends on the connection → ERROR(`reason`), caused by it. @returns how many changed */
  invalidateDependents(connectionId: string, reason: string, message: string, nowMs: number): Promise<number>;
  /** Integrations stopped by the connection (and DISABLED dependents when `statuses` says so) → ENABLED, unless another dependency is still dead. @returns how many became ENABLED */
  resetAfterReauth(connectionId: string, statuses: ReadonlyArray<"ERROR" | "DISABLED">, nowMs: number): Promise<number>;
  /** A delivery target's breaker opened: its ENABLED integrations → ERROR(`circuit_open`). @returns how many changed */
  openCircuit(target: string, nowMs: number): Promise<number>;
  /** A delivery target's breaker closed: its ERROR(`circuit_open`) integrations → ENABLED. @returns how many changed */
  closeCircuit(target: string, nowMs: number): Promise<number>;
  /** One ENABLED integration → ERROR(`reason`) caused by a connection (re-authorizing it resets the integration). @returns 1 when it changed */
  pauseForConnection(integrationId: string, reason: string, connectionId: string, message: string, nowMs: number): Promise<number>;
}

/** Queue writes that follow integration statuses. */
export interface QueueWrites {
  /** Park, discard or replay jobs so the queue agrees with integration statuses (see {@link JobRepository.syncWithIntegrations}). */
  syncWithIntegrations(nowMs: number, parkWhenDisabled: boolean): Promise<{ parked: number; replayed: number }>;
}

/** Breaker writes (breakers are keyed by a generic target: a delivery URL, `handler:<name>`, a token endpoint). */
export interface BreakerWrites {
  /** Count one fault atomically and lock the breaker for this unit. @returns the state before the fault (see {@link BreakerRepository.countFault}) */
  countFault(target: string, nowMs: number): Promise<BreakerState>;
  /** Read the breaker locked for this unit; undefined when never seen. */
  lock(target: string): Promise<BreakerState | undefined>;
  /** Store a target's breaker state. */
  save(target: string, state: BreakerState, nowMs: number): Promise<void>;
}

/** What a participant in a store transaction may write. */
export interface UnitOfWork {
  integrations: IntegrationStatusWrites;
  jobs: QueueWrites;
  breakers: BreakerWrites;
}

/** The repositories a {@link UnitsOfWork} binds to each transaction. */
export interface UnitOfWorkRepositories {
  integrations: IntegrationRepository;
  jobs: JobRepository;
  breakers: BreakerRepository;
}

/** Makes units of work: over a transaction someone else opened, or in a new one. */
export class UnitsOfWork {
  /**
   * @param db the store's handle (new transactions open on it)
   * @param repos the repositories whose writes a unit of work offers
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly repos: UnitOfWorkRepositories,
  ) {}

  /** The unit of work of a transaction the caller holds (its writes commit or roll back with it). */
  of(trx: Transaction<Database>): UnitOfWork {
    const { integrations, jobs, breakers } = this.repos;
    return {
      integrations: {
        invalidateDependents: (connectionId, reason, message, nowMs) => integrations.invalidateDependents(connectionId, reason, message, nowMs, trx),
        resetAfterReauth: (connectionId, statuses, nowMs) => integrations.resetAfterReauth(connectionId, statuses, nowMs, trx),
        openCircuit: (target, nowMs) => integrations.openCircuit(target, nowMs, trx),
        closeCircuit: (target, nowMs) => integrations.closeCircuit(target, nowMs, trx),
        pauseForConnection: (integrationId, reason, connectionId, message, nowMs) => integrations.pauseForConnection(integrationId, reason, connectionId, message, nowMs, trx),
      },
      jobs: {
        syncWithIntegrations: (nowMs, parkWhenDisabled) => jobs.syncWithIntegrations(trx, nowMs, parkWhenDisabled),
      },
      breakers: {
        countFault: (target, nowMs) => breakers.countFault(target, nowMs, trx),
        lock: (target) => breakers.lock(target, trx),
        save: (target, state, nowMs) => breakers.saveBreaker(target, state, nowMs, trx),
      },
    };
  }

  /** Run `fn` in a new transaction: everything it writes commits together, or nothing does. */
  run<T>(fn: (uow: UnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(this.of(trx)));
  }
}
