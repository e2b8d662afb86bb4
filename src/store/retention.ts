/**
 * SQL of data retention (issue 13, api-contract.md v1.1 "Data lifecycle"):
 * bounded batch deletes of finished rows, the read behind the "oldest
 * finished row" gauge, the PostgreSQL sweep lock and SQLite's space reclaim.
 * Which rows and which windows is src/domain/retention.ts; the loop that runs
 * the batches is src/lifecycle/retention.ts.
 *
 * Every delete is `DELETE … WHERE key IN (SELECT key … ORDER BY time LIMIT n)`
 * re-checking the state and time in the outer statement, one short
 * transaction per batch, so a sweep never holds a lock for long and a row
 * that changed between the inner select and the delete (a dead job replayed
 * by hand) is left alone. Indexes: migration `0011_retention`.
 *
 * The deletes commit without waiting for the disk (`withoutFsync`): they are
 * idempotent, so one that an OS crash rolls back is simply done again by the
 * next sweep, and an arriving webhook's own (durable) commit no longer queues
 * behind the sweep's fsyncs.
 */
import { sql, type Kysely } from "kysely";
import type { JobState } from "../domain/states.js";
import { FINISHED_JOB_STATES } from "../domain/states.js";
import { withoutFsync, type Dialect, type Store } from "./database.js";
import type { Database } from "./schema.js";
import { inList } from "./stateSql.js";
import { keyInBatch } from "./batchSql.js";

/**
 * The predicate of the `jobs_finished` partial index, spelled as the index spells it: SQLite uses a partial
 * index only when the query's WHERE contains its predicate as written, and PostgreSQL cannot prove it from a
 * bound parameter. The state itself is a literal too (a closed set, never input).
 */
const FINISHED = inList("state", FINISHED_JOB_STATES);

/**
 * First key of the PostgreSQL advisory lock a sweep holds (`pg_try_advisory_lock(int4, int4)`; "gkrt"
 * in ASCII). The second key is `hashtext(current_schema())`, so grantkeeper stores in different schemas
 * of one database sweep independently.
 */
export const SWEEP_LOCK_CLASS = 0x676b7274;

/** What one job batch removed. */
export interface JobBatchResult {
  jobs: number;
  payloads: number;
}

/** Outcome of {@link RetentionRepository.withSweepLock}. */
export type LockedResult<T> = { acquired: true; value: T } | { acquired: false };

/** Time of the oldest row a sweep would delete once its window passes, per table; milliseconds since the epoch, null for none. */
export interface OldestFinished {
  /** Oldest `finished_at` of a finished job (succeeded, failed, dead, discarded). */
  jobs: number | null;
  /** Oldest alert's `at`. */
  alerts: number | null;
  /** Oldest connection event's `at`. */
  connection_events: number | null;
  /** Oldest `expires_at` of an expired OAuth state (at or before `nowMs`). */
  oauth_states: number | null;
  /** Oldest `expires_at` of an expired connect session (before `nowMs`). */
  connect_sessions: number | null;
}

/** Retention's reads and deletes. Each method is one short statement or transaction. */
export class RetentionRepository {
  private readonly db: Kysely<Database>;
  /** Which engine the rows are on (the sweep sizes its batches per engine). */
  readonly dialect: Dialect;
  private readonly sqliteExec: ((sql: string) => void) | undefined;
  private readonly store: Pick<Store, "db" | "workerDb" | "dialect">;

  /** @param store the open store (its `db` handle; the lock pins one of its connections; deletes run on the relaxed-durability handle) */
  constructor(store: Pick<Store, "db" | "workerDb" | "dialect" | "sqliteExec">) {
    this.db = store.db;
    this.dialect = store.dialect;
    this.sqliteExec = store.sqliteExec;
    this.store = { db: store.db, workerDb: store.workerDb, dialect: store.dialect };
  }

  /**
   * Delete up to `limit` jobs in `state` finished before `beforeMs`, oldest
   * first, and their payloads, in one transaction.
   * @param state a finished state (`FINISHED_JOB_STATES`)
   * @param beforeMs exclusive cutoff on `finished_at`, ms since the epoch
   * @param limit batch size (rows)
   * @throws RangeError for a state that is not finished (queued, running, faulted and parked jobs are never deleted)
   */
  async deleteJobs(state: JobState, beforeMs: number, limit: number): Promise<JobBatchResult> {
    if (!(FINISHED_JOB_STATES as readonly string[]).includes(state)) throw new RangeError(`retention never deletes ${state} jobs`);
    return withoutFsync(this.store, (db) => db.transaction().execute(async (trx) => {
      const ids = await trx
        .deleteFrom("jobs")
        .where(keyInBatch(this.dialect, "id", trx.selectFrom("jobs").select("id").where(FINISHED).where(inList("state", [state])).where("finished_at", "<", beforeMs).orderBy("finished_at").limit(limit)))
        .where(inList("state", [state]))
        .where("finished_at", "<", beforeMs)
        .returning("id")
        .execute();
      if (ids.length === 0) return { jobs: 0, payloads: 0 };
      const p = await trx.deleteFrom("job_payloads").where("job_id", "in", ids.map((r) => r.id)).executeTakeFirst();
      return { jobs: ids.length, payloads: Number(p.numDeletedRows) };
    }));
  }

  /**
   * Delete up to `limit` alerts or connection events whose `at` is before `beforeMs`, oldest first.
   * @returns rows deleted
   */
  deleteByTime(table: "alerts" | "connection_events", beforeMs: number, limit: number): Promise<number> {
    return this.deleteOldest(table, "id", "at", "<", beforeMs, limit);
  }

  /**
   * Delete up to `limit` OAuth states that expired at or before `expiredAtMs` (used or not: the flow's
   * callback refuses them either way).
   * @returns rows deleted
   */
  deleteOAuthStates(expiredAtMs: number, limit: number): Promise<number> {
    return this.deleteOldest("oauth_states", "state_hash", "expires_at", "<=", expiredAtMs, limit);
  }

  /**
   * Delete up to `limit` connect sessions whose `expires_at` is before `beforeMs` (completed or not).
   * @returns rows deleted
   */
  deleteConnectSessions(beforeMs: number, limit: number): Promise<number> {
    return this.deleteOldest("connect_sessions", "id", "expires_at", "<", beforeMs, limit);
  }

  /** One batch: the `limit` rows of `table` with the oldest `column` `op` `cutoff`, deleted by `key` (re-checked in the outer statement). */
  private async deleteOldest(table: "alerts" | "connection_events" | "oauth_states" | "connect_sessions", key: string, column: string, op: "<" | "<=", cutoff: number, limit: number): Promise<number> {
    const r = await withoutFsync(this.store, (db) => {
      const batch = sql`(select ${sql.ref(key)} from ${sql.table(table)} where ${sql.ref(column)} ${sql.raw(op)} ${cutoff} order by ${sql.ref(column)} limit ${limit})`;
      return sql`delete from ${sql.table(table)} where ${keyInBatch(this.dialect, key, batch)} and ${sql.ref(column)} ${sql.raw(op)} ${cutoff}`.execute(db);
    });
    return Number(r.numAffectedRows ?? 0);
  }

  /**
   * The oldest row per table that retention will delete once its window
   * passes: one index probe each (`ORDER BY … LIMIT 1`), cheap at any table size.
   * @param nowMs now, ms since the epoch (what "expired" means for states and sessions)
   */
  async oldestFinished(nowMs: number): Promise<OldestFinished> {
    const jobMins = await Promise.all(
      FINISHED_JOB_STATES.map(async (state) => (await this.db.selectFrom("jobs").select("finished_at").where(FINISHED).where(inList("state", [state])).where("finished_at", "is not", null).orderBy("finished_at").limit(1).executeTakeFirst())?.finished_at ?? null),
    );
    const first = async (q: Promise<{ t: number } | undefined>) => (await q)?.t ?? null;
    const [alerts, events, states, sessions] = await Promise.all([
      first(this.db.selectFrom("alerts").select("at as t").orderBy("at").limit(1).executeTakeFirst()),
      first(this.db.selectFrom("connection_events").select("at as t").orderBy("at").limit(1).executeTakeFirst()),
      first(this.db.selectFrom("oauth_states").select("expires_at as t").where("expires_at", "<=", nowMs).orderBy("expires_at").limit(1).executeTakeFirst()),
      first(this.db.selectFrom("connect_sessions").select("expires_at as t").where("expires_at", "<", nowMs).orderBy("expires_at").limit(1).executeTakeFirst()),
    ]);
    const jobs = jobMins.filter((m): m is number => m !== null).map(Number);
    return { jobs: jobs.length ? Math.min(...jobs) : null, alerts: num(alerts), connection_events: num(events), oauth_states: num(states), connect_sessions: num(sessions) };
  }

  /**
   * Run `fn` only if no other sweep of this store runs. On PostgreSQL: a
   * session advisory lock (`pg_try_advisory_lock`, never waits) on one pinned
   * connection, released when `fn` settles — or by the server if this
   * process dies. On SQLite the file has one writer at a time anyway and the
   * deletes are idempotent, so `fn` always runs.
   * @returns `{acquired: false}` when another instance holds the lock
   */
  async withSweepLock<T>(fn: () => Promise<T>): Promise<LockedResult<T>> {
    if (this.dialect !== "postgres") return { acquired: true, value: await fn() };
    return this.db.connection().execute(async (conn) => {
      const got = await sql<{ ok: boolean }>`select pg_try_advisory_lock(${sql.lit(SWEEP_LOCK_CLASS)}, hashtext(current_schema())) as ok`.execute(conn);
      if (got.rows[0]?.ok !== true) return { acquired: false } as const;
      try {
        return { acquired: true, value: await fn() } as const;
      } finally {
        await sql`select pg_advisory_unlock(${sql.lit(SWEEP_LOCK_CLASS)}, hashtext(current_schema()))`.execute(conn);
      }
    });
  }

  /**
   * SQLite only: give up to `maxPages` free pages back to the file system
   * (`PRAGMA incremental_vacuum`) when the file is in `auto_vacuum =
   * INCREMENTAL` mode. A file in the old `NONE` mode reuses its free pages
   * for new rows but does not shrink (see {@link RetentionRepository.vacuumIntoIncremental}).
   * @returns pages released (0 on PostgreSQL, whose autovacuum reuses space by itself, or in `NONE` mode)
   */
  async reclaimSpace(maxPages: number): Promise<number> {
    if (this.dialect !== "sqlite" || (await this.autoVacuumMode()) !== 2) return 0;
    const before = await this.freePages();
    if (before === 0) return 0;
    const exec = this.sqliteExec;
    if (!exec) return 0;
    // Held connection: no kysely transaction is open around the raw call, and none starts during it.
    await this.db.connection().execute(async () => exec(`pragma incremental_vacuum(${Math.max(1, Math.floor(maxPages))})`));
    return before - (await this.freePages());
  }

  /**
   * SQLite only: copy the write-ahead log's committed pages back into the
   * database file now (`PRAGMA wal_checkpoint(PASSIVE)`: never waits for a
   * reader). A sweep calls it after each batch so the pages its deletes wrote
   * are checkpointed in its own time slot; otherwise the next commit to pass
   * the 1,000-page auto-checkpoint mark — most often an arriving webhook's
   * accept — pays for them. Nothing on PostgreSQL.
   */
  async checkpoint(): Promise<void> {
    const exec = this.sqliteExec;
    if (this.dialect !== "sqlite" || !exec) return;
    await this.db.connection().execute(async () => exec("pragma wal_checkpoint(passive)"));
  }

  /** SQLite pages on the free list (0 on PostgreSQL). */
  async freePages(): Promise<number> {
    if (this.dialect !== "sqlite") return 0;
    return Number((await sql<{ freelist_count: number }>`pragma freelist_count`.execute(this.db)).rows[0]?.freelist_count ?? 0);
  }

  /** SQLite `auto_vacuum` mode: 0 none, 1 full, 2 incremental (undefined on PostgreSQL). */
  async autoVacuumMode(): Promise<number | undefined> {
    if (this.dialect !== "sqlite") return undefined;
    return Number((await sql<{ auto_vacuum: number }>`pragma auto_vacuum`.execute(this.db)).rows[0]?.auto_vacuum ?? 0);
  }

  /**
   * SQLite only, once per file made before `auto_vacuum = INCREMENTAL`
   * became the default: switch the file to it with a full `VACUUM` (rewrites
   * the whole file under an exclusive lock and needs as much free disk as
   * the file's size: run it in a quiet hour, `grantkeeper prune --vacuum`).
   * @returns the mode after (2 on success); undefined on PostgreSQL, where it does nothing
   */
  async vacuumIntoIncremental(): Promise<number | undefined> {
    if (this.dialect !== "sqlite") return undefined;
    await sql`pragma auto_vacuum = incremental`.execute(this.db);
    await sql`vacuum`.execute(this.db);
    return this.autoVacuumMode();
  }
}

function num(v: number | null): number | null {
  return v === null ? null : Number(v);
}
