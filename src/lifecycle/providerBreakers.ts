/**
 * Per provider token endpoint breakers as the refresh engine applies them
 * (design.md "Breakers and cooldowns"): before a token call, the provider's
 * breaker decides whether it goes out (closed), goes out as the one half-open
 * probe (open, cooldown over, claimed in the store), or is deferred (open);
 * after it, an endpoint fault is counted and any answer settles the breaker.
 * The state lives in the store (`provider_breakers`), so every instance sees
 * one breaker and one probe per cooldown; time comes from the injected clock.
 *
 * A thin orchestrator over the pure rules (domain/breaker.ts `onFault`,
 * `onSuccess`; domain/providerBreaker.ts): it tells metrics, the log and
 * subscribers (`provider.breakerOpened` / `provider.breakerClosed`, which the
 * alert service turns into one alert and one all-clear per episode) when a
 * breaker opens or closes, and on close asks for the provider's deferred
 * connections to be refreshed at once.
 */
import { onFault, onSuccess, type BreakerPolicy, type BreakerTransition } from "../domain/breaker.js";
import type { Classification } from "../domain/classify.js";
import type { Clock } from "../domain/clock.js";
import { isEndpointFault, providerGate, type ProviderGate } from "../domain/providerBreaker.js";
import type { ProviderBreakerRepository } from "../store/providerBreakers.js";
import type { Expression, ExpressionBuilder, SqlBool } from "kysely";
import type { Database } from "../store/schema.js";
import type { Logger } from "../telemetry/logger.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import type { LifecycleHooks } from "./hooks.js";

/** Dependencies of {@link ProviderBreakers}. */
export interface ProviderBreakerDeps {
  repo: ProviderBreakerRepository;
  /** `breaker.maxConsecutiveFailures` and `breaker.cooldownSeconds` (in ms), shared with the delivery breakers. */
  policy: BreakerPolicy;
  clock: Clock;
  logger: Logger;
  hooks: LifecycleHooks;
  telemetry: Telemetry;
  /** Called after a breaker closed: reschedule the provider's deferred connections now. @returns how many */
  rescheduleDeferred: (providerId: string, nowMs: number) => Promise<number>;
}

/**
 * {@link ProviderBreakers.gate}'s answer: the domain's gate, and whether the
 * breaker had anything to reset (an answer after a clean breaker costs no write).
 */
export type GateResult = ProviderGate & { dirty: boolean };

/** Gates and records token endpoint calls per provider. */
export class ProviderBreakers {
  constructor(private readonly d: ProviderBreakerDeps) {}

  /** The cooldown, in milliseconds. */
  get cooldownMs(): number {
    return this.d.policy.cooldownMs;
  }

  /**
   * What a refresh of a connection of `providerId` may do now. A `probe`
   * returned here is already claimed for this caller (no other caller, on any
   * instance, gets one until the cooldown passes again); a lost claim is
   * `blocked` until the new cooldown ends.
   */
  async gate(providerId: string): Promise<GateResult> {
    const now = this.d.clock.now();
    const s = await this.d.repo.get(providerId);
    const dirty = s.state === "open" || s.consecutiveFailures > 0;
    const g = providerGate(s, now);
    if (g.kind !== "probe") return { ...g, dirty };
    if (await this.d.repo.claimProbe(providerId, now, this.d.policy.cooldownMs)) return { ...g, dirty };
    return { kind: "blocked", retryAtMs: now + this.d.policy.cooldownMs, dirty };
  }

  /**
   * Record the verdict of a token call that went out: an endpoint fault
   * (domain/providerBreaker.ts `isEndpointFault`) counts toward opening the
   * breaker; anything else is an answer and closes it (a probe's success is
   * the all-clear). An answer is written only when the gate saw a breaker
   * with something to reset: a fault counted by another instance during this
   * call may then stay counted (the count is "consecutive" up to such races).
   * A store failure here is logged and never changes the refresh's result.
   * @param verdict the classified failure, or undefined for a successful call
   * @param gate what {@link ProviderBreakers.gate} answered before the call
   * @returns true when this verdict was an endpoint fault
   */
  async record(providerId: string, verdict: Classification | undefined, gate: GateResult): Promise<boolean> {
    const now = this.d.clock.now();
    const fault = verdict !== undefined && isEndpointFault(verdict);
    try {
      if (fault) {
        const t = await this.d.repo.countFault(providerId, now, (before) => onFault(before, now, this.d.policy));
        if (t.opened) await this.announce(providerId, t, verdict.code);
      } else if (gate.dirty) {
        const t = await this.d.repo.settle(providerId, now, (current) => onSuccess(current));
        if (t?.closed) await this.announce(providerId, t, undefined);
      }
    } catch (e) {
      this.d.logger.error({ providerId, err: { name: (e as Error).name, message: (e as Error).message } }, "could not update the token endpoint breaker");
    }
    return fault;
  }

  /**
   * The fence of a deferral's write (see `ProviderBreakerRepository.whileOpen`):
   * the connection is written only while the provider's breaker is still
   * open, so a deferral decided just before another instance closed the
   * breaker cannot undo that close's rescheduling.
   * @param providerId the connection's provider
   */
  whileOpen(providerId: string): (eb: ExpressionBuilder<Database, "connections">) => Expression<SqlBool> {
    return this.d.repo.whileOpen(providerId);
  }

  /**
   * The provider was redefined (`PUT /v1/providers/{id}`): a new client
   * configuration or token endpoint starts with a closed breaker, so a fixed
   * `tokenEndpoint` is used at once instead of after the cooldown. Closing an
   * open breaker here is announced like a probe's close (deferred connections
   * rescheduled, one all-clear).
   */
  async redefined(providerId: string): Promise<void> {
    const t = await this.d.repo.settle(providerId, this.d.clock.now(), (current) => onSuccess(current));
    if (t?.closed) await this.announce(providerId, t, undefined);
  }

  private async announce(providerId: string, t: BreakerTransition, lastCode: string | undefined): Promise<void> {
    const { logger, hooks, telemetry } = this.d;
    const now = this.d.clock.now();
    if (t.opened) {
      telemetry.metrics.providerBreakerTransition("open");
      logger.error({ providerId, consecutiveFailures: t.next.consecutiveFailures, code: lastCode, cooldownMs: this.d.policy.cooldownMs }, "token endpoint breaker opened: one probe per cooldown until it answers");
      await hooks.emit("provider.breakerOpened", { providerId, consecutiveFailures: t.next.consecutiveFailures, cooldownSeconds: Math.round(this.d.policy.cooldownMs / 1000), ...(lastCode ? { lastErrorCode: lastCode } : {}) });
      return;
    }
    telemetry.metrics.providerBreakerTransition("closed");
    const rescheduled = await this.d.rescheduleDeferred(providerId, now).catch((e: Error) => {
      logger.error({ providerId, err: { name: e.name, message: e.message } }, "could not reschedule the deferred connections; they refresh at their scheduled time");
      return 0;
    });
    logger.info({ providerId, rescheduled }, "token endpoint breaker closed: deferred connections refresh now");
    await hooks.emit("provider.breakerClosed", { providerId, rescheduled });
  }
}
