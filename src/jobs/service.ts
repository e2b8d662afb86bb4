/** The job API (`gk.jobs`): read jobs, replay by hand. */
import type { Clock } from "../domain/clock.js";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import { parseJobLastError, type JobLastError } from "../domain/jobLastError.js";
import type { JobState } from "../domain/states.js";
import type { IntegrationRepository } from "../store/integrations.js";
import type { JobRepository } from "../store/jobs.js";
import type { JobRow } from "../store/jobRows.js";
import { seqCursor } from "../domain/cursor.js";

export { JOB_STATES } from "../domain/states.js";

/** A job as the API shows it (api-contract.md "Shapes"); never its body. */
export interface JobView {
  id: string;
  integrationId: string;
  state: JobState;
  attempts: number;
  idempotencyKey?: string;
  /** What ended (or deferred) its last attempt; see docs/api.md "Job.lastError". */
  lastError?: JobLastError;
  receivedAt: string;
  createdAt: string;
  updatedAt: string;
}

function view(r: JobRow): JobView {
  return {
    id: r.id,
    integrationId: r.integration_id,
    state: r.state,
    attempts: r.attempts,
    ...(r.idempotency_key ? { idempotencyKey: r.idempotency_key } : {}),
    ...(r.last_error ? { lastError: parseJobLastError(r.last_error)! } : {}),
    receivedAt: new Date(r.received_at).toISOString(),
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

/** Read and replay jobs. */
export class JobService {
  constructor(
    private readonly jobs: JobRepository,
    private readonly integrations: IntegrationRepository,
    private readonly clock: Clock,
    private readonly wake: () => void,
  ) {}

  /** One job. @throws {@link GrantkeeperError} 404 `job_not_found` */
  async get(id: string): Promise<JobView> {
    const r = await this.jobs.get(id);
    if (!r) throw new GrantkeeperError(ErrorCode.jobNotFound, `no job ${JSON.stringify(id)}`);
    return view(r);
  }

  /** A page of jobs in arrival order; the cursor is opaque. */
  async list(filter: { integrationId?: string; state?: JobState } = {}, page: { cursor?: string; limit?: number } = {}): Promise<{ items: JobView[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 500);
    const after = seqCursor(page.cursor);
    const rows = await this.jobs.list(filter, after, limit + 1);
    const items = rows.slice(0, limit);
    return rows.length > limit ? { items: items.map(view), nextCursor: String(items[items.length - 1]!.seq) } : { items: items.map(view) };
  }

  /**
   * Replay by hand: parked and dead jobs of an ENABLED integration run again, in arrival order.
   * @param onProgress called after each batch with the running total
   * @returns how many were re-queued
   * @throws {@link GrantkeeperError} 404 `integration_not_found`; 409 `integration_not_enabled` (they would only be parked again)
   */
  async replay(integrationId: string, onProgress?: (done: number) => void): Promise<number> {
    const integration = await this.integrations.get(integrationId);
    if (!integration) throw new GrantkeeperError(ErrorCode.integrationNotFound, `no integration ${JSON.stringify(integrationId)}`);
    if (integration.status !== "ENABLED") {
      throw new GrantkeeperError(ErrorCode.integrationNotEnabled, `integration ${integrationId} is ${integration.status}${integration.status_reason ? ` (${integration.status_reason})` : ""}; its jobs would only be parked again`);
    }
    const n = await this.jobs.replay(integrationId, this.clock.now(), 1000, onProgress);
    if (n > 0) this.wake();
    return n;
  }
}
