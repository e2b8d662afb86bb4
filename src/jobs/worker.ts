/**
 * The job worker: claims runnable jobs (leases with a TTL), runs them
 * (delivery to a consumer, or a library handler), and records the outcome —
 * awaiting the write before deciding what comes next. Errors while cleaning up
 * are logged and recorded, never escape the loop (the background-jobs
 * incident: a cleanup error escaped and took the recovery path down).
 *
 * What becomes of a job is decided by `jobTransition` (domain/jobLifecycle.ts);
 * the worker runs the job, carries out the effects the transition asks for
 * (a refresh, a breaker count, an integration paused, a dead-job alert) and
 * stores the record it returns.
 */
import pLimit from "p-limit";
import type { Clock } from "../domain/clock.js";
import type { BreakerPolicy, BreakerState } from "../domain/breaker.js";
import { GroupCommit } from "./groupCommit.js";
import { jobTransition, type JobEffect, type JobPolicy, type JobRecord, type RefreshAnswer } from "../domain/jobLifecycle.js";
import type { JobOutcome } from "../domain/jobOutcome.js";
import type { ConnectionService } from "../lifecycle/connections.js";
import type { LifecycleHooks } from "../lifecycle/hooks.js";
import type { Encryptor } from "../store/encryption.js";
import type { IntegrationRepository, IntegrationRow } from "../store/integrations.js";
import type { BreakerRepository } from "../store/breakers.js";
import type { UnitsOfWork } from "../store/unitOfWork.js";
import { jobRecordOf, type ClaimedJob, type JobFinish, type JobRepository } from "../store/jobs.js";
import { openPayload } from "../store/payloadCipher.js";
import type { Logger } from "../telemetry/logger.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import { inSpan, recordJobOutcome, SpanNames } from "../telemetry/tracing.js";
import { CoalescedRun } from "../concurrency/coalescedRun.js";
import { contextOf, jobOf, type JobHandler } from "./context.js";
import { deliverTraced } from "./delivery.js";
import { isAuthError, isUserError } from "./errors.js";
import { ErrorCode, isGrantkeeperError, isNotFoundError } from "../domain/errors.js";
import { CLAIMABLE_JOB_STATES } from "../domain/states.js";
import { TargetBreakers } from "./targetBreakers.js";
import type { ApiClient } from "../lifecycle/api/authorizedFetch.js";

/** Worker tuning (config `jobs`, in milliseconds), with the job policy it applies. */
export interface WorkerOptions extends JobPolicy {
  /** A claimed job's lease; a crashed worker's jobs are re-claimed after it. @defaultValue 60 000 */
  leaseMs: number;
  /** Jobs run at once. @defaultValue 8 */
  concurrency: number;
  /**
   * Jobs claimed per claim query; at most `concurrency` of them run at once,
   * the rest wait their turn under a lease renewed when half of it is used.
   * Bigger batches mean fewer store round trips per job under load; a quiet
   * queue claims what there is. @defaultValue 64
   */
  batchSize: number;
  /** Longest sleep between looks at the queue (other instances' work, expired leases). @defaultValue 1 000 */
  pollMs: number;
}

/** Dependencies of {@link JobWorker}. */
export interface WorkerDeps {
  jobs: JobRepository;
  /** Per target breakers (shared by instances). */
  breakerStore: BreakerRepository;
  /** Units of work: a breaker flip and its integrations' jobs commit together. */
  units: UnitsOfWork;
  integrations: IntegrationRepository;
  /** Fresh tokens and forced refreshes (auth failures, handler contexts). */
  connections: ConnectionService;
  /** Provider API calls of a handler context's `fetch` (the same `authorizedFetch` as the proxy). */
  api: Pick<ApiClient, "authorizedFetch">;
  encryptor: Encryptor;
  clock: Clock;
  fetch: typeof fetch;
  logger: Logger;
  hooks: LifecycleHooks;
  handlers: Map<string, JobHandler>;
  breaker: BreakerPolicy;
  options: WorkerOptions;
  instanceId: string;
  random: () => number;
  /** Metrics and the tracer (spans `grantkeeper.job.run`, `grantkeeper.job.deliver`, `grantkeeper.api.call`). */
  telemetry: Telemetry;
  /** Ingress groups committed so far by this instance (`IngressService.committedGroups`); lets {@link JobWorker.wake} skip wake-ups a claim already covered. */
  committedGroups?: () => number;
}

/** What one claimed batch shares, read once for all its jobs. */
interface BatchContext {
  integrations: Map<string, IntegrationRow>;
  connectionIds: Map<string, string[]>;
  /** Breaker states of the batch's targets, kept current by this batch's own faults and successes. */
  breakers: Map<string, BreakerState>;
}


/** Running totals (for status, metrics, benchmarks). */
export interface WorkerStats {
  /** Passes over the queue (sweep, probes, claims until none is runnable). */
  passes: number;
  /** Jobs taken: by claim queries, and handed over by ingress at accept. */
  claimed: number;
  /** Of {@link claimed}, the jobs ingress wrote as claimed at accept (no claim query). */
  handedOver: number;
  succeeded: number;
  failed: number;
  faulted: number;
  dead: number;
  parked: number;
  cleanupErrors: number;
}

/** Works the queue. */
export class JobWorker {
  private timer: unknown;
  private readonly runner: CoalescedRun;
  private readonly finisher: GroupCommit<JobFinish, boolean | Error>;
  private readonly targetBreakers: TargetBreakers;
  private started = false;
  /** Planner statistics refreshed once, before the first claim (PostgreSQL). */
  private analyzed = false;
  /** Set by stop(): the claim loop ends after the jobs in hand instead of draining the queue. */
  private stopping = false;
  /**
   * The latest ingress group whose jobs a pass already covers: one a wake-up started (or extended) a run for, or one
   * committed before a claim that came back short (it took every runnable job it saw) began.
   */
  private coveredThrough = 0;
  /**
   * Per-integration lanes: the tail of each integration's chain of jobs in hand. A job starts after the one before
   * it in its lane ended, so one integration's jobs run one after another in arrival order, whether they were
   * claimed or handed over by ingress at accept; different integrations run side by side.
   */
  private readonly lanes = new Map<string, Promise<void>>();
  /** Jobs in hand (in a lane, waiting or running) plus room promised to ingress for a group being written. */
  private inHand = 0;
  /** At most `concurrency` jobs run at once, over every lane. */
  private readonly slot: ReturnType<typeof pLimit>;
  readonly stats: WorkerStats = { passes: 0, claimed: 0, handedOver: 0, succeeded: 0, failed: 0, faulted: 0, dead: 0, parked: 0, cleanupErrors: 0 };

  constructor(private readonly d: WorkerDeps) {
    this.slot = pLimit(d.options.concurrency);
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
    this.runner = new CoalescedRun(
      () => this.pass(),
      () => this.arm(),
      (e) => {
        this.d.logger.error({ err: { name: e.name, message: e.message } }, "job worker loop failed; retrying at the next poll");
        return 0;
      },
    );
  }

  /** Start polling (and run what is due now). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    void this.runner.run();
  }

  /** Stop polling and wait for jobs in flight. */
  async stop(): Promise<void> {
    this.started = false;
    this.stopping = true;
    if (this.timer !== undefined) this.d.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.runner.settled();
    // Jobs handed over at accept run outside any pass.
    await this.lanesSettled();
  }

  /**
   * Claim at accept (issue 16 item 3): how ingress may write the jobs of a
   * group of `n` accepts directly as claimed by this worker — `running`, this
   * instance's lease, first attempt — instead of `queued` for a claim query to
   * find. Offered only while the worker runs and has room for all `n` (its
   * jobs in hand stay within `max(batchSize, concurrency)`); the room is held
   * until {@link takeHandoff} or {@link releaseHandoff}. The INSERT still
   * admits a job only when a claim would take it now and no earlier job of its
   * integration waits in the store (store/jobs.ts `acceptGroup`).
   * @param n jobs in the group
   * @param nowMs the time the group is written, ms since the epoch
   * @returns the claim the INSERT applies, or undefined (write them queued)
   */
  offerHandoff(n: number, nowMs: number): { owner: string; leaseUntilMs: number; nowMs: number; handlerNames: string[] } | undefined {
    const { options } = this.d;
    if (!this.started || this.stopping || this.inHand + n > Math.max(options.batchSize, options.concurrency)) return undefined;
    this.inHand += n;
    return { owner: this.d.instanceId, leaseUntilMs: nowMs + options.leaseMs, nowMs, handlerNames: [...this.d.handlers.keys()] };
  }

  /** Give back the room of an offer whose group was not written (its transaction failed). */
  releaseHandoff(n: number): void {
    this.inHand -= n;
  }

  /**
   * Take the jobs a group's INSERT wrote as claimed by this worker (with their
   * payloads, from memory: no claim, no payload read) and give back the room
   * of the others. Each job joins its integration's lane now, before the next
   * group is written, so arrival order holds; the batch's integrations,
   * connections and breakers are read once for all of them.
   * @param offered the `n` of the {@link offerHandoff} that this group used
   */
  takeHandoff(jobs: ClaimedJob[], offered: number): void {
    this.inHand -= offered;
    if (jobs.length === 0) return;
    this.stats.claimed += jobs.length;
    this.stats.handedOver += jobs.length;
    const batch = this.batchContext(jobs);
    // The lanes await the batch later (after their previous job): a read that fails first (the store went down)
    // must not be an unhandled rejection meanwhile — that ends the process. Each lane still sees the failure.
    batch.catch(() => undefined);
    // Nothing waits on these promises but the lanes (and stop()); a failure is logged in enqueue.
    for (const job of jobs) void this.enqueue(job, batch);
  }

  /** The reads one batch of jobs shares: integrations, their connections, their targets' breakers. */
  private async batchContext(jobs: Array<{ integration_id: string }>): Promise<BatchContext> {
    const ids = [...new Set(jobs.map((j) => j.integration_id))];
    const [rows, connectionIds] = await Promise.all([this.d.integrations.getMany(ids), this.d.integrations.connectionIdsOf(ids)]);
    return { integrations: rows, connectionIds, breakers: await this.d.breakerStore.breakers([...new Set([...rows.values()].map((r) => r.delivery_target))]) };
  }

  /**
   * Put a job in hand at the end of its integration's lane. It runs once the
   * lane's previous job ended, the batch's reads are in and a slot is free; a
   * job that waited half its lease gets a fresh one first (so the sweep does
   * not re-run it meanwhile). Never rejects: a job that cannot run keeps its
   * lease, which expires, and the sweep queues it again.
   */
  private enqueue(job: ClaimedJob, batch: Promise<BatchContext>): Promise<void> {
    const { clock, options, instanceId, jobs } = this.d;
    this.inHand++;
    const lane = job.integration_id;
    const run = (this.lanes.get(lane) ?? Promise.resolve())
      .then(async () => {
        const context = await batch;
        const now = clock.now();
        if (job.lease_until !== null && job.lease_until - now < options.leaseMs / 2 && !(await jobs.renewLease(job.id, instanceId, now + options.leaseMs).catch(() => false))) return;
        await this.slot(() => this.runOne(job, context));
      })
      .catch((e: Error) => {
        this.stats.cleanupErrors++;
        this.d.logger.error({ jobId: job.id, integrationId: job.integration_id, err: { name: e.name, message: e.message } }, "could not run a job in hand; its lease will expire and it will run again");
      })
      .finally(() => {
        this.inHand--;
        if (this.lanes.get(lane) === run) this.lanes.delete(lane);
      });
    this.lanes.set(lane, run);
    return run;
  }

  /**
   * New work arrived: run soon.
   * @param committedGroups for a wake-up by ingress, the groups committed up to the new job's. The first wake-up
   *   for a group starts a pass (or makes the running one go again) whose claims begin after the commit; later
   *   ones for that group or an earlier one are skipped, as are those for a group committed before a claim that
   *   came back short began. Without this, each group of 16 accepts cost two more passes that found nothing.
   */
  wake(committedGroups?: number): void {
    if (!this.started) return;
    if (committedGroups !== undefined) {
      if (committedGroups <= this.coveredThrough) return;
      this.coveredThrough = committedGroups;
    }
    void this.runner.run();
  }

  /**
   * Sweep expired leases, queue due breaker probes, then claim and run jobs
   * until none is runnable, and wait for the jobs in hand (those handed over
   * at accept too). Concurrent calls share one run.
   * @returns jobs claimed by this call's passes
   */
  async runDue(): Promise<number> {
    const ran = await this.runner.run();
    // Jobs handed over at accept run in their lanes, outside any pass: "run what is due" includes them, and the
    // pass one of them may start when it is to run again at once.
    while (this.lanes.size > 0 || this.runner.busy) {
      await this.lanesSettled();
      await this.runner.settled();
    }
    return ran;
  }

  /** Resolves once no job is in hand (every lane ran dry). */
  private async lanesSettled(): Promise<void> {
    while (this.lanes.size > 0) await Promise.all([...this.lanes.values()]);
  }

  private arm(): void {
    if (!this.started) return;
    if (this.timer !== undefined) this.d.clock.clearTimeout(this.timer);
    this.timer = this.d.clock.setTimeout(() => {
      this.timer = undefined;
      void this.runner.run();
    }, this.d.options.pollMs);
  }

  private async pass(): Promise<number> {
    const { jobs, clock, options, instanceId } = this.d;
    let ran = 0;
    this.stats.passes++;
    if (!this.analyzed) {
      await jobs.analyze();
      this.analyzed = true;
    }
    {
      const now = clock.now();
      const swept = await jobs.sweepExpiredLeases(now);
      if (swept > 0) this.d.logger.warn({ jobs: swept }, "re-queued jobs whose worker lease expired");
      await this.queueProbes(now);
      while (!this.stopping) {
        const limit = Math.max(options.batchSize, options.concurrency);
        const through = this.d.committedGroups?.() ?? 0;
        const claimed = await jobs.claim(instanceId, clock.now(), options.leaseMs, limit, [...this.d.handlers.keys()]);
        if (claimed.length < limit) this.coveredThrough = Math.max(this.coveredThrough, through);
        if (claimed.length === 0) break;
        this.stats.claimed += claimed.length;
        ran += claimed.length;
        const withPayloads = async (): Promise<ClaimedJob[]> => {
          const payloads = await jobs.payloads(claimed.map((j) => j.id));
          return claimed.map((job) => {
            // Sealed payloads are opened here, legacy plaintext rows pass as they are (src/store/payloadCipher.ts).
            const stored = payloads.get(job.id);
            return { ...job, ...(stored ? openPayload(this.d.encryptor, job.id, stored) : { headers: "{}", body: "" }) };
          });
        };
        // The batch's reads are independent: on PostgreSQL they run side by side on the pool.
        const [batch, inHand] = await Promise.all([this.batchContext(claimed), withPayloads()]);
        // One integration's jobs run one after another, in arrival order (behind any it has in hand already); different
        // integrations run side by side.
        await Promise.all(inHand.map((job) => this.enqueue(job, Promise.resolve(batch))));
      }
    }
    return ran;
  }

  /** An open breaker whose cooldown passed lets one parked job through as a probe. */
  private async queueProbes(now: number): Promise<void> {
    for (const target of await this.d.breakerStore.breakersDueForProbe(now)) {
      for (const integrationId of await this.d.integrations.openCircuitIntegrations(target)) {
        if (await this.d.jobs.queueProbe(integrationId, now)) break;
      }
    }
  }

  private runOne(job: ClaimedJob, batch: BatchContext): Promise<void> {
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
