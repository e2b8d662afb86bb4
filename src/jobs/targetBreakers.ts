/**
 * Per-target delivery breakers as the job worker applies them (design.md
 * "Breakers and cooldowns"): a fault or success of a delivery moves its
 * target's breaker; when the breaker opens or closes, the target's
 * integrations flip (ERROR `circuit_open` ↔ ENABLED) and their jobs are
 * parked or replayed in the same transaction. Breakers live in the store,
 * shared by instances and timed by the injected clock.
 */
import { onFault, onSuccess, type BreakerPolicy, type BreakerState, type BreakerTransition } from "../domain/breaker.js";
import type { LifecycleHooks } from "../lifecycle/hooks.js";
import type { BreakerRepository } from "../store/breakers.js";
import type { UnitsOfWork } from "../store/unitOfWork.js";
import type { Logger } from "../telemetry/logger.js";
import type { Telemetry } from "../telemetry/telemetry.js";

/** Dependencies of {@link TargetBreakers}. */
export interface TargetBreakerDeps {
  breakerStore: BreakerRepository;
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
    await this.apply(target, onFault(await this.d.breakerStore.breaker(target), now, this.d.breaker), now, known);
  }

  /** A delivery to `target` succeeded (or failed by the consumer's own fault, a 4xx). See {@link TargetBreakers.fault}. */
  async success(target: string, now: number, known: Map<string, BreakerState>): Promise<void> {
    // The hot path: a healthy target needs no store access (the batch read its breaker once).
    if (clean(known.get(target))) return;
    const current = await this.d.breakerStore.breaker(target);
    if (clean(current)) return;
    await this.apply(target, onSuccess(current), now, known);
  }

  /**
   * Store a breaker transition; when it opened or closed, flip the target's
   * integrations and re-sync their jobs in the same transaction, then tell
   * metrics, the log and subscribers.
   */
  private async apply(target: string, t: BreakerTransition, now: number, known: Map<string, BreakerState>): Promise<void> {
    known.set(target, t.next);
    const flipped = t.opened ? "open" : t.closed ? "closed" : undefined;
    let changed = 0;
    await this.d.units.run(async (uow) => {
      await uow.breakers.save(target, t.next, now);
      if (flipped) {
        changed = flipped === "open" ? await uow.integrations.openCircuit(target, now) : await uow.integrations.closeCircuit(target, now);
        await uow.jobs.syncWithIntegrations(now, this.d.parkWhenDisabled);
      }
    });
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
