/**
 * The job worker's options, dependencies and running totals, shared by the
 * worker that claims jobs ({@link ./worker.ts}) and the attempts that run
 * them ({@link ./attempts.ts}).
 */
import type { BreakerPolicy, BreakerState } from "../domain/breaker.js";
import type { Clock } from "../domain/clock.js";
import type { JobPolicy } from "../domain/jobLifecycle.js";
import type { ApiClient } from "../lifecycle/api/authorizedFetch.js";
import type { ConnectionService } from "../lifecycle/connections.js";
import type { LifecycleHooks } from "../lifecycle/hooks.js";
import type { BreakerRepository } from "../store/breakers.js";
import type { Encryptor } from "../store/encryption.js";
import type { IntegrationRepository, IntegrationRow } from "../store/integrations.js";
import type { JobRepository } from "../store/jobs.js";
import type { UnitsOfWork } from "../store/unitOfWork.js";
import type { Logger } from "../telemetry/logger.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import type { JobHandler } from "./context.js";

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
export interface BatchContext {
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
  /** Of the jobs claimed by a claim query, those whose payload ingress had kept in memory (no payload read, no decryption; src/jobs/recentPayloads.ts). */
  payloadsFromMemory: number;
  succeeded: number;
  failed: number;
  faulted: number;
  dead: number;
  parked: number;
  cleanupErrors: number;
}
