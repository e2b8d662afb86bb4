/**
 * One attempt of a job in hand (split from the worker, {@link ./worker.ts},
 * which claims jobs and keeps their lanes): run it — a delivery to the
 * integration's consumer, or the library handler named after it — then let
 * `jobTransition` (domain/jobLifecycle.ts) decide the job's next record,
 * carry out the effects it asks for (a forced refresh for an auth failure,
 * a target breaker count, an integration paused, a dead-job alert) and store
 * the record, grouped with other jobs finishing at the same time. Errors
 * while cleaning up are logged and counted, never thrown into the worker's
 * loop (the background-jobs incident: a cleanup error escaped and took the
 * recovery path down).
 */
import { jobTransition, type JobEffect, type JobRecord, type RefreshAnswer } from "../domain/jobLifecycle.js";
import type { JobOutcome } from "../domain/jobOutcome.js";
import { ErrorCode, isGrantkeeperError, isNotFoundError } from "../domain/errors.js";
import { CLAIMABLE_JOB_STATES } from "../domain/states.js";
import type { IntegrationRow } from "../store/integrations.js";
import { jobRecordOf, type ClaimedJob, type JobFinish } from "../store/jobRows.js";
import { inSpan, recordJobOutcome, SpanNames } from "../telemetry/tracing.js";
import { contextOf, jobOf } from "./context.js";
import { deliverTraced } from "./delivery.js";
import { isAuthError, isUserError } from "./errors.js";
import { GroupCommit } from "./groupCommit.js";
import { TargetBreakers } from "./targetBreakers.js";
import type { BatchContext, WorkerDeps, WorkerStats } from "./workerTypes.js";

/** Runs attempts of the jobs a {@link JobWorker} has in hand and records their outcomes. */
export class JobAttempts {
  private readonly finisher: GroupCommit<JobFinish, boolean | Error>;
  private readonly targetBreakers: TargetBreakers;

  /**
   * @param stats the worker's running totals, counted here per outcome
   * @param wake asks the worker for a pass (a job to run again now)
   */
  constructor(
    private readonly d: WorkerDeps,
    private readonly stats: WorkerStats,
    private readonly wake: () => void,
  ) {
    this.targetBreakers = new TargetBreakers({ ...d, parkWhenDisabled: d.options.parkWhenDisabled });
    // Outcomes of jobs finishing together are written in one transaction; each job still awaits its own write.
    // If that transaction fails, each outcome is retried alone so one bad row cannot un-record the others.
    this.finisher = new GroupCommit<JobFinish, boolean | Error>(async (items) => {
      try {
        return await d.jobs.finishMany(items);
      } catch {
        return Promise.all(items.map((i) => d.jobs.finishMany([i]).then((r) => r[0]!, (e: Error) => e)));
      }
    });
  }

  /**
   * Run one attempt of a job in hand and record what it came to; never
   * rejects (a failure to record is logged and counted: the lease expires and
   * the sweep queues the job again).
   */
  run(job: ClaimedJob, batch: BatchContext): Promise<void> {
    const attributes = { "grantkeeper.job.id": job.id, "grantkeeper.integration.id": job.integration_id, "grantkeeper.job.attempt": job.attempts, "grantkeeper.job.probe": job.probe === 1 };
    return inSpan(this.d.telemetry.tracer, SpanNames.jobRun, attributes, async (span) => {
      let outcome: JobOutcome;
      let integration: IntegrationRow | undefined;
      // What a handler threw, kept for the span (the outcome keeps only its code and message).
      const thrown: { error?: unknown } = {};
      try {
        integration = batch.integrations.get(job.integration_id);
        if (integration) span.setAttribute("grantkeeper.integration.name", integration.name);
        // Claims already skip targets in cooldown, so every entry path (retry, new job, replay) waits it out.
        outcome = integration ? await this.execute(job, integration, batch, thrown) : { kind: "failed", code: "integration_not_found", message: "the integration was deleted" };
      } catch (e) {
        thrown.error = e;
        outcome = { kind: "faulted", code: "worker_error", message: (e as Error).message };
      }
      this.d.telemetry.metrics.jobRun(outcome.kind);
      recordJobOutcome(span, outcome, thrown.error);
      try {
        await this.record(job, integration, outcome, batch);
      } catch (e) {
        // The recovery path is guarded: the lease expires and the sweep re-queues the job.
        this.stats.cleanupErrors++;
        this.d.logger.error({ jobId: job.id, integrationId: job.integration_id, outcome: outcome.kind, err: { name: (e as Error).name, message: (e as Error).message } }, "could not record a job outcome; its lease will expire and it will run again");
      }
    });
  }

  private async execute(job: ClaimedJob, integration: IntegrationRow, batch: BatchContext, thrown: { error?: unknown }): Promise<JobOutcome> {
    const { encryptor, clock } = this.d;
    if (integration.delivery) {
      const { url, timeoutMs } = JSON.parse(integration.delivery) as { url: string; timeoutMs: number };
      const secret = integration.delivery_secret_ct ? encryptor.decrypt(integration.delivery_secret_ct, `integration:${integration.id}:delivery_secret`) : "";
      return deliverTraced(this.d.telemetry.tracer, this.d.fetch, url, secret, job, timeoutMs, clock.now());
    }
    const handler = this.d.handlers.get(integration.name);
    if (!handler) return { kind: "faulted", code: "no_handler", message: `no handler registered for ${integration.name}` };
    const connectionIds = batch.connectionIds.get(integration.id) ?? [];
    try {
      await handler(jobOf(job), contextOf(this.d, connectionIds));
      return { kind: "succeeded" };
    } catch (e) {
      thrown.error = e;
      if (isUserError(e)) return { kind: "failed", code: e.code, message: e.message };
      if (isAuthError(e)) return { kind: "auth_failed", ...(e.connectionId ? { connectionId: e.connectionId } : {}), message: e.message, ...(e.refreshed ? { refreshed: true } : {}) };
      // A dead grant inside a handler is an auth matter, not a fault of the handler: refresh (or park for) the connection it names.
      if (isGrantkeeperError(e, ErrorCode.connectionError)) {
        const connectionId = e.details.connectionId;
        return { kind: "auth_failed", ...(typeof connectionId === "string" ? { connectionId } : {}), message: e.message };
      }
      // An expired token while the provider is down: retry no sooner than the refresh that may bring a new one.
      if (isGrantkeeperError(e, ErrorCode.tokenUnavailable)) return { kind: "faulted", code: e.code, message: e.message, ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}) };
      return { kind: "faulted", code: "handler_error", message: (e as Error).message };
    }
  }

  /** Write a job's next record (grouped with other jobs finishing now) and wait until it is committed. */
  private async finish(id: string, next: JobRecord, now: number): Promise<void> {
    if (next.state === "running") throw new Error(`job ${id}: a finished job cannot stay running`);
    const item: JobFinish = { id, owner: this.d.instanceId, updatedAt: now, state: next.state, runAt: next.runAtMs, finishedAt: next.finishedAtMs, lastError: next.lastError };
    const r = await this.finisher.submit(item);
    if (r instanceof Error) throw r;
  }

  /**
   * Record an attempt's outcome: the lifecycle decides the job's next record;
   * an auth failure first refreshes the connection (single-flight, rate
   * limited) and feeds the answer back; then the record is stored and the
   * effects carried out.
   */
  private async record(job: ClaimedJob, integration: IntegrationRow | undefined, outcome: JobOutcome, batch: BatchContext): Promise<void> {
    const { clock, options, random } = this.d;
    const now = clock.now();
    const connectionId = outcome.kind === "auth_failed" ? (outcome.connectionId ?? batch.connectionIds.get(job.integration_id)?.[0]) : undefined;
    let step = jobTransition(jobRecordOf(job), { type: "finished", outcome, ...(connectionId !== undefined ? { connectionId } : {}) }, now, options, random());
    for (const effect of step.effects) {
      if (effect.type !== "refresh") continue;
      const answer = await this.refreshFor(effect.connectionId);
      step = jobTransition(step.next, { type: "refreshed", connectionId: effect.connectionId, answer }, clock.now(), options, random());
    }
    await this.finish(job.id, step.next, now);
    // A job to run again now (a re-run after a fresh token): a pass claims it. A job in a pass's batch would be found
    // by that pass's next claim anyway; one handed over at accept runs outside any pass.
    if ((CLAIMABLE_JOB_STATES as readonly string[]).includes(step.next.state) && step.next.runAtMs <= clock.now()) this.wake();
    this.count(outcome, step.next);
    if (outcome.kind === "failed") this.d.logger.info({ jobId: job.id, integrationId: job.integration_id, code: outcome.code }, "job failed (user error; not retried)");
    for (const effect of step.effects) await this.apply(effect, job, integration, step.next, now, batch);
  }

  private count(outcome: JobOutcome, next: JobRecord): void {
    if (outcome.kind === "succeeded") this.stats.succeeded++;
    else if (outcome.kind === "failed") this.stats.failed++;
    else if (outcome.kind === "faulted") this.stats.faulted++;
    if (next.state === "parked") this.stats.parked++;
  }

  /** Carry out one effect of a transition (the `refresh` effect was carried out before the record was stored). */
  private async apply(effect: JobEffect, job: ClaimedJob, integration: IntegrationRow | undefined, next: JobRecord, now: number, batch: BatchContext): Promise<void> {
    const target = integration?.delivery_target;
    switch (effect.type) {
      case "breaker":
        if (!target) return;
        if (effect.result === "fault") await this.targetBreakers.fault(target, now, batch.breakers);
        else await this.targetBreakers.success(target, now, batch.breakers);
        return;
      case "pauseIntegration": {
        const message = `the API keeps rejecting the token of connection ${effect.connectionId}; paused until it is re-authorized (or the integration is enabled)`;
        const paused = await this.d.units.run(async (uow) => {
          const n = await uow.integrations.pauseForConnection(job.integration_id, effect.reason, effect.connectionId, message, now);
          if (n > 0) await uow.jobs.syncWithIntegrations(now, this.d.options.parkWhenDisabled);
          return n;
        });
        if (paused > 0) this.d.logger.warn({ integrationId: job.integration_id, connectionId: effect.connectionId, jobId: job.id, reason: effect.reason }, "integration paused: a freshly refreshed token was rejected; its jobs are parked until the connection is re-authorized");
        return;
      }
      case "dead":
        await this.dead(job, next.lastError?.code ?? "unknown", next.lastError?.message ?? "");
        return;
      case "refresh":
        return;
    }
  }

  /**
   * Force a refresh of the connection an auth failure named, and say what it
   * came to: a fresh token, a dead grant (or a deleted connection), or no
   * refresh now — rate limited, or the token endpoint failed — with when one may come.
   */
  private async refreshFor(connectionId: string): Promise<RefreshAnswer> {
    try {
      const c = await this.d.connections.refresh(connectionId);
      if (c.state === "error") return { kind: "dead" };
      if (c.lastError === undefined) return { kind: "fresh" };
      const nextMs = c.nextRefreshAt === null ? Number.NaN : Date.parse(c.nextRefreshAt) - this.d.clock.now();
      return Number.isFinite(nextMs) ? { kind: "deferred", retryAfterMs: Math.max(0, nextMs) } : { kind: "deferred" };
    } catch (e) {
      if (isGrantkeeperError(e, ErrorCode.connectionError) || isNotFoundError(e)) return { kind: "dead" };
      if (isGrantkeeperError(e) && e.retryAfterMs !== undefined) return { kind: "deferred", retryAfterMs: e.retryAfterMs };
      this.d.logger.warn({ connectionId, err: { name: (e as Error).name, message: (e as Error).message } }, "could not refresh a connection after an auth failure; the job is deferred");
      return { kind: "deferred" };
    }
  }

  private async dead(job: ClaimedJob, code: string, message: string): Promise<void> {
    this.stats.dead++;
    this.d.telemetry.metrics.jobDead();
    this.d.logger.error({ jobId: job.id, integrationId: job.integration_id, attempts: job.attempts, code }, "job dead after its last attempt");
    await this.d.hooks.emit("job.dead", { jobId: job.id, integrationId: job.integration_id, attempts: job.attempts, lastError: { code, message } });
  }
}
