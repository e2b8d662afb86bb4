/**
 * Opens the store named by a database URL: `sqlite:<path>` (embedded default,
 * one file in WAL mode) or `postgres://…` (shared by any number of instances).
 * One kysely query layer serves both.
 */
import { hash } from "node:crypto";
import { dirname, resolve } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, PostgresDialect, sql, type Compilable, type Transaction } from "kysely";
import { cachingDatabase, FifoSqliteDialect } from "./fifoSqlite.js";
import pg from "pg";
import type { Database } from "./schema.js";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import { ensurePrivateDir, ensurePrivateFile } from "./files.js";
import { StoreErrorDialect } from "./storeErrors.js";

/** Which SQL engine is behind a {@link Store}. */
export type Dialect = "sqlite" | "postgres";

/** An open database handle. */
export interface Store {
  db: Kysely<Database>;
  /**
   * The handle for the job worker's own bookkeeping (claims, outcomes). On
   * PostgreSQL a small second pool whose sessions commit asynchronously
   * (`synchronous_commit=off`: a server crash can roll back the last claims
   * and outcomes, which makes those jobs run again — never loses one) and plan
   * claims as ordered index scans (`enable_bitmapscan=off`: a bitmap scan
   * re-reads every dead entry of the queue index on each claim, 5 ms at 5k
   * dead entries; an index scan marks them dead once) that never read the
   * whole table (`enable_seqscan=off`: with statistics taken while the queue
   * was empty — the worker analyzes when it starts — the claim found its
   * batch's rows by a sequential scan of every job, twice as slow at 20,000
   * jobs and growing with the retained history; see batchSql.ts). On SQLite
   * the same handle as `db`.
   */
  workerDb: Kysely<Database>;
  dialect: Dialect;
  /** PostgreSQL schema the tables live in (the `schema` URL parameter, else `current_schema()`); undefined on SQLite. */
  schema?: string;
  /** Human-readable location with any password removed (for logs and `doctor`). */
  location: string;
  /**
   * SQLite only: run SQL to completion on the raw connection, bypassing
   * kysely (which steps a statement that returns no rows once: `PRAGMA
   * incremental_vacuum(n)` would free one page, not n). Call it while holding
   * `db.connection()` so no kysely transaction is open around it.
   */
  sqliteExec?(sql: string): void;
  /** Close every connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * A database URL grantkeeper cannot use: a {@link GrantkeeperError} with code
 * `invalid_database_url`, kind `misconfigured`. The message never contains a password.
 */
export class DatabaseUrlError extends GrantkeeperError {
  /** @param message what is wrong with the URL */
  constructor(message: string) {
    super(ErrorCode.invalidDatabaseUrl, message);
    this.name = "DatabaseUrlError";
  }
}

const INT8_OID = 20;

/**
 * Run writes that a crash may roll back harmlessly — because they are redone
 * (the job worker's claims and outcomes: the job runs again) or idempotent
 * (retention's deletes: the next sweep deletes the same rows) — without
 * waiting for the disk. Never for an accept or a token write.
 *
 * SQLite: on the held connection with `synchronous=NORMAL`, FULL again after.
 * In WAL mode such a commit survives a crash of the process (kill -9); only an
 * OS crash or power loss can roll the last ones back, and the next FULL commit
 * makes every earlier one durable (the WAL is sequential). Nothing else runs
 * relaxed meanwhile: the connection is held. PostgreSQL: on `workerDb`, whose
 * sessions commit with `synchronous_commit=off` (same guarantees).
 *
 * @param fn the writes, on the handle to use for them
 * @returns what `fn` returns
 * @throws what `fn` throws (SQLite: after restoring FULL)
 */
export async function withoutFsync<T>(store: Pick<Store, "db" | "workerDb" | "dialect">, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  if (store.dialect !== "sqlite") return fn(store.workerDb);
  return store.db.connection().execute(async (conn) => {
    await sql`pragma synchronous = normal`.execute(conn);
    try {
      return await fn(conn);
    } finally {
      await sql`pragma synchronous = full`.execute(conn);
    }
  });
}

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /**
   * Told of a PostgreSQL session that failed outside any query (a restart
   * or failover cuts idle and checked-out sessions alike). Without a
   * listener such an error would end the process; with it the pool drops
   * that session and opens a fresh one at the next query.
   * @defaultValue ignore
   */
  onConnectionError?: (e: Error) => void;
}

/**
 * Open the store.
 *
 * A SQLite file (and its directory) that does not exist yet is created
 * private: mode 0600 (0700), whatever the umask.
 *
 * SQLite runs with `auto_vacuum=INCREMENTAL` (new files; docs/operations.md
 * "Retention"), `journal_mode=WAL`, `synchronous=FULL` (a rotated refresh
 * token that is lost on power failure is a dead grant, so durability wins over
 * the ~6× faster NORMAL), `busy_timeout=5000` and foreign keys on.
 *
 * PostgreSQL URLs accept an extra `schema` query parameter: the schema is
 * created if missing and becomes the `search_path` (one schema per test run);
 * and `preparedStatements=false` sends every statement unnamed (see {@link PREPARED}).
 *
 * Every query error that means "the store is unreachable" (PostgreSQL down
 * or restarting, SQLite on a full disk) is thrown as a `store_unavailable`
 * {@link GrantkeeperError} (kind `unavailable`, `retryAfterMs`): see
 * `storeErrors.ts`. Every pg pool and client has an `'error'` listener, so a
 * failover never ends the process (issue 12).
 *
 * @param url `sqlite:./data/grantkeeper.db`, `sqlite::memory:` or `postgres://user@host:5432/db?schema=x`
 * @throws {@link DatabaseUrlError} for any other scheme, a bad `schema`, or `preparedStatements` other than `true`/`false`
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const onConnectionError = options.onConnectionError ?? (() => undefined);
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (path === "") throw new DatabaseUrlError("sqlite URL needs a path, e.g. sqlite:./data/grantkeeper.db");
    if (path !== ":memory:") {
      // 0700 directory, 0600 file; SQLite gives the -wal and -shm files the database file's mode.
      ensurePrivateDir(dirname(resolve(path)));
      ensurePrivateFile(resolve(path));
    }
    const database = new SQLite(path);
    // Takes effect on a new file only (before its first table): freed pages can then go back to the file system
    // after a retention sweep (PRAGMA incremental_vacuum). An older file keeps NONE until `grantkeeper prune --vacuum`.
    database.pragma("auto_vacuum = INCREMENTAL");
    database.pragma("journal_mode = WAL");
    database.pragma("synchronous = FULL");
    database.pragma("busy_timeout = 5000");
    database.pragma("foreign_keys = ON");
    const db = new Kysely<Database>({ dialect: new StoreErrorDialect(new FifoSqliteDialect({ database: cachingDatabase(database) }), false) });
    return { db, workerDb: db, dialect: "sqlite", location: `sqlite:${path}`, sqliteExec: (text) => void database.exec(text), close: once(() => db.destroy()) };
  }
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get("schema");
    parsed.searchParams.delete("schema");
    const prepared = parsed.searchParams.get("preparedStatements");
    parsed.searchParams.delete("preparedStatements");
    if (prepared !== null && prepared !== "true" && prepared !== "false") throw new DatabaseUrlError(`preparedStatements must be true or false, got ${JSON.stringify(prepared)}`);
    if (schema !== null && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new DatabaseUrlError(`schema must match [a-z_][a-z0-9_]*, got ${JSON.stringify(schema)}`);
    }
    const poolConfig: pg.PoolConfig = {
      connectionString: parsed.toString(),
      max: 10,
      // bigint columns hold milliseconds since the epoch: well inside 2^53, so a number is exact.
      types: { getTypeParser: (oid: number, format?: any) => (oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) } as any,
    };
    if (schema !== null) {
      const bootstrap = new pg.Client({ connectionString: parsed.toString() });
      bootstrap.on("error", onConnectionError);
      await bootstrap.connect();
      try {
        await bootstrap.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      } finally {
        await bootstrap.end();
      }
      poolConfig.options = `-c search_path=${schema}`;
    }
    const workerOptions = [poolConfig.options, "-c synchronous_commit=off -c enable_bitmapscan=off -c enable_seqscan=off"].filter(Boolean).join(" ");
    const prepare = prepared !== "false";
    const db = new Kysely<Database>({ dialect: new StoreErrorDialect(new PostgresDialect({ pool: listenedPool(poolConfig, onConnectionError, prepare) }), true) });
    const workerDb = new Kysely<Database>({ dialect: new StoreErrorDialect(new PostgresDialect({ pool: listenedPool({ ...poolConfig, max: 4, options: workerOptions }, onConnectionError, prepare) }), true) });
    let current = schema ?? undefined;
    try {
      current ??= (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s;
    } catch (e) {
      await Promise.all([db.destroy(), workerDb.destroy()]);
      throw e;
    }
    parsed.password = "";
    return {
      db,
      workerDb,
      dialect: "postgres",
      ...(current ? { schema: current } : {}),
      location: parsed.toString() + (schema ? ` (schema ${schema})` : ""),
      close: once(async () => {
        await Promise.all([db.destroy(), workerDb.destroy()]);
      }),
    };
  }
  throw new DatabaseUrlError(`unsupported database URL scheme in ${JSON.stringify(url.split(":")[0])}: use sqlite:<path> or postgres://…`);
}

/**
 * A pg pool where no session can emit an unhandled `'error'`: the pool's own
 * listener covers idle sessions, and each session gets one for the time it is
 * checked out (pg-pool removes its idle listener then; a server shutdown
 * between two statements of a transaction would otherwise end the process).
 */
function listenedPool(config: pg.PoolConfig, onConnectionError: (e: Error) => void, prepare: boolean): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on("error", onConnectionError);
  pool.on("connect", (client) => {
    client.on("error", onConnectionError);
    if (prepare) preparing(client);
  });
  return pool;
}

/**
 * Prefix of a statement's text that asks the PostgreSQL store to run it as a named prepared statement (see
 * {@link preparing}). For hot statements whose text takes few shapes: each distinct text stays prepared on
 * every session of the pool for the session's life.
 */
export const PREPARED = "/* gk:prepared */ ";

/**
 * Make a session run statements marked {@link PREPARED} as named prepared statements (extended protocol
 * `Parse` once per session, then only `Bind`/`Execute`; PostgreSQL switches to a cached generic plan after five
 * runs). Measured on an accept group of 16 jobs: parse and plan were 1.3 ms of a 3.3 ms round trip, and
 * accepts/s with 16 concurrent callers rose from ~3,800 to 6,800–7,700. The name is a digest of the text, so the
 * same text on another session (or after a reconnect) prepares itself again. Off with `preparedStatements=false`
 * in the database URL, for a PgBouncer in transaction mode older than 1.21 (which cannot route prepared
 * statements).
 */
function preparing(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as { query: unknown }).query = (text: unknown, ...rest: unknown[]) => {
    if (typeof text !== "string" || !text.startsWith(PREPARED) || !Array.isArray(rest[0])) return query(text, ...rest);
    let name = preparedNames.get(text);
    if (name === undefined) preparedNames.set(text, (name = `gk_${hash("sha256", text, "hex").slice(0, 32)}`));
    return query({ name, text, values: rest[0] }, ...rest.slice(1));
  };
}

/** Statement name by text, for every session of every pool: a digest of the text, computed once per process. */
const preparedNames = new Map<string, string>();

/**
 * Run a query builder's statement marked {@link PREPARED}: a named prepared statement on PostgreSQL (SQLite
 * reads the marker as a comment). For the worker's statements that run on every batch — the claim and the
 * batch reads (an `in` list of each length is one text): parse and plan were paid on each of them.
 * @returns the rows
 */
export async function runPrepared<R>(db: Kysely<Database> | Transaction<Database>, query: Compilable<R>): Promise<R[]> {
  const compiled = query.compile();
  return (await db.executeQuery<R>({ ...compiled, sql: PREPARED + compiled.sql })).rows;
}

/** True when the store answers a trivial query. Never throws. */
export async function isReachable(store: Store): Promise<boolean> {
  try {
    await sql`select 1`.execute(store.db);
    return true;
  } catch {
    return false;
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}
