/**
 * Retention sweeps (issue 13, api-contract.md v1.1 "Data lifecycle"): delete
 * finished rows past their windows (src/domain/retention.ts) in small
 * batches, one instance at a time, and on SQLite give the freed pages back.
 * A running server sweeps every `retention.sweepIntervalSeconds`;
 * `grantkeeper prune` runs one sweep now.
 *
 * Ingress keeps its latency: each batch is one short statement or
 * transaction sized to take about `batchTargetMs` (at most `batchSize`
 * rows; `nextBatchSize` adapts the count after every batch, so a loaded
 * store gets small batches), its deletes commit without waiting for the disk
 * (they are idempotent), and after each batch the sweep pauses twice as long
 * as the batch took (`pauseFactor` × its duration, at most 250 ms) — on
 * PostgreSQL longer when needed to stay under `maxRowsPerSecond` (the WAL
 * the deletes write) — so it holds the store at most about a third of the
 * time and an arriving webhook never
 * waits behind more than one short batch (on SQLite the database calls are
 * synchronous in this process: a batch's length is how long a webhook may
 * wait behind it). SQLite's space reclaim runs in steps sized the same way. The pause is real elapsed time (`setTimeout`), not the
 * injected clock: it meters the store's work, which the clock of the
 * retention windows does not see (a manual clock stands still while the
 * store works).
 */
import type { Clock } from "../domain/clock.js";
import { nextBatchSize, RETENTION_TABLES, retentionCutoffs, type RetentionPolicy, type RetentionTable } from "../domain/retention.js";
import type { RetentionRepository } from "../store/retention.js";
import type { Logger } from "../telemetry/logger.js";
import type { Metrics } from "../telemetry/metrics.js";

/** Most rows per delete statement unless told otherwise (the count adapts below it to {@link DEFAULT_SWEEP_BATCH_TARGET_MS}). */
export const DEFAULT_SWEEP_BATCH_SIZE = 500;
/**
 * How long one batch (or one SQLite reclaim step) should take unless told otherwise, milliseconds, per
 * engine. SQLite: well under an accept's own commit time — the batch runs on the one connection, in this
 * process's thread, and an arriving webhook waits behind it. PostgreSQL: the batch runs on its own session
 * beside ingress and delays no accept directly (only through shared CPU and disk, which the pause after each
 * batch meters), while under load each statement's round trip alone takes several milliseconds. Measured:
 * docs/benchmarks.md "Retention sweep under ingress" (an arriving webhook's p99 within 2× of an idle store's).
 */
export const DEFAULT_SWEEP_BATCH_TARGET_MS: Readonly<Record<"sqlite" | "postgres", number>> = Object.freeze({ sqlite: 4, postgres: 25 });
/**
 * Most rows a sweep deletes per second unless told otherwise, per engine (none on SQLite). PostgreSQL: each
 * deleted job with its 1 KB payload writes about 2 KB of WAL (full-page images), and WAL volume is what brings
 * checkpoints forward — whose fsyncs stall every commit, ingress's included. Unpaced (~9,000 jobs/s) the sweep
 * wrote three times the WAL of 2,000 webhooks/s of ingress and put a checkpoint
 * every ~25 s under ingress, the accept p99 7× the same load's without a sweep; capped at 1,000/s (3.4 MB/s of WAL
 * beside ingress's 5.7) a checkpoint came every ~60 s and the p99 was 1.7× (300,000 jobs) to 2.9× (1,000,000)
 * on a machine whose checkpoints stalled commits 100–250 ms, 0.64–1.46× (1,000,000) on one with a faster disk
 * (docs/benchmarks.md "Retention sweep under ingress"). 1,000 jobs/s is still 86 million a day, far above what
 * any ingress fills.
 */
export const DEFAULT_SWEEP_MAX_ROWS_PER_SECOND: Readonly<Record<"sqlite" | "postgres", number>> = Object.freeze({ sqlite: Number.POSITIVE_INFINITY, postgres: 1_000 });
/** Fewest rows per batch, however slow the store: the sweep always makes progress. */
const MIN_BATCH_ROWS = 10;
/**
 * SQLite: longest a sweep spends giving free pages back to the file system, milliseconds of wall time (steps
 * and pauses). Freed pages are reused for new rows at once either way; shrinking the file is what waits. A
 * large backlog (a million deleted jobs: ~370,000 pages) shrinks over several sweeps instead of moving pages
 * for minutes under ingress (docs/benchmarks.md "Retention sweep under ingress").
 */
const RECLAIM_BUDGET_MS = 30_000;
/** SQLite: rows deleted or pages reclaimed between two WAL checkpoints of the sweep's own (about 1 MiB of WAL: a few milliseconds each). */
const CHECKPOINT_EVERY = 250;
/** Pause after a batch, as a multiple of the batch's duration, unless told otherwise: 2 = the sweep holds the store about a third of the time. */
export const DEFAULT_SWEEP_PAUSE_FACTOR = 2;
/**
 * Longest pause after one batch, milliseconds. A batch's duration includes its wait for the store (on SQLite,
 * behind ingress's own commits in the one connection's queue): on a saturated store that wait, not the sweep's
 * work, would set the pause and the sweep would crawl. Capped, the sweep still makes progress.
 */
const MAX_PAUSE_MS = 250;
/** Most, fewest and first SQLite pages (4 KiB each) released per `incremental_vacuum` step (adapted like a batch). */
const VACUUM_STEP = { max: 4_000, min: 16, first: 128 } as const;

/** A step size that follows the last step's duration ({@link nextBatchSize}) between `min` and `max`. */
interface Sizing {
  n: number;
  readonly min: number;
  readonly max: number;
}

/** What one sweep did. */
export interface SweepReport {
  /** True when another instance was sweeping this store (PostgreSQL advisory lock): nothing was deleted. */
  skipped: boolean;
  /** Rows deleted per table (every table of `RETENTION_TABLES`, 0 when none). */
  deleted: Record<RetentionTable, number>;
  /** SQLite pages given back to the file system after the deletes (0 on PostgreSQL or an `auto_vacuum=NONE` file). */
  reclaimedPages: number;
  /** True when `stop()` cut the sweep short (the next one continues where it left off). */
  interrupted: boolean;
  /** Wall time the sweep took, milliseconds. */
  durationMs: number;
}

/** Dependencies of {@link RetentionSweeper}. */
export interface RetentionSweeperDeps {
  repo: RetentionRepository;
  clock: Clock;
  logger: Logger;
  policy: RetentionPolicy;
  /** Counts deleted rows per table (`grantkeeper_retention_deleted_rows_total`). */
  metrics?: Pick<Metrics, "retentionDeleted">;
  /** Most rows per delete statement. @defaultValue {@link DEFAULT_SWEEP_BATCH_SIZE} */
  batchSize?: number;
  /** Wanted duration of one batch, milliseconds; the row count adapts to it between {@link MIN_BATCH_ROWS} and `batchSize`. @defaultValue {@link DEFAULT_SWEEP_BATCH_TARGET_MS} of the repository's engine */
  batchTargetMs?: number;
  /** Pause after each full batch, as a multiple of its duration (0: only yield to the event loop). @defaultValue {@link DEFAULT_SWEEP_PAUSE_FACTOR} */
  pauseFactor?: number;
  /** Most rows deleted per second (the pause after a batch grows to hold it; Infinity: no cap). @defaultValue {@link DEFAULT_SWEEP_MAX_ROWS_PER_SECOND} of the repository's engine */
  maxRowsPerSecond?: number;
  /** A sweep still running logs the rows deleted so far ("retention sweep in progress", info) this often, real milliseconds. @defaultValue 60 000 */
  progressLogEveryMs?: number;
  /** Called after every step that deleted rows, with the rows deleted so far per table (a copy) and the sweep's elapsed real milliseconds (`grantkeeper prune`'s progress). */
  onProgress?: (deleted: Readonly<Record<RetentionTable, number>>, elapsedMs: number) => void;
}

/**
 * Runs retention sweeps: on demand ({@link RetentionSweeper.sweep}) and, once
 * started, every `policy.sweepIntervalMs` on the injected clock. At most one
 * sweep runs per process (a second call joins the first); across processes
 * on PostgreSQL, one per store (the others report `skipped`).
 */
export class RetentionSweeper {
  private running: Promise<SweepReport> | undefined;
  private timer: unknown;
  private started = false;
  private stopping = false;
  private readonly batchSize: number;
  private readonly batchTargetMs: number;
  private readonly pauseFactor: number;
  private readonly maxRowsPerSecond: number;

  /** @throws RangeError for a batch size that is not an integer ≥ 1, a batch target that is not a finite number > 0, a pause factor that is not a finite number ≥ 0, or a rate that is not > 0 */
  constructor(private readonly d: RetentionSweeperDeps) {
    this.batchSize = d.batchSize ?? DEFAULT_SWEEP_BATCH_SIZE;
    this.batchTargetMs = d.batchTargetMs ?? DEFAULT_SWEEP_BATCH_TARGET_MS[d.repo.dialect];
    this.pauseFactor = d.pauseFactor ?? DEFAULT_SWEEP_PAUSE_FACTOR;
    this.maxRowsPerSecond = d.maxRowsPerSecond ?? DEFAULT_SWEEP_MAX_ROWS_PER_SECOND[d.repo.dialect];
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new RangeError(`retention batch size must be an integer ≥ 1, got ${this.batchSize}`);
    if (!Number.isFinite(this.batchTargetMs) || this.batchTargetMs <= 0) throw new RangeError(`retention batch target must be a finite number of milliseconds > 0, got ${this.batchTargetMs}`);
    if (!Number.isFinite(this.pauseFactor) || this.pauseFactor < 0) throw new RangeError(`retention pause factor must be a finite number ≥ 0, got ${this.pauseFactor}`);
    if (!(this.maxRowsPerSecond > 0)) throw new RangeError(`retention max rows per second must be > 0, got ${this.maxRowsPerSecond}`);
  }

  /**
   * Sweep now: every finished row past its window goes, batch by batch;
   * queued, running, faulted and parked jobs are never touched. Joins a
   * sweep already running in this process.
   * @throws the store's error when a delete fails (rows deleted before it stay deleted; the next sweep goes on)
   */
  sweep(): Promise<SweepReport> {
    this.running ??= this.sweepOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** True while a sweep of this instance runs (started by the timer or by {@link RetentionSweeper.sweep}). */
  get inProgress(): boolean {
    return this.running !== undefined;
  }

  /** Sweep every `policy.sweepIntervalMs` (the first after one interval) until {@link RetentionSweeper.stop}. Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    this.schedule();
  }

  /** Stop the timer and cut a sweep in progress short after its current batch; resolves when it has ended. */
  async stop(): Promise<void> {
    this.started = false;
    this.stopping = true;
    if (this.timer !== undefined) this.d.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
    this.stopping = false;
  }

  private schedule(): void {
    this.timer = this.d.clock.setTimeout(() => {
      this.timer = undefined;
      void this.sweep()
        .then((r) => {
          if (r.skipped) this.d.logger.debug("retention sweep skipped: another instance is sweeping this store");
          else if (Object.values(r.deleted).some((n) => n > 0)) this.d.logger.info({ deleted: r.deleted, reclaimedPages: r.reclaimedPages, durationMs: Math.round(r.durationMs) }, "retention sweep");
        })
        .catch((e: Error) => this.d.logger.warn({ err: { name: e.name, message: e.message } }, "retention sweep failed; retrying at the next interval"))
        .finally(() => {
          if (this.started) this.schedule();
        });
    }, this.d.policy.sweepIntervalMs);
  }

  private async sweepOnce(): Promise<SweepReport> {
    const t0 = performance.now();
    const deleted = Object.fromEntries(RETENTION_TABLES.map((t) => [t, 0])) as Record<RetentionTable, number>;
    let interrupted = false;
    // A backlog takes a while (PostgreSQL: 1,000 jobs a second): say how far it got now and then.
    const logEvery = this.d.progressLogEveryMs ?? 60_000;
    let loggedAt = t0;
    const count = (table: RetentionTable, n: number) => {
      if (n === 0) return;
      deleted[table] += n;
      this.d.metrics?.retentionDeleted(table, n);
      const now = performance.now();
      this.d.onProgress?.({ ...deleted }, now - t0);
      if (now - loggedAt >= logEvery) {
        loggedAt = now;
        this.d.logger.info({ deleted: { ...deleted }, durationMs: Math.round(now - t0) }, "retention sweep in progress");
      }
    };
    // Each kind of step keeps its own size, adapted after every step (nextBatchSize): rows for the deletes, pages for the reclaim.
    const minRows = Math.min(MIN_BATCH_ROWS, this.batchSize);
    const rows: Sizing = { n: minRows, min: minRows, max: this.batchSize };
    const pages: Sizing = { n: VACUUM_STEP.first, min: VACUUM_STEP.min, max: VACUUM_STEP.max };
    let sinceCheckpoint = 0;
    /**
     * SQLite: after {@link CHECKPOINT_EVERY} rows or pages written, their WAL pages go to the file now, in the
     * sweep's time slot (see RetentionRepository.checkpoint), and the sweep pauses after it as after a batch.
     * A checkpoint costs an fsync whatever its size, so it is not run after every small batch.
     */
    const settle = async (written: number, force = false) => {
      sinceCheckpoint += written;
      if (sinceCheckpoint === 0 || (!force && sinceCheckpoint < CHECKPOINT_EVERY)) return;
      sinceCheckpoint = 0;
      const t = performance.now();
      await this.d.repo.checkpoint();
      if (!force) await this.pause(performance.now() - t);
    };
    /**
     * Run steps of `size.n`, each sized from the last one's duration, until one does less than it was asked
     * (or stop() is called, or `deadline` — a `performance.now()` time — passes).
     */
    const drain = async (step: (n: number) => Promise<number>, size: Sizing, deadline = Number.POSITIVE_INFINITY) => {
      for (;;) {
        if (this.stopping) {
          interrupted = true;
          return;
        }
        if (performance.now() >= deadline) return;
        const t = performance.now();
        const asked = size.n;
        const n = await step(asked);
        const took = performance.now() - t;
        size.n = nextBatchSize(asked, took, this.batchTargetMs, size.min, size.max);
        if (n < asked) return settle(n);
        await this.pause(took, n);
        await settle(n);
      }
    };
    const locked = await this.d.repo.withSweepLock(async () => {
      const cut = retentionCutoffs(this.d.policy, this.d.clock.now());
      for (const { state, beforeMs } of cut.jobs) {
        await drain(async (limit) => {
          const r = await this.d.repo.deleteJobs(state, beforeMs, limit);
          count("jobs", r.jobs);
          count("job_payloads", r.payloads);
          return r.jobs;
        }, rows);
      }
      await drain(async (limit) => tap("alerts", await this.d.repo.deleteByTime("alerts", cut.alertsBeforeMs, limit)), rows);
      await drain(async (limit) => tap("connection_events", await this.d.repo.deleteByTime("connection_events", cut.eventsBeforeMs, limit)), rows);
      await drain(async (limit) => tap("oauth_states", await this.d.repo.deleteOAuthStates(cut.oauthStatesExpiredAtMs, limit)), rows);
      await drain(async (limit) => tap("connect_sessions", await this.d.repo.deleteConnectSessions(cut.connectSessionsBeforeMs, limit)), rows);
      let reclaimed = 0;
      if (Object.values(deleted).some((n) => n > 0)) {
        // Free pages go back in steps sized like the deletes, for at most RECLAIM_BUDGET_MS: ingress latency before
        // shrinking the file, a large backlog goes back over several sweeps.
        await drain(async (n) => {
          const freed = await this.d.repo.reclaimSpace(n);
          reclaimed += freed;
          return freed;
        }, pages, performance.now() + RECLAIM_BUDGET_MS);
      }
      await settle(0, true);
      return reclaimed;
    });
    function tap(table: RetentionTable, n: number): number {
      count(table, n);
      return n;
    }
    return { skipped: !locked.acquired, deleted, reclaimedPages: locked.acquired ? locked.value : 0, interrupted, durationMs: performance.now() - t0 };
  }

  /**
   * Let queued I/O (an arriving webhook) run, then wait `pauseFactor` × the last batch's duration (at most
   * {@link MAX_PAUSE_MS}), or longer when the batch's `rows` would otherwise exceed `maxRowsPerSecond` (real
   * milliseconds).
   */
  private async pause(batchMs: number, rows = 0): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const ms = Math.max(Math.min(MAX_PAUSE_MS, batchMs * this.pauseFactor), (rows / this.maxRowsPerSecond) * 1000 - batchMs);
    if (ms >= 1) await new Promise((resolve) => setTimeout(resolve, ms));
  }
}
