/**
 * The shapes of the durable job queue's rows and what its statements take
 * and give back (`JobRepository`, jobs.ts): a stored job, its payload, a
 * delivery to accept, a claim at accept, an outcome to record — and the
 * time-ordered job id.
 */
import type { Selectable } from "kysely";
import { parseJobLastError, type JobLastError } from "../domain/jobLastError.js";
import type { JobRecord } from "../domain/jobLifecycle.js";
import type { IntegrationStatus, JobState } from "../domain/states.js";
import { randomBytesPooled } from "./randomPool.js";
import type { JobsTable } from "./schema.js";

/** A `jobs` row: the job's state, without its payload. */
export type JobRow = Selectable<JobsTable>;

/** What a job carries (`job_payloads`): headers as a JSON object, the raw body in base64. */
export interface JobPayload {
  headers: string;
  body: string;
}

/** A claimed job with its payload, as the worker runs it. */
export type ClaimedJob = JobRow & JobPayload;

/** A job to insert (before it has a `seq`), with its payload. */
export type NewJob = Omit<JobRow, "seq"> & JobPayload;

/**
 * A webhook delivery to store whose state is not decided yet: `JobRepository.acceptGroup` (jobs.ts)
 * picks, in the INSERT itself, the record `recordFor` gives for the status its
 * integration has at that moment.
 */
export interface AcceptedDelivery {
  /** The job row; its `state`, `finished_at` and `last_error` are replaced by those of the chosen record. */
  job: NewJob;
  /** The job's first record for each integration status (domain/jobLifecycle.ts `acceptJob`). */
  recordFor: Record<IntegrationStatus, { state: JobState; finishedAtMs: number | null; lastError: string | null }>;
}

/**
 * Result of `JobRepository.acceptGroup` (jobs.ts) for one delivery: stored (with
 * its `seq`; state `running` when it was claimed at accept) or a duplicate,
 * or its integration is gone.
 */
export type AcceptResult = (InsertResult & { seq?: number }) | { id: string; integrationMissing: true };

/**
 * Claim at accept: the claim `JobRepository.acceptGroup` (jobs.ts) applies to the
 * jobs it may hand straight to the local worker (`JobWorker.offerHandoff`).
 * Times are ms since the epoch.
 */
export interface AcceptClaim {
  /** The worker instance that takes the jobs (lease owner). */
  owner: string;
  leaseUntilMs: number;
  nowMs: number;
  /** Handler names registered in this process (a job of an integration without a delivery URL needs its handler here). */
  handlerNames: string[];
}

/** Result of inserting one job: its id, and whether it was a duplicate of an earlier delivery. */
export interface InsertResult {
  id: string;
  duplicate: boolean;
  state: JobState;
  /** When the stored job was received (for a duplicate: the earlier delivery), ms since the epoch. */
  receivedAt: number;
}

/**
 * A job's recorded end (or its next try), as `JobRepository.finishMany` (jobs.ts)
 * writes it: the record `jobTransition` (domain/jobLifecycle.ts) decided.
 * Times are milliseconds since the epoch. Every finish also clears the lease
 * and the probe flag.
 */
export interface JobFinish {
  id: string;
  /** The worker instance that must still hold the job's lease. */
  owner: string;
  state: Exclude<JobState, "running">;
  /** When the job may run next. */
  runAt: number;
  /** Set for an end (succeeded, failed, dead), null otherwise. */
  finishedAt: number | null;
  updatedAt: number;
  /** Null clears it. */
  lastError: JobLastError | null;
}

/** The lifecycle's view of a stored job (domain/jobLifecycle.ts). */
export function jobRecordOf(row: JobRow): JobRecord {
  return { state: row.state, attempts: row.attempts, probe: row.probe === 1, runAtMs: row.run_at, finishedAtMs: row.finished_at, lastError: parseJobLastError(row.last_error) };
}

/**
 * A new job id: `job_` + 12 hex digits of the time in milliseconds + 12 random
 * hex digits (48 bits). Time-ordered, so inserts land at the end of the id
 * index instead of on a random page each: with random ids a group of 16 jobs
 * dirtied ~30 index pages, and the SQLite commit (WAL fsync) cost grew with them.
 * @param nowMs the time, ms since the epoch
 */
export function newJobId(nowMs: number): string {
  return `job_${Math.max(0, Math.floor(nowMs)).toString(16).padStart(12, "0").slice(-12)}${randomBytesPooled(6).toString("hex")}`;
}
