/**
 * The job lifecycle as pure transitions (design.md "Jobs and delivery"),
 * in the style of {@link ./transitions.ts}: `(job, event, now, policy) →
 * {next, effects}`, table-tested on both sides of every threshold.
 * Persistence and I/O are the orchestrators' (ingress, worker, target
 * breakers, replay); the queue's set-based SQL is built from
 * {@link queueRules} and {@link CLAIMABLE_JOB_STATES}, and tested against
 * {@link mayClaim}.
 *
 * ```
 * accepted ─► queued ──claimed──► running ──succeeded──► succeeded
 *   │  │        ▲  ▲                 │  │ ──failed─────► failed
 *   │  │        │  └──re-run─────────┘  │ ──faulted────► faulted ─(run_at)─► running
 *   │  │        │   (auth: fresh token │                 └─(last attempt)─► dead
 *   │  │        │    or deferred)      └──auth: dead grant / rejected twice──► parked
 *   │  └─────► parked ◄─(integration not ENABLED)─ queued, faulted
 *   │           └─(integration ENABLED, probe, replay)─► queued
 *   └─────────► discarded (DISABLED and parkWhenDisabled = false)
 * ```
 *
 * The incidents behind the rules: every user error alerted ops (sim
 * background jobs) → `failed` is recorded, never retried or alerted; a dead
 * credential left the queue processing (Frigg, 94k errors a day) → `parked`;
 * a client retried after every auth failure (Nango INC-88, 60,000 attempts a
 * day) → an auth failure re-runs a job once with a fresh token, waits for the
 * refresh rate limit, and otherwise parks it — it never burns its attempts.
 */
import { mayStart, type BreakerState } from "./breaker.js";
import { jobAuthError, jobError, JobAuthCode, type JobLastError } from "./jobLastError.js";
import { jobBackoffMs, type JobOutcome } from "./jobOutcome.js";
import { CLAIMABLE_JOB_STATES, type IntegrationStatus, type JobState } from "./states.js";

/** Job policy (config `jobs`, `integrations.parkWhenDisabled`), in milliseconds. */
export interface JobPolicy {
  /** Attempts before a faulted job is `dead`. An integer ≥ 1. @defaultValue 5 */
  maxAttempts: number;
  /** First retry delay of a faulted job. @defaultValue 5 000 ms */
  backoffBaseMs: number;
  /** Retry delay cap. @defaultValue 300 000 ms */
  backoffMaxMs: number;
  /** Jobs of a DISABLED integration are parked (true) or discarded with a record (false). @defaultValue true */
  parkWhenDisabled: boolean;
}

/** Defaults of api-contract.md (`jobs`, `integrations`). Frozen. */
export const defaultJobPolicy: Readonly<JobPolicy> = Object.freeze({ maxAttempts: 5, backoffBaseMs: 5_000, backoffMaxMs: 300_000, parkWhenDisabled: true });

/**
 * Merge and validate a partial policy.
 * @throws RangeError naming the first bad value: `maxAttempts` not an integer ≥ 1, a delay not a finite number ≥ 0
 */
export function resolveJobPolicy(partial: Partial<JobPolicy> = {}): JobPolicy {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<JobPolicy>;
  const p: JobPolicy = { ...defaultJobPolicy, ...defined };
  if (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 1) throw new RangeError(`job policy maxAttempts must be an integer >= 1, got ${String(p.maxAttempts)}`);
  for (const key of ["backoffBaseMs", "backoffMaxMs"] as const) {
    if (!Number.isFinite(p[key]) || p[key] < 0) throw new RangeError(`job policy ${key} must be a finite number >= 0, got ${String(p[key])}`);
  }
  return p;
}

/** The fields of a job the lifecycle owns (the lease is the store's). Times in ms since the epoch. */
export interface JobRecord {
  state: JobState;
  /** Attempts made so far; a claim counts the attempt it starts. */
  attempts: number;
  /** A half-open breaker probe: runs although its integration is in ERROR(`circuit_open`). */
  probe: boolean;
  /** When the job may run (claimable states) or ran last. */
  runAtMs: number;
  /** When it ended (`succeeded`, `failed`, `dead`, `discarded`), else null. */
  finishedAtMs: number | null;
  lastError: JobLastError | null;
}

/** How a webhook delivery was taken in (the 202's `disposition`). `duplicate`: the store already held its idempotency key. */
export type Disposition = "queued" | "parked" | "discarded" | "duplicate";

/**
 * What a forced refresh of the connection behind an auth failure came to.
 * - `fresh`: a fresh token is available (this refresh or another instance's);
 * - `dead`: the grant is dead (or the connection is gone);
 * - `deferred`: no refresh now (rate limit, provider unreachable); `retryAfterMs` when known.
 */
export type RefreshAnswer = { kind: "fresh" } | { kind: "dead" } | { kind: "deferred"; retryAfterMs?: number };

/** Something that happens to a job. */
export type JobEvent =
  /** A worker claims it (the store checks {@link mayClaim}). */
  | { type: "claimed" }
  /** Its attempt ended. `connectionId`: for an auth failure, the connection to refresh (the outcome's, else the integration's first). */
  | { type: "finished"; outcome: JobOutcome; connectionId?: string }
  /** The refresh an auth failure asked for answered. */
  | { type: "refreshed"; connectionId: string; answer: RefreshAnswer }
  /** Its worker's lease ran out (a crashed worker). */
  | { type: "leaseExpired" }
  /** Its integration's status is (now) `status`. */
  | { type: "integrationStatus"; status: IntegrationStatus }
  /** Its target's open breaker picked it as the half-open probe. */
  | { type: "probeQueued" }
  /** Replay by hand (`POST /v1/integrations/{id}/replay`, `grantkeeper replay`). */
  | { type: "replayed" };

/** What a transition asks the orchestrator to do besides storing `next`. */
export type JobEffect =
  /** Count the attempt on the integration's delivery target breaker. */
  | { type: "breaker"; result: "fault" | "success" }
  /** Force a refresh of the connection, then feed the answer back as a `refreshed` event. */
  | { type: "refresh"; connectionId: string }
  /** Pause the integration: ERROR(`reason`) caused by the connection, its jobs parked until re-authorization or enable. */
  | { type: "pauseIntegration"; reason: "auth_rejected"; connectionId: string }
  /** The job is dead: ops alert (`job.dead`), metric, log. */
  | { type: "dead" };

/** Result of a transition. An event that does not apply to the job's state gives `next === job` and no effects. */
export interface JobStep {
  next: JobRecord;
  effects: JobEffect[];
}

/** States a replay by hand moves back to `queued`, with fresh attempts. */
export const REPLAYABLE_JOB_STATES = ["parked", "dead"] as const satisfies readonly JobState[];

/** Fault codes that say nothing about the delivery target (this process has no handler for the job). */
const NOT_THE_TARGETS_FAULT: ReadonlySet<string> = new Set(["no_handler"]);

const isClaimable = (s: JobState) => (CLAIMABLE_JOB_STATES as readonly JobState[]).includes(s);

/**
 * A new delivery's record, by its integration's status: ENABLED → `queued`;
 * ERROR → `parked`; DISABLED → `parked`, or `discarded` with a `user` error
 * `integration_disabled` when `parkWhenDisabled` is false. (The store turns
 * the disposition into `duplicate` when the idempotency key was already held.)
 */
export function acceptJob(status: IntegrationStatus, nowMs: number, policy: Pick<JobPolicy, "parkWhenDisabled">): { record: JobRecord; disposition: Exclude<Disposition, "duplicate"> } {
  const base: JobRecord = { state: "queued", attempts: 0, probe: false, runAtMs: nowMs, finishedAtMs: null, lastError: null };
  if (status === "ENABLED") return { record: base, disposition: "queued" };
  if (status === "ERROR" || policy.parkWhenDisabled) return { record: { ...base, state: "parked" }, disposition: "parked" };
  return { record: { ...base, state: "discarded", finishedAtMs: nowMs, lastError: disabledError(nowMs) }, disposition: "discarded" };
}

/**
 * True when a worker may claim the job at `nowMs`: claimable state, due,
 * integration ENABLED (or the job is a breaker probe), and no cooldown on
 * its target ({@link mayStart}) — the cooldown holds on every entry path
 * (retry, new job, replay). The claim SQL implements exactly this (and only
 * claims what this process can run: a delivery URL or a registered handler).
 */
export function mayClaim(job: Pick<JobRecord, "state" | "runAtMs" | "probe">, integrationStatus: IntegrationStatus, breaker: BreakerState, nowMs: number): boolean {
  return isClaimable(job.state) && job.runAtMs <= nowMs && (integrationStatus === "ENABLED" || job.probe) && mayStart(breaker, nowMs);
}

/**
 * A set-based move that keeps the queue in step with integration statuses:
 * jobs in `from` (breaker probes excepted) of integrations whose status is in
 * `when` move `to`. The rules are disjoint: a job matches at most one.
 */
export interface QueueRule {
  from: readonly JobState[];
  when: readonly IntegrationStatus[];
  to: "parked" | "queued" | "discarded";
}

/**
 * The queue's rules for integration statuses: not ENABLED → waiting jobs
 * park (DISABLED ones are discarded, parked ones too, when `parkWhenDisabled`
 * is false); ENABLED → parked jobs are queued again (replay, arrival order).
 */
export function queueRules(policy: Pick<JobPolicy, "parkWhenDisabled">): readonly QueueRule[] {
  const waiting = ["queued", "faulted"] as const;
  return policy.parkWhenDisabled
    ? [
        { from: waiting, when: ["ERROR", "DISABLED"], to: "parked" },
        { from: ["parked"], when: ["ENABLED"], to: "queued" },
      ]
    : [
        { from: waiting, when: ["ERROR"], to: "parked" },
        { from: [...waiting, "parked"], when: ["DISABLED"], to: "discarded" },
        { from: ["parked"], when: ["ENABLED"], to: "queued" },
      ];
}

/**
 * The fields a {@link QueueRule} writes besides the state, at `nowMs`:
 * `queued` runs now and is no probe; `discarded` is finished with a `user`
 * error `integration_disabled`; `parked` keeps the rest.
 */
export function queueRuleFields(to: QueueRule["to"], nowMs: number): Partial<JobRecord> {
  if (to === "queued") return { runAtMs: nowMs, probe: false };
  if (to === "discarded") return { finishedAtMs: nowMs, lastError: disabledError(nowMs) };
  return {};
}

/**
 * The next record of a job after an event, and the effects to carry out.
 * @param random a number in [0, 1) for the retry jitter
 */
export function jobTransition(job: JobRecord, event: JobEvent, nowMs: number, policy: JobPolicy, random: number): JobStep {
  const same: JobStep = { next: job, effects: [] };
  switch (event.type) {
    case "claimed":
      return isClaimable(job.state) ? step({ ...job, state: "running", attempts: job.attempts + 1 }) : same;
    case "finished":
      return job.state === "running" ? finished(job, event.outcome, event.connectionId, nowMs, policy, random) : same;
    case "refreshed":
      return job.state === "running" ? afterRefresh(job, event.connectionId, event.answer, nowMs, policy, random) : same;
    case "leaseExpired":
      return job.state === "running" ? step({ ...job, state: "queued", runAtMs: nowMs }) : same;
    case "integrationStatus": {
      if (job.probe) return same;
      const rule = queueRules(policy).find((r) => r.from.includes(job.state) && r.when.includes(event.status));
      return rule ? step({ ...job, state: rule.to, ...queueRuleFields(rule.to, nowMs) }) : same;
    }
    case "probeQueued":
      return job.state === "parked" ? step({ ...job, state: "queued", probe: true, runAtMs: nowMs }) : same;
    case "replayed":
      return (REPLAYABLE_JOB_STATES as readonly JobState[]).includes(job.state) ? step({ ...job, state: "queued", attempts: 0, probe: false, runAtMs: nowMs, finishedAtMs: null }) : same;
  }
}

function finished(job: JobRecord, outcome: JobOutcome, connectionId: string | undefined, nowMs: number, policy: JobPolicy, random: number): JobStep {
  const ended = { ...job, probe: false };
  switch (outcome.kind) {
    case "succeeded":
      return step({ ...ended, state: "succeeded", finishedAtMs: nowMs, lastError: null }, { type: "breaker", result: "success" });
    case "failed":
      // The consumer answered (a 4xx): the target is alive.
      return step({ ...ended, state: "failed", finishedAtMs: nowMs, lastError: jobError("user", outcome.code, outcome.message, nowMs) }, { type: "breaker", result: "success" });
    case "faulted": {
      const lastError = jobError("infra", outcome.code, outcome.message, nowMs);
      const breaker: JobEffect[] = NOT_THE_TARGETS_FAULT.has(outcome.code) ? [] : [{ type: "breaker", result: "fault" }];
      // A probe that did not succeed waits for the next one (its integration is in ERROR(circuit_open)).
      if (job.probe) return step({ ...ended, state: "parked", lastError }, ...breaker);
      if (job.attempts >= policy.maxAttempts) return step({ ...ended, state: "dead", finishedAtMs: nowMs, lastError }, { type: "dead" }, ...breaker);
      const delayMs = jobBackoffMs(job.attempts, policy.backoffBaseMs, policy.backoffMaxMs, random, outcome.retryAfterMs);
      return step({ ...ended, state: "faulted", runAtMs: nowMs + delayMs, lastError }, ...breaker);
    }
    case "auth_failed": {
      if (connectionId === undefined) {
        return step({ ...ended, state: "failed", finishedAtMs: nowMs, lastError: jobAuthError(JobAuthCode.noConnection, `${outcome.message}; the integration depends on no connection to refresh`, nowMs) });
      }
      // The previous attempt already ran with a freshly refreshed token: another refresh would not help.
      if (job.lastError?.class === "auth" && job.lastError.code === JobAuthCode.authFailed) {
        return rejected(job, connectionId, `the API rejected a freshly refreshed token again (${outcome.message})`, nowMs);
      }
      // The caller refreshed already (ctx.fetch does, once, before it throws): as if a refresh had answered "fresh".
      if (outcome.refreshed === true) return afterRefresh(job, connectionId, { kind: "fresh" }, nowMs, policy, random);
      return step(job, { type: "refresh", connectionId });
    }
  }
}

function afterRefresh(job: JobRecord, connectionId: string, answer: RefreshAnswer, nowMs: number, policy: JobPolicy, random: number): JobStep {
  if (answer.kind === "dead") {
    // Its integration is in ERROR by propagation; re-authorization replays the job.
    return step({ ...job, state: "parked", probe: false, lastError: jobAuthError(JobAuthCode.connectionError, `connection ${connectionId} is dead; the job waits for the user to reconnect`, nowMs, connectionId) });
  }
  if (answer.kind === "fresh") {
    return again(job, nowMs, jobAuthError(JobAuthCode.authFailed, `token rejected; re-running once with a freshly refreshed token for ${connectionId}`, nowMs, connectionId));
  }
  if (job.attempts >= policy.maxAttempts) {
    return rejected(job, connectionId, `no fresh token could be had for ${connectionId} by the last attempt`, nowMs);
  }
  const delayMs = answer.retryAfterMs !== undefined ? Math.max(1, answer.retryAfterMs) : jobBackoffMs(job.attempts, policy.backoffBaseMs, policy.backoffMaxMs, random);
  return again(job, nowMs + delayMs, jobAuthError(JobAuthCode.refreshDeferred, `token rejected and ${connectionId} cannot be refreshed yet; re-running no sooner than the refresh may`, nowMs, connectionId));
}

/** Run again at `runAtMs` — unless it is a breaker probe, which parks and waits for the next probe. */
function again(job: JobRecord, runAtMs: number, lastError: JobLastError): JobStep {
  return step(job.probe ? { ...job, state: "parked", probe: false, lastError } : { ...job, state: "queued", runAtMs, lastError });
}

/** Park the job and pause its integration until the connection is re-authorized (or the integration enabled). */
function rejected(job: JobRecord, connectionId: string, message: string, nowMs: number): JobStep {
  return step({ ...job, state: "parked", probe: false, lastError: jobAuthError(JobAuthCode.rejected, message, nowMs, connectionId) }, { type: "pauseIntegration", reason: "auth_rejected", connectionId });
}

function disabledError(nowMs: number): JobLastError {
  return jobError("user", "integration_disabled", "discarded: the integration is disabled", nowMs);
}

function step(next: JobRecord, ...effects: JobEffect[]): JobStep {
  return { next, effects };
}
