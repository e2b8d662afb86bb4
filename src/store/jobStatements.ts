/**
 * The job queue's two hottest statements, written out as SQL text with their
 * parameters instead of built with kysely on every group (issue 16): the
 * accept INSERT of `JobRepository.acceptGroup` and the outcome UPDATE of
 * `JobRepository.finishMany` (jobs.ts). Their texts take few shapes (engine,
 * row count, claim), are kept per shape, and run as named prepared statements
 * on PostgreSQL ({@link PREPARED}).
 */
import { CompiledQuery } from "kysely";
import { CLAIMABLE_JOB_STATES, INTEGRATION_STATUSES, type IntegrationStatus, type JobState } from "../domain/states.js";
import { PREPARED } from "./database.js";
import { literals, notSucceededText } from "./stateSql.js";

/** What the accept statement reads of one delivery (jobs.ts `AcceptedDelivery`). */
export interface AcceptRow {
  job: {
    id: string;
    integration_id: string;
    attempts: number;
    idempotency_key: string | null;
    run_at: number;
    probe: number;
    received_at: number;
    created_at: number;
    updated_at: number;
    headers: string;
    body: string;
  };
  recordFor: Record<IntegrationStatus, { state: JobState; finishedAtMs: number | null; lastError: string | null }>;
}

/** The claim-at-accept parameters (jobs.ts `AcceptClaim`); times are ms since the epoch. */
export interface AcceptClaimParams {
  owner: string;
  leaseUntilMs: number;
  nowMs: number;
  handlerNames: readonly string[];
}

/** Columns of the accept statement's VALUES list, in order: a job's fields, then state, finished_at and last_error per integration status. */
const ACCEPT_COLUMNS = [
  ...["ord", "id", "integration_id", "attempts", "idempotency_key", "run_at", "probe", "received_at", "created_at", "updated_at", "headers", "body"],
  ...INTEGRATION_STATUSES.flatMap((_, n) => [`st${n}`, `fa${n}`, `le${n}`]),
];
/** Casts of {@link ACCEPT_COLUMNS}, in the same order. */
const ACCEPT_CASTS = ["bigint", "text", "text", "bigint", "text", "bigint", "bigint", "bigint", "bigint", "bigint", "text", "text", ...INTEGRATION_STATUSES.flatMap(() => ["text", "bigint", "text"])];

/** Accept statement texts by shape (engine, rows, claim and its handler count): the text of a shape never changes. */
const acceptTexts = new Map<string, string>();

/**
 * The statement of `JobRepository.acceptGroup` (jobs.ts) for one chunk, written out here rather than built with
 * kysely: its ~25 parameters per job were ~400 builder nodes per group, compiled on every accept group (the
 * largest share of kysely's CPU in accept → delivered, issue 16). Same SQL as before; its text is kept per shape.
 */
export function acceptStatement(pg: boolean, chunk: readonly AcceptRow[], claim: AcceptClaimParams | undefined): CompiledQuery {
  const params: unknown[] = [];
  chunk.forEach(({ job: r, recordFor }, k) => {
    params.push(k, r.id, r.integration_id, r.attempts, r.idempotency_key, r.run_at, r.probe, r.received_at, r.created_at, r.updated_at, r.headers, r.body);
    for (const st of INTEGRATION_STATUSES) params.push(recordFor[st].state, recordFor[st].finishedAtMs, recordFor[st].lastError);
  });
  if (claim) params.push(claim.owner, claim.leaseUntilMs, ...claim.handlerNames, claim.nowMs, claim.nowMs, claim.owner);
  const text = kept(acceptTexts, `${pg ? "pg" : "sqlite"}:${chunk.length}:${claim ? claim.handlerNames.length : "-"}`, () => acceptText(pg, chunk.length, claim?.handlerNames.length));
  return CompiledQuery.raw(text, params);
}

/** The text of an accept statement of `rows` jobs; with `handlers` (a count), the claim-at-accept form. Parameters in {@link acceptStatement}'s order. */
function acceptText(pg: boolean, rows: number, handlers: number | undefined): string {
  const p = placeholders(pg);
  const values = castRows(p, rows, ACCEPT_CASTS);
  // The status is read by the INSERT itself: a CASE over every status picks that status's record.
  const pick = (prefix: string) => `case i.status ${INTEGRATION_STATUSES.map((st, i) => `when '${st}' then v.${prefix}${i}`).join(" ")} end`;
  const into = "insert into jobs (id, integration_id, state, attempts, idempotency_key, run_at, lease_owner, lease_until, last_error, probe, received_at, created_at, updated_at, finished_at)";
  const tail = "on conflict (integration_id, idempotency_key) do nothing returning seq, id, state";
  let insertJobs: string;
  if (handlers === undefined) {
    insertJobs = `${into} select v.id, v.integration_id, ${pick("st")}, v.attempts, v.idempotency_key, v.run_at, null, null, ${pick("le")}, v.probe, v.received_at, v.created_at, v.updated_at, ${pick("fa")}
      from v join integrations i on i.id = v.integration_id where true order by v.ord ${tail}`;
  } else {
    // Claimed at accept when `handed` (see `JobRepository.acceptGroup`); queued, parked or discarded otherwise.
    // notSucceededText repeats the jobs_integration_state index's predicate (stateSql.ts `notSucceeded`), so
    // SQLite probes that small index for the integration's waiting and running jobs.
    const owner = p();
    const leaseUntil = p();
    const names = Array.from({ length: handlers }, p);
    const breakerNow = p();
    const waitingNow = p();
    const runningOwner = p();
    insertJobs = `${into}
      select id, integration_id, case when handed then 'running' else st end, case when handed then attempts + 1 else attempts end, idempotency_key, run_at,
        case when handed then ${owner} else null end, case when handed then cast(${leaseUntil} as bigint) else null end, le, probe, received_at, created_at, updated_at, fa
      from (
        select v.ord, v.id, v.integration_id, ${pick("st")} as st, v.attempts, v.idempotency_key, v.run_at, ${pick("le")} as le, v.probe, v.received_at, v.created_at, v.updated_at, ${pick("fa")} as fa,
          (i.status = 'ENABLED'
            and (i.delivery is not null${handlers > 0 ? ` or i.name in (${names.join(", ")})` : ""})
            and not exists (select 1 from breakers b where b.target = i.delivery_target and b.cooldown_until > ${breakerNow})
            and not exists (select 1 from jobs w where w.integration_id = v.integration_id and ${notSucceededText("w.state")} and w.state in (${literals(CLAIMABLE_JOB_STATES)}) and w.run_at <= ${waitingNow})
            and not exists (select 1 from jobs w where w.integration_id = v.integration_id and ${notSucceededText("w.state")} and w.state = 'running' and (w.lease_owner is null or w.lease_owner <> ${runningOwner}))) as handed
        from v join integrations i on i.id = v.integration_id
      ) c where true order by ord ${tail}`;
  }
  const withV = `with v (${ACCEPT_COLUMNS.join(", ")}) as (values ${values})`;
  // PostgreSQL: one round trip for the jobs and the payloads of the ones inserted (data-modifying CTEs), prepared
  // (parsing and planning this statement cost more than running it).
  return pg
    ? `${PREPARED}${withV},
      j as (${insertJobs}),
      p as (insert into job_payloads (job_id, headers, body) select v.id, v.headers, v.body from v join j on j.id = v.id)
      select seq, id, state from j`
    : `${withV} ${insertJobs}`;
}

/** The text kept in `texts` under `shape`, built the first time. */
function kept(texts: Map<string, string>, shape: string, build: () => string): string {
  let text = texts.get(shape);
  if (text === undefined) texts.set(shape, (text = build()));
  return text;
}

/** The engine's placeholders, one per call, in order: `$1`, `$2`, … on PostgreSQL, `?` on SQLite. */
function placeholders(pg: boolean): () => string {
  let n = 0;
  return () => (pg ? `$${++n}` : "?");
}

/** `rows` VALUES rows of placeholders, each cast as `casts` says: `(cast($1 as text), …), (…)`. */
function castRows(p: () => string, rows: number, casts: readonly string[]): string {
  const out: string[] = [];
  for (let k = 0; k < rows; k++) out.push(`(${casts.map((c) => `cast(${p()} as ${c})`).join(", ")})`);
  return out.join(", ");
}

/** Outcome statement texts by engine and row count. */
const finishTexts = new Map<string, string>();

/**
 * The statement of `JobRepository.finishMany` (jobs.ts) for `rows` outcomes (parameters per row: id, owner, state,
 * run_at, finished_at, updated_at, last_error), written out as the accept's is and prepared on PostgreSQL: one of
 * these runs per group of outcomes. A VALUES list joined to jobs: standard SQL that SQLite (≥ 3.33, UPDATE … FROM)
 * and PostgreSQL both run.
 */
export function finishText(pg: boolean, rows: number): string {
  return kept(finishTexts, `${pg ? "pg" : "sqlite"}:${rows}`, () => {
    const values = castRows(placeholders(pg), rows, ["text", "text", "text", "bigint", "bigint", "bigint", "text"]);
    return `${pg ? PREPARED : ""}with v (id, owner, state, run_at, finished_at, updated_at, last_error) as (values ${values})
      update jobs set state = v.state, run_at = v.run_at, finished_at = v.finished_at, updated_at = v.updated_at,
        last_error = v.last_error, probe = 0, lease_owner = null, lease_until = null
      from v
      where jobs.id = v.id and jobs.lease_owner = v.owner and jobs.state = 'running'
      returning jobs.id`;
  });
}
