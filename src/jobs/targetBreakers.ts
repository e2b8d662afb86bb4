/**
 * Per-target delivery breakers as the job worker applies them (design.md
 * "Breakers and cooldowns"): a fault or success of a delivery moves its
 * target's breaker; when the breaker opens or closes, the target's
 * integrations flip (ERROR `circuit_open` ↔ ENABLED) and their jobs are
 * parked or replayed in the same transaction. Breakers live in the store,
 * shared by instances and timed by the injected clock.
 *
 * A thin orchestrator: the store counts a fault atomically (or locks the
 * row) inside the transaction, the pure `onFault`/`onSuccess` decide from
 * the state that lock returned, and the decision is stored before the
 * transaction ends — concurrent faults from several instances each count
 * once, and only one of them opens the breaker.
 */
import { closedBreaker, onFault, onSuccess, type BreakerPolicy, type BreakerState, type BreakerTransition } from "../domain/breaker.js";
import type { LifecycleHooks } from "../lifecycle/hooks.js";
import type { UnitOfWork, UnitsOfWork } from "../store/unitOfWork.js";
import type { Logger } from "../telemetry/logger.js";
import type { Telemetry } from "../telemetry/telemetry.js";

/** Dependencies of {@link TargetBreakers}. */
export interface TargetBreakerDeps {
  /** Units of work: the breaker write, its integrations' flip and their jobs commit together. */
  units: UnitsOfWork;
  breaker: BreakerPolicy;
  parkWhenDisabled: boolean;
  logger: Logger;
  hooks: LifecycleHooks;
  telemetry: Telemetry;
}

/** A breaker with nothing to record: closed, no failures, no cooldown. */
const clean = (b: BreakerState | undefined) => b !== undefined && b.state === "closed" && b.consecutiveFailures === 0 && b.cooldownUntil === null;

/** Records delivery faults and successes on their targets' breakers. */
export class TargetBreakers {
  constructor(private readonly d: TargetBreakerDeps) {}

  /**
   * A delivery to `target` faulted.
   * @param known breaker states the caller's batch already read, by target; kept current
   * @param now ms since the epoch
   */
  async fault(target: string, now: number, known: Map<string, BreakerState>): Promise<void> {
    const { t, changed } = await this.d.units.run(async (uow) => this.store(uow, target, onFault(await uow.breakers.countFault(target, now), now, this.d.breaker), now));
    known.set(target, t.next);
    await this.announce(target, t, changed);
  }

  /** A delivery to `target` succeeded (or failed by the consumer's own fault, a 4xx). See {@link TargetBreakers.fault}. */
  async success(target: string, now: number, known: Map<string, BreakerState>): Promise<void> {
    // The hot path: a healthy target needs no store access (the batch read its breaker once).
    if (clean(known.get(target))) return;
    const done = await this.d.units.run(async (uow) => {
      const current = await uow.breakers.lock(target);
      return current === undefined || clean(current) ? undefined : this.store(uow, target, onSuccess(current), now);
    });
    known.set(target, done?.t.next ?? closedBreaker);
    if (done) await this.announce(target, done.t, done.changed);
  }

  /** Store a transition decided under the unit's lock; when the breaker opened or closed, flip the target's integrations and re-sync their jobs in the same unit. */
  private async store(uow: UnitOfWork, target: string, t: BreakerTransition, now: number): Promise<{ t: BreakerTransition; changed: number }> {
    await uow.breakers.save(target, t.next, now);
    if (!t.opened && !t.closed) return { t, changed: 0 };
    const changed = t.opened ? await uow.integrations.openCircuit(target, now) : await uow.integrations.closeCircuit(target, now);
    await uow.jobs.syncWithIntegrations(now, this.d.parkWhenDisabled);
    return { t, changed };
  }

  /** Tell metrics, the log and subscribers that a breaker opened or closed (after the commit). */
  private async announce(target: string, t: BreakerTransition, changed: number): Promise<void> {
    const flipped = t.opened ? "open" : t.closed ? "closed" : undefined;
    if (!flipped) return;
    this.d.telemetry.metrics.breakerTransition(flipped);
    const fields = { target: redactTarget(target), integrations: changed };
    if (flipped === "open") this.d.logger.error(fields, "delivery breaker opened");
    else this.d.logger.info(fields, "delivery breaker closed");
    await this.d.hooks.emit(flipped === "open" ? "breaker.opened" : "breaker.closed", { target, integrations: changed });
  }
}

/** Targets are URLs that may carry credentials in their query: log origin and path only. */
function redactTarget(target: string): string {
  try {
    const u = new URL(target);
    return `${u.origin}${u.pathname}`;
  } catch {
    return target;
  }
}
