/**
 * The proactive refresh scheduler: in process, durable (the schedule is the
 * indexed `next_refresh_at` column, so a restart loses nothing), one timer for
 * the next due time — never one timer or object per grant. Cost per tick grows
 * with the work due, not with the grants held. (The 7-hour overnight outage
 * came from a refresh scheduled by an external command that failed.)
 */
import type { Clock } from "../domain/clock.js";
import type { ConnectionRepository, ConnectionRow } from "../store/connections.js";
import type { Logger } from "../telemetry/logger.js";
import { CoalescedRun } from "../concurrency/coalescedRun.js";
import type { RefreshEngine } from "./refresher.js";

/** Scheduler tuning. */
export interface SchedulerOptions {
  /** Due connections fetched per query. @defaultValue 200 */
  batchSize: number;
  /** Refreshes run at once (they wait on the provider, not the CPU). @defaultValue 32 */
  concurrency: number;
  /** Longest sleep between looks at the store, in milliseconds (picks up work scheduled by other instances). @defaultValue 30 000 */
  maxSleepMs: number;
}

/** Running totals, for `status`, metrics and benchmarks. Times in milliseconds. */
export interface SchedulerStats {
  ticks: number;
  started: number;
  /** Largest observed delay between a connection's `next_refresh_at` and the start of its refresh. */
  maxLatenessMs: number;
  /** Sum of lateness, for the mean. */
  totalLatenessMs: number;
}

/** Wakes up for due refreshes and runs them with bounded concurrency. */
export class RefreshScheduler {
  private timer: unknown;
  private timerAt: number | undefined;
  private readonly runner: CoalescedRun;
  private started = false;
  /** Set by stop(): the pass ends after the refreshes in hand instead of working off everything due. */
  private stopping = false;
  readonly stats: SchedulerStats = { ticks: 0, started: 0, maxLatenessMs: 0, totalLatenessMs: 0 };

  constructor(
    private readonly repo: ConnectionRepository,
    private readonly engine: RefreshEngine,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: SchedulerOptions,
  ) {
    this.runner = new CoalescedRun(
      () => this.pass(),
      () => void this.rearm(),
      (e) => {
        this.logger.error({ err: { name: e.name, message: e.message } }, "scheduler pass failed; retrying at the next wake-up");
        return 0;
      },
    );
  }

  /** Start: run what is due, then sleep until the next due time. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    void this.runDue();
  }

  /** Stop the timer and wait for refreshes in flight. */
  async stop(): Promise<void> {
    this.started = false;
    this.stopping = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
    await this.runner.settled();
  }

  /**
   * Tell the scheduler a connection became due at `atMs` (milliseconds since
   * the epoch): re-arms the timer if that is earlier than the current one.
   */
  wake(atMs: number | null): void {
    if (!this.started || atMs === null) return;
    if (this.timerAt === undefined || atMs < this.timerAt) this.arm(atMs);
  }

  /**
   * Refresh everything due now, in batches, then re-arm the timer. Concurrent
   * calls share one run (a second call during a run makes it loop once more).
   * @returns refreshes started by this run
   */
  runDue(): Promise<number> {
    return this.runner.run();
  }

  private async pass(): Promise<number> {
    let startedHere = 0;
    while (!this.stopping) {
      this.stats.ticks++;
      const now = this.clock.now();
      let due: Array<{ id: string; next_refresh_at: number | null }>;
      try {
        due = await this.repo.due(now, this.options.batchSize);
      } catch (e) {
        this.logger.error({ err: { message: (e as Error).message } }, "scheduler could not read due connections");
        return startedHere;
      }
      if (due.length === 0) break;
      startedHere += due.length;
      await this.runBatch(due, now);
      if (due.length < this.options.batchSize) break;
    }
    return startedHere;
  }

  private async runBatch(due: Array<{ id: string; next_refresh_at: number | null }>, now: number): Promise<void> {
    // Leases are taken a few rows at a time in one statement each: one commit per chunk instead of per
    // connection, and no lease is held long before its refresh starts (it would expire under a slow provider).
    const chunk = Math.max(1, Math.ceil(this.options.concurrency / 4));
    const leased: ConnectionRow[] = [];
    let next = 0;
    let refilling: Promise<void> | undefined;
    const take = async (): Promise<ConnectionRow | undefined> => {
      while (leased.length === 0) {
        if (next >= due.length) return undefined;
        refilling ??= (async () => {
          const ids = due.slice(next, next + chunk).map((d) => d.id);
          next += ids.length;
          leased.push(...(await this.repo.acquireLeases(ids, this.engine.owner, this.clock.now(), this.engine.leaseTtlMs)));
        })().finally(() => (refilling = undefined));
        await refilling;
      }
      return leased.shift();
    };
    const worker = async () => {
      for (let row = await take(); row !== undefined; row = await take()) {
        const lateness = Math.max(0, this.clock.now() - (row.next_refresh_at ?? now));
        this.stats.started++;
        this.stats.totalLatenessMs += lateness;
        this.stats.maxLatenessMs = Math.max(this.stats.maxLatenessMs, lateness);
        try {
          await this.engine.refreshLeased([row], "scheduled")[0];
        } catch (e) {
          // A refresh that throws (provider deleted, store hiccup) must never stop the scheduler.
          this.logger.error({ connectionId: row.id, err: { name: (e as Error).name, message: (e as Error).message } }, "scheduled refresh crashed");
          // Push it back so a connection that always crashes cannot spin the scheduler — only while it is as it was
          // leased: another instance may have refreshed it meanwhile, and its schedule must stand.
          await this.repo.postpone(row.id, row, this.clock.now() + this.options.maxSleepMs).catch(() => undefined);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.options.concurrency, due.length) }, worker));
    } finally {
      // Leases taken but not started (a store error mid-batch): give them back rather than wait for the TTL.
      for (const row of leased) await this.repo.releaseLease(row.id, this.engine.owner, {}).catch(() => undefined);
    }
  }

  private async rearm(): Promise<void> {
    if (!this.started) return;
    let nextDue: number | undefined;
    try {
      nextDue = await this.repo.nextDueAt(this.clock.now());
    } catch (e) {
      this.logger.error({ err: { message: (e as Error).message } }, "scheduler could not read the next due time");
    }
    this.arm(nextDue ?? this.clock.now() + this.options.maxSleepMs);
  }

  private arm(atMs: number): void {
    if (!this.started) return;
    const now = this.clock.now();
    const at = Math.min(Math.max(atMs, now), now + this.options.maxSleepMs);
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      void this.runDue();
    }, at - now);
  }
}
