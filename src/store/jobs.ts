/**
 * SQL of the durable job queue, in the style of pg-boss's SKIP LOCKED claims
 * but on kysely for both engines: on PostgreSQL any number of instances claim
 * with `FOR UPDATE SKIP LOCKED`; on SQLite one process works the queue and a
 * claim is one write transaction. Parking and replay are set-based. The
 * rows and shapes its statements take and give are in jobRows.ts.
 */
import { CompiledQuery, sql, type Kysely, type Transaction } from "kysely";
import { acceptStatement, finishText } from "./jobStatements.js";
import { serializeJobLastError } from "../domain/jobLastError.js";
import { queueRuleFields, queueRules, REPLAYABLE_JOB_STATES } from "../domain/jobLifecycle.js";
import { CLAIMABLE_JOB_STATES, type JobState } from "../domain/states.js";
import { runPrepared, withoutFsync, type Dialect } from "./database.js";
import type { AcceptClaim, AcceptedDelivery, AcceptResult, InsertResult, JobFinish, JobPayload, JobRow, NewJob } from "./jobRows.js";
import type { Database } from "./schema.js";
import { inList, notSucceeded } from "./stateSql.js";
import { keyInBatch } from "./batchSql.js";

type Db = Kysely<Database> | Transaction<Database>;

/** Largest number of rows one INSERT or outcome UPDATE carries (bounds statement size and SQL variety). */
const INSERT_CHUNK = 128;

/** Reads and writes of `jobs` and `job_payloads`. */
export class JobRepository {
  /**
   * @param db the store's handle
   * @param dialect its engine
   * @param workerDb the handle for claims and outcomes (see `Store.workerDb`) @defaultValue db
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly workerDb: Kysely<Database> = db,
  ) {}

  /**
   * Insert a group of jobs in ONE transaction (group commit) with one
   * multi-row INSERT for the jobs and one for their payloads. A job whose
   * (integration, idempotency key) is already stored — or appears earlier in
   * the same group — is not inserted again; the stored job's id is returned
   * with `duplicate: true`.
   * @returns one result per row, in order
   */
  async insertGroup(rows: NewJob[], db?: Transaction<Database>): Promise<InsertResult[]> {
    if (rows.length === 0) return [];
    const jobsOf = (chunk: NewJob[]) => chunk.map(({ headers: _h, body: _b, ...job }) => job);
    const write = async (trx: Db): Promise<InsertResult[]> => {
      const inserted = new Map<string, JobState>();
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        const chunk = rows.slice(i, i + INSERT_CHUNK);
        if (this.dialect === "postgres") {
          // One round trip: the jobs and the payloads of the ones inserted, in one statement (a data-modifying CTE).
          const payloads = sql.join(chunk.map((r) => sql`(cast(${r.id} as text), cast(${r.headers} as text), cast(${r.body} as text))`));
          const returned = await trx
            .with("j", (qc) =>
              qc
                .insertInto("jobs")
                .values(jobsOf(chunk))
                .onConflict((oc) => oc.columns(["integration_id", "idempotency_key"]).doNothing())
                .returning(["id", "state"]),
            )
            .with("p", (qc) => qc.insertInto("job_payloads").columns(["job_id", "headers", "body"]).expression(sql`select v.job_id, v.headers, v.body from (values ${payloads}) as v (job_id, headers, body) join j on j.id = v.job_id`))
            .selectFrom("j")
            .select(["j.id", "j.state"])
            .execute();
          for (const r of returned) inserted.set(r.id, r.state);
          continue;
        }
        const returned = await trx
          .insertInto("jobs")
          .values(jobsOf(chunk))
          .onConflict((oc) => oc.columns(["integration_id", "idempotency_key"]).doNothing())
          .returning(["id", "state"])
          .execute();
        for (const r of returned) inserted.set(r.id, r.state);
        const payloads = chunk.filter((r) => inserted.has(r.id)).map((r) => ({ job_id: r.id, headers: r.headers, body: r.body }));
        if (payloads.length > 0) await trx.insertInto("job_payloads").values(payloads).execute();
      }
      const out: InsertResult[] = [];
      for (const row of rows) {
        const state = inserted.get(row.id);
        if (state !== undefined) {
          out.push({ id: row.id, duplicate: false, state, receivedAt: row.received_at });
          continue;
        }
        const existing = await trx.selectFrom("jobs").select(["id", "state", "received_at"]).where("integration_id", "=", row.integration_id).where("idempotency_key", "=", row.idempotency_key).executeTakeFirstOrThrow();
        out.push({ id: existing.id, duplicate: true, state: existing.state, receivedAt: existing.received_at });
      }
      return out;
    };
    if (db) return write(db);
    // On PostgreSQL one statement is atomic on its own (no BEGIN/COMMIT round trips) unless a group needs several.
    return this.dialect === "postgres" && rows.length <= INSERT_CHUNK ? write(this.db) : this.db.transaction().execute(write);
  }

  /**
   * Store a group of webhook deliveries in ONE transaction (group commit),
   * each job's state decided IN the INSERT from its integration's status as
   * the statement sees it (`INSERT … SELECT … JOIN integrations`), so a status
   * change committed before the accept is always honoured — never a status
   * read earlier and possibly stale (issue 16 item 3). Payloads are written as
   * {@link insertGroup} writes them; on PostgreSQL jobs and payloads are one
   * statement. A delivery whose (integration, idempotency key) is already
   * stored — or appears earlier in the group — is a duplicate; one whose
   * integration no longer exists is not stored (`integrationMissing`).
   *
   * With `claim`, a job is written directly as claimed by that worker
   * (`running`, its lease, attempt 1: the `claimed` transition) when the claim
   * query would take it now — integration ENABLED, runnable there (a delivery
   * URL or a handler of `claim.handlerNames`), its target not cooling down —
   * and no job of its integration waits before it: none queued or faulted and
   * due, none running under another owner (this worker's own run in its
   * integration's lane, which the job joins at the end). The conditions are
   * read by the INSERT, so they hold for every job of one integration in the
   * group alike.
   * @returns one result per delivery, in order
   */
  async acceptGroup(deliveries: AcceptedDelivery[], claim?: AcceptClaim): Promise<AcceptResult[]> {
    if (deliveries.length === 0) return [];
    const pg = this.dialect === "postgres";
    const write = async (trx: Db): Promise<AcceptResult[]> => {
      const inserted = new Map<string, { state: JobState; seq: number }>();
      for (let i = 0; i < deliveries.length; i += INSERT_CHUNK) {
        const chunk = deliveries.slice(i, i + INSERT_CHUNK);
        const r = await trx.executeQuery<{ seq: number; id: string; state: JobState }>(acceptStatement(pg, chunk, claim));
        for (const row of r.rows) inserted.set(row.id, { state: row.state, seq: Number(row.seq) });
        // PostgreSQL wrote the payloads in the same statement.
        if (pg) continue;
        const payloads = chunk.filter((d) => inserted.has(d.job.id)).map(({ job: d }) => ({ job_id: d.id, headers: d.headers, body: d.body }));
        if (payloads.length > 0) await trx.insertInto("job_payloads").values(payloads).execute();
      }
      const out: AcceptResult[] = [];
      for (const { job: row } of deliveries) {
        const done = inserted.get(row.id);
        if (done !== undefined) {
          out.push({ id: row.id, duplicate: false, state: done.state, receivedAt: row.received_at, seq: done.seq });
          continue;
        }
        const existing =
          row.idempotency_key === null
            ? undefined
            : await trx.selectFrom("jobs").select(["id", "state", "received_at"]).where("integration_id", "=", row.integration_id).where("idempotency_key", "=", row.idempotency_key).executeTakeFirst();
        out.push(existing ? { id: existing.id, duplicate: true, state: existing.state, receivedAt: existing.received_at } : { id: row.id, integrationMissing: true });
      }
      return out;
    };
    // On PostgreSQL one statement is atomic on its own (no BEGIN/COMMIT round trips) unless a group needs several.
    return pg && deliveries.length <= INSERT_CHUNK ? write(this.db) : this.db.transaction().execute(write);
  }

  /**
   * Free an idempotency key whose window has passed: the job that holds it,
   * if received before `receivedBeforeMs`, keeps it suffixed with its own id
   * (`<key>:<jobId>`), so a new delivery can take it. A job received since
   * keeps it, so two callers racing to free one key free it once.
   * @param receivedBeforeMs ms since the epoch
   * @returns whether a job's key was freed
   */
  async retireIdempotencyKey(integrationId: string, key: string, receivedBeforeMs: number): Promise<boolean> {
    const r = await this.db
      .updateTable("jobs")
      .set({ idempotency_key: sql<string>`idempotency_key || ':' || id` })
      .where("integration_id", "=", integrationId)
      .where("idempotency_key", "=", key)
      .where("received_at", "<", receivedBeforeMs)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Run a write of the worker's own bookkeeping — claims and outcomes, never an accept — without waiting for the disk ({@link withoutFsync}): half of the fsyncs of a job's life go away. */
  private workerWrite<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    return withoutFsync({ db: this.db, workerDb: this.workerDb, dialect: this.dialect }, fn);
  }

  /** Payloads of jobs, by job id (jobs without one are absent). */
  async payloads(ids: string[]): Promise<Map<string, JobPayload>> {
    const out = new Map<string, JobPayload>();
    if (ids.length === 0) return out;
    const rows = await runPrepared(this.db, this.db.selectFrom("job_payloads").selectAll().where("job_id", "in", ids));
    for (const r of rows) out.set(r.job_id, { headers: r.headers, body: r.body });
    return out;
  }

  /** One job, or undefined. */
  async get(id: string): Promise<JobRow | undefined> {
    return this.db.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirst();
  }

  /** A page of jobs in arrival order. */
  async list(filter: { integrationId?: string; state?: JobState }, afterSeq: number | undefined, limit: number): Promise<JobRow[]> {
    let q = this.db.selectFrom("jobs").selectAll().orderBy("seq").limit(limit);
    if (filter.integrationId !== undefined) q = q.where("integration_id", "=", filter.integrationId);
    if (filter.state !== undefined) q = q.where("state", "=", filter.state);
    // By integration and an unsettled state: the jobs_integration_state index (see notSucceeded).
    if (filter.state !== undefined && filter.state !== "succeeded") q = q.where(notSucceeded());
    if (afterSeq !== undefined) q = q.where("seq", ">", afterSeq);
    return q.execute();
  }

  /**
   * Claim up to `limit` runnable jobs, earliest due first and in arrival order
   * among equals: exactly those `mayClaim` (domain/jobLifecycle.ts) allows —
   * queued or faulted, due, of an ENABLED integration (or a breaker probe),
   * whose target has no cooldown running — and that this process can run (a
   * delivery URL, or a handler it registered). Sets `running`, the lease and
   * `attempts + 1` (the `claimed` transition).
   */
  async claim(owner: string, nowMs: number, leaseMs: number, limit: number, handlerNames: string[]): Promise<JobRow[]> {
    const candidates = (db: Db) => {
      // An ordered walk of the jobs_queued partial index, each candidate checked against its integration: the
      // LIMIT stops the walk early (a sort of every queued job made a 100k replay O(n²)), and on PostgreSQL a plain
      // index scan marks the entries of jobs that left the queue as dead as it passes them.
      let q = db
        .selectFrom("jobs as j")
        .select("j.seq")
        // Literally the jobs_runnable index's predicate, so both engines walk it.
        .where(inList("j.state", CLAIMABLE_JOB_STATES))
        .where("j.run_at", "<=", nowMs)
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom("integrations as i")
              .select("i.id")
              .whereRef("i.id", "=", "j.integration_id")
              .where((ib) => ib.or([ib("i.status", "=", "ENABLED"), ib("j.probe", "=", 1)]))
              .where((ib) => ib.or([ib("i.delivery", "is not", null), ...(handlerNames.length ? [ib("i.name", "in", handlerNames)] : [])]))
              .where((ib) => ib.not(ib.exists(ib.selectFrom("breakers as b").select("b.target").whereRef("b.target", "=", "i.delivery_target").where("b.cooldown_until", ">", nowMs)))),
          ),
        )
        // Replayed jobs share one run_at: arrival order (seq) holds among them.
        .orderBy("j.run_at")
        .orderBy("j.seq")
        .limit(limit);
      if (this.dialect === "postgres") q = q.forUpdate("j").skipLocked();
      return q;
    };
    // One statement is one transaction on both engines: no BEGIN/COMMIT round trips.
    // Prepared on PostgreSQL: one text per process (its handler names), planned once per session.
    const rows = await this.workerWrite((db) =>
      runPrepared(
        db,
        db
          .updateTable("jobs")
          .set((eb) => ({ state: "running", lease_owner: owner, lease_until: nowMs + leaseMs, attempts: eb("attempts", "+", 1), updated_at: nowMs }))
          .where(keyInBatch(this.dialect, "seq", candidates(db)))
          .returningAll(),
      ),
    );
    return rows.sort((a, b) => Number(a.seq) - Number(b.seq));
  }

  /**
   * Record many jobs' ends (or next tries) in ONE statement (group commit of
   * outcomes), each only while its `owner` still holds the lease.
   * @returns per item, whether its lease was still held (false: it expired and the job was re-claimed)
   */
  async finishMany(items: JobFinish[]): Promise<boolean[]> {
    if (items.length === 0) return [];
    const held = new Set<string>();
    const pg = this.dialect === "postgres";
    await this.workerWrite(async (db) => {
      for (let i = 0; i < items.length; i += INSERT_CHUNK) {
        const chunk = items.slice(i, i + INSERT_CHUNK);
        const params: unknown[] = [];
        for (const f of chunk) params.push(f.id, f.owner, f.state, f.runAt, f.finishedAt, f.updatedAt, serializeJobLastError(f.lastError));
        const r = await db.executeQuery<{ id: string }>(CompiledQuery.raw(finishText(pg, chunk.length), params));
        for (const row of r.rows) held.add(row.id);
      }
    });
    return items.map((f) => held.has(f.id));
  }

  /** Extend a running job's lease while `owner` still holds it. @returns false when the lease was lost */
  async renewLease(id: string, owner: string, untilMs: number): Promise<boolean> {
    const r = await this.db.updateTable("jobs").set({ lease_until: untilMs }).where("id", "=", id).where("lease_owner", "=", owner).where("state", "=", "running").executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Re-queue jobs whose lease expired (a crashed worker). @returns how many */
  async sweepExpiredLeases(nowMs: number): Promise<number> {
    const r = await this.db
      .updateTable("jobs")
      .set({ state: "queued", lease_owner: null, lease_until: null, run_at: nowMs, updated_at: nowMs })
      .where("state", "=", "running")
      .where("lease_until", "<=", nowMs)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /**
   * Make the queue agree with integration statuses, set-based: one UPDATE per
   * rule of `queueRules` (domain/jobLifecycle.ts) — waiting jobs of
   * integrations that are not ENABLED are parked (DISABLED ones discarded when
   * `parkWhenDisabled` is false); parked jobs of ENABLED integrations are
   * queued again, in arrival order (replay). Breaker probes are left alone.
   * @returns jobs parked and jobs queued again
   */
  async syncWithIntegrations(db: Db, nowMs: number, parkWhenDisabled: boolean): Promise<{ parked: number; replayed: number }> {
    const moved = { parked: 0, replayed: 0, discarded: 0 };
    for (const rule of queueRules({ parkWhenDisabled })) {
      const f = queueRuleFields(rule.to, nowMs);
      const r = await db
        .updateTable("jobs")
        .set({
          state: rule.to,
          updated_at: nowMs,
          ...(f.runAtMs !== undefined ? { run_at: f.runAtMs } : {}),
          ...(f.probe !== undefined ? { probe: f.probe ? 1 : 0 } : {}),
          ...(f.finishedAtMs !== undefined ? { finished_at: f.finishedAtMs } : {}),
          ...(f.lastError !== undefined ? { last_error: serializeJobLastError(f.lastError) } : {}),
        })
        .where("state", "in", rule.from)
        .where(notSucceeded())
        .where("probe", "=", 0)
        .where("integration_id", "in", db.selectFrom("integrations").select("id").where("status", "in", rule.when))
        .executeTakeFirst();
      moved[rule.to === "queued" ? "replayed" : rule.to] += Number(r.numUpdatedRows);
    }
    await this.refreshStatistics(db, moved.parked + moved.replayed);
    return { parked: moved.parked, replayed: moved.replayed };
  }

  /**
   * Replay by hand: parked and dead jobs of one integration become queued
   * again (dead ones with their attempts reset), in arrival order, in batches.
   * @param onBatch progress callback with the running total
   * @returns how many were re-queued
   */
  async replay(integrationId: string, nowMs: number, batchSize: number, onBatch?: (done: number) => void): Promise<number> {
    let done = 0;
    for (;;) {
      // The batch in arrival order across the replayable states: each state's first `batchSize` jobs (an ordered
      // walk of jobs_integration_state per state — with `state in (…)` SQLite walked the integration's whole
      // history in jobs_integration instead), merged, the first `batchSize` of those.
      const firsts = REPLAYABLE_JOB_STATES.map((state, k) =>
        this.db
          .selectFrom((db) => db.selectFrom("jobs").select("seq").where("integration_id", "=", integrationId).where("state", "=", state).where(notSucceeded()).orderBy("seq").limit(batchSize).as(`s${k}`))
          .select("seq"),
      );
      const merged = firsts.slice(1).reduce((all, next) => all.unionAll(next), firsts[0]!);
      const seqs = this.db.selectFrom(merged.as("m")).select("seq").orderBy("seq").limit(batchSize);
      const r = await this.db
        .updateTable("jobs")
        .set({ state: "queued", attempts: 0, run_at: nowMs, probe: 0, updated_at: nowMs, finished_at: null })
        .where(keyInBatch(this.dialect, "seq", seqs))
        .executeTakeFirst();
      const n = Number(r.numUpdatedRows);
      done += n;
      onBatch?.(done);
      if (n < batchSize) {
        await this.refreshStatistics(this.db, done);
        return done;
      }
    }
  }

  /**
   * After a mass state change on PostgreSQL, refresh the planner statistics of
   * `jobs`: with stale ones every claim after a 100k re-queue sorted all queued
   * rows (220–350 ms a claim, 38 jobs/s) instead of walking the claim index
   * (0.5 ms). SQLite's planner needs no statistics for this.
   */
  private async refreshStatistics(db: Db, rowsChanged: number): Promise<void> {
    if (this.dialect === "postgres" && rowsChanged >= 1000) await this.analyze(db);
  }

  /**
   * Refresh PostgreSQL's planner statistics of the tables a claim reads. The
   * claim plan depends on them: with `integrations` never analyzed (a small
   * table autovacuum never gets to) the planner believed the integration
   * filter kept 73 of 21,000 queued jobs and sorted them all on every claim
   * (30 ms) instead of walking the queue index (0.3 ms). The worker calls it
   * when it starts; mass re-queues call it too. A no-op on SQLite.
   */
  async analyze(db: Db = this.db): Promise<void> {
    if (this.dialect === "postgres") await sql`analyze jobs, integrations, breakers`.execute(db);
  }

  /** Parked job counts by integration. */
  async parkedCounts(integrationIds: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (integrationIds.length === 0) return out;
    const rows = await this.db.selectFrom("jobs").select(["integration_id", (eb) => eb.fn.countAll<number>().as("n")]).where("state", "=", "parked").where(notSucceeded()).where("integration_id", "in", integrationIds).groupBy("integration_id").execute();
    for (const r of rows) out.set(r.integration_id, Number(r.n));
    return out;
  }

  /** Queue depth by state (for status and metrics). */
  async countByState(): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom("jobs").select(["state", (eb) => eb.fn.countAll<number>().as("n")]).groupBy("state").execute();
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  /** Mark the oldest parked job of one integration as a breaker probe (queued although the integration is in ERROR). @returns its id */
  async queueProbe(integrationId: string, nowMs: number): Promise<string | undefined> {
    const head = await this.db.selectFrom("jobs").select("seq").where("integration_id", "=", integrationId).where("state", "=", "parked").where(notSucceeded()).orderBy("seq").limit(1).executeTakeFirst();
    if (!head) return undefined;
    const r = await this.db.updateTable("jobs").set({ state: "queued", probe: 1, run_at: nowMs, updated_at: nowMs }).where("seq", "=", head.seq).where("state", "=", "parked").returning("id").executeTakeFirst();
    return r?.id;
  }

}
