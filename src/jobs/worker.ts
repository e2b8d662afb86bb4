/**
 * The job worker: claims runnable jobs (leases with a TTL) and takes those
 * ingress hands over at accept, keeps them in per-integration lanes (one
 * integration's jobs run one after another, in arrival order; different
 * integrations side by side, at most `concurrency` at once), renews a lease
 * that waited half its time, and hands each job to {@link JobAttempts}
 * (attempts.ts), which runs it and records what it came to — awaiting the
 * write before deciding what comes next. Errors while cleaning up are logged
 * and recorded, never escape the loop (the background-jobs incident: a
 * cleanup error escaped and took the recovery path down).
 */
import pLimit from "p-limit";
import { CoalescedRun } from "../concurrency/coalescedRun.js";
import { openPayload } from "../store/payloadCipher.js";
import type { ClaimedJob, JobPayload } from "../store/jobRows.js";
import { JobAttempts } from "./attempts.js";
import { RecentPayloads } from "./recentPayloads.js";
import type { BatchContext, WorkerDeps, WorkerStats } from "./workerTypes.js";

/** Works the queue. */
export class JobWorker {
  private timer: unknown;
  private readonly runner: CoalescedRun;
  /** Runs each job in hand and records its outcome. */
  private readonly attempts: JobAttempts;
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
  readonly stats: WorkerStats = { passes: 0, claimed: 0, handedOver: 0, payloadsFromMemory: 0, succeeded: 0, failed: 0, faulted: 0, dead: 0, parked: 0, cleanupErrors: 0 };
  /** Payloads ingress just committed queued, kept for this worker's claim of them ({@link keepPayload}). */
  private readonly recent: RecentPayloads;

  constructor(private readonly d: WorkerDeps) {
    this.recent = new RecentPayloads(d.clock);
    this.slot = pLimit(d.options.concurrency);
    this.attempts = new JobAttempts(d, this.stats, () => this.wake());
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
    this.recent.clear();
  }

  /**
   * Keep the plaintext payload of a job ingress just committed queued, for
   * this worker's claim of it (src/jobs/recentPayloads.ts): the claim then
   * neither reads nor decrypts it. Only while the worker runs; bounded in
   * size and age.
   * @param jobId the job's id as written
   * @param payload headers (JSON object text) and body (base64), as ingress built them before sealing
   */
  keepPayload(jobId: string, payload: JobPayload): void {
    if (this.started && !this.stopping) this.recent.put(jobId, payload);
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
        await this.slot(() => this.attempts.run(job, context));
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
          // Payloads ingress kept in memory first; the store is read for the others only.
          const kept = claimed.map((job) => this.recent.take(job.id));
          const missing = claimed.filter((_, i) => kept[i] === undefined).map((j) => j.id);
          this.stats.payloadsFromMemory += claimed.length - missing.length;
          const payloads = missing.length > 0 ? await jobs.payloads(missing) : undefined;
          return claimed.map((job, i) => {
            const inMemory = kept[i];
            if (inMemory) return { ...job, ...inMemory };
            // Sealed payloads are opened here, legacy plaintext rows pass as they are (src/store/payloadCipher.ts).
            const stored = payloads?.get(job.id);
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

}
