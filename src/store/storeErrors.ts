/**
 * "The database is unreachable" as a domain error. A PostgreSQL failover
 * (`pg_ctl stop -m fast`: SQLSTATE 57P01 on every session, then refused
 * connections) or a full disk under SQLite (`SQLITE_FULL`) is nothing wrong
 * with the request: callers get {@link ErrorCode.storeUnavailable} (kind
 * `unavailable`, HTTP 503 with `Retry-After`) and may retry; loops log and
 * back off. Every other store error passes through unchanged (a constraint
 * violation is a bug or a conflict, not an outage).
 *
 * The translation happens once, in a kysely driver wrapper
 * ({@link StoreErrorDialect}), so no repository or service has to know the
 * drivers' error shapes. Seed incident: issue 12 (every instance of a
 * deployment died on a database failover).
 */
import type { DatabaseConnection, Dialect, Driver, Kysely, QueryCompiler, TransactionSettings } from "kysely";
import pg from "pg";
import { ErrorCode, GrantkeeperError, isGrantkeeperError } from "../domain/errors.js";

/**
 * How long a caller should wait before retrying after the store was
 * unreachable, in milliseconds: the `Retry-After` of a `store_unavailable`
 * answer. A PostgreSQL restart takes a few seconds. @defaultValue 5 000
 */
export const STORE_RETRY_AFTER_MS = 5_000;

/**
 * SQLSTATEs (PostgreSQL Appendix A) that mean the server cannot serve us now:
 * class 08 connection exception (except 08P01, a protocol violation, which is
 * a bug), 57P01–57P05 operator intervention (admin/crash shutdown, cannot
 * connect now, idle session timeout…), class 53 insufficient resources (disk
 * full, out of memory, too many connections), class 58 system errors (I/O).
 */
function isUnavailableSqlState(code: string): boolean {
  if (code === "08P01") return false;
  return code.startsWith("08") || code.startsWith("53") || code.startsWith("58") || /^57P0[1-5]$/.test(code);
}

/** better-sqlite3 result codes meaning the file cannot be written or read now (full disk, I/O error, locked past busy_timeout). */
const SQLITE_UNAVAILABLE = /^SQLITE_(FULL|IOERR|CANTOPEN|BUSY|NOMEM|PROTOCOL)(_|$)/;

/** Node socket errors of a connection that cannot be made or was cut. */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ENOSPC"]);

/**
 * True when `e`, thrown by the store's driver, means the store is
 * unreachable or cannot take writes now (rather than that the statement is
 * wrong). Decided on error codes and classes, never on message text — except
 * that every error the `pg` client raises *itself* (not a server
 * `DatabaseError`: "Connection terminated unexpectedly", "Client has
 * encountered a connection error", connection timeouts) is a connection
 * failure by construction.
 * @param fromPg the error came out of the `pg` driver (not better-sqlite3)
 */
export function isStoreUnreachable(e: unknown, fromPg: boolean): boolean {
  if (typeof e !== "object" || e === null || isGrantkeeperError(e)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && SOCKET_CODES.has(code)) return true;
  if (e instanceof pg.DatabaseError) return typeof code === "string" && isUnavailableSqlState(code);
  if (typeof code === "string" && SQLITE_UNAVAILABLE.test(code)) return true;
  // pg's own errors (no SQLSTATE) are about the connection, never about the SQL.
  return fromPg && e instanceof Error && code === undefined && !(e instanceof TypeError) && !(e instanceof RangeError);
}

/**
 * The domain error for an unreachable store: code `store_unavailable`, kind
 * `unavailable`, `retryAfterMs` = {@link STORE_RETRY_AFTER_MS}. The driver's
 * error is kept as the non-enumerable `cause`; the message names only its
 * code (a driver message may carry a host name, never a password).
 */
export function storeUnavailable(cause: unknown): GrantkeeperError {
  const code = (cause as { code?: unknown }).code;
  return new GrantkeeperError(ErrorCode.storeUnavailable, `the store is unavailable${typeof code === "string" ? ` (${code})` : ""}; retry later`, { retryAfterMs: STORE_RETRY_AFTER_MS, cause });
}

/** `e` as {@link storeUnavailable} when {@link isStoreUnreachable}, else `e` unchanged. */
function translate(e: unknown, fromPg: boolean): unknown {
  return isStoreUnreachable(e, fromPg) ? storeUnavailable(e) : e;
}

/** Call `fn`; rethrow its error translated. */
async function translated<T>(fromPg: boolean, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw translate(e, fromPg);
  }
}

/** A connection whose query errors are translated; keeps the driver's own connection for the driver. */
class TranslatingConnection implements DatabaseConnection {
  /** Set once a statement on this connection failed because the store is unreachable. */
  broken = false;

  constructor(
    readonly inner: DatabaseConnection,
    private readonly fromPg: boolean,
  ) {}

  async executeQuery<R>(compiledQuery: Parameters<DatabaseConnection["executeQuery"]>[0]) {
    try {
      return await this.inner.executeQuery<R>(compiledQuery);
    } catch (e) {
      const t = translate(e, this.fromPg);
      if (t !== e) this.broken = true;
      throw t;
    }
  }

  streamQuery<R>(compiledQuery: Parameters<DatabaseConnection["streamQuery"]>[0], chunkSize?: number) {
    return this.inner.streamQuery<R>(compiledQuery, chunkSize);
  }
}

const innerOf = (c: DatabaseConnection) => (c instanceof TranslatingConnection ? c.inner : c);

/** A driver whose errors meaning "unreachable" become {@link storeUnavailable}. */
class TranslatingDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly fromPg: boolean,
  ) {}

  init(): Promise<void> {
    return translated(this.fromPg, () => this.inner.init());
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new TranslatingConnection(await translated(this.fromPg, () => this.inner.acquireConnection()), this.fromPg);
  }

  beginTransaction(c: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.on(c, () => this.inner.beginTransaction(innerOf(c), settings));
  }

  commitTransaction(c: DatabaseConnection): Promise<void> {
    // SQLITE_FULL typically surfaces here, at COMMIT, when the WAL cannot grow.
    return this.on(c, () => this.inner.commitTransaction(innerOf(c)));
  }

  /** Run a statement of `c`'s, translating its error and marking `c` broken when the store is unreachable. */
  private async on(c: DatabaseConnection, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      const t = translate(e, this.fromPg);
      if (t !== e && c instanceof TranslatingConnection) c.broken = true;
      throw t;
    }
  }

  async rollbackTransaction(c: DatabaseConnection): Promise<void> {
    try {
      await this.inner.rollbackTransaction(innerOf(c));
    } catch (e) {
      // kysely throws a failed rollback instead of the error that caused it. After an outage the rollback
      // fails too (SQLite already rolled back on SQLITE_FULL; a cut pg session is gone): nothing was
      // committed, so the outage is the error worth reporting.
      if (c instanceof TranslatingConnection && c.broken) throw storeUnavailable(e);
      throw translate(e, this.fromPg);
    }
  }

  savepoint(c: DatabaseConnection, name: string, compile: QueryCompiler["compileQuery"]): Promise<void> {
    return this.on(c, () => this.inner.savepoint!(innerOf(c), name, compile));
  }

  rollbackToSavepoint(c: DatabaseConnection, name: string, compile: QueryCompiler["compileQuery"]): Promise<void> {
    return translated(this.fromPg, () => this.inner.rollbackToSavepoint!(innerOf(c), name, compile));
  }

  releaseSavepoint(c: DatabaseConnection, name: string, compile: QueryCompiler["compileQuery"]): Promise<void> {
    return this.on(c, () => this.inner.releaseSavepoint!(innerOf(c), name, compile));
  }

  releaseConnection(c: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(innerOf(c));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/**
 * A kysely dialect whose driver turns "store unreachable" errors into
 * {@link storeUnavailable} (see {@link isStoreUnreachable}); everything else
 * is the wrapped dialect's.
 * @param inner the dialect to wrap (PostgreSQL or grantkeeper's SQLite one)
 * @param fromPg true for the `pg` driver
 */
export class StoreErrorDialect implements Dialect {
  constructor(
    private readonly inner: Dialect,
    private readonly fromPg: boolean,
  ) {}

  createDriver(): Driver {
    return new TranslatingDriver(this.inner.createDriver(), this.fromPg);
  }

  createQueryCompiler(): QueryCompiler {
    return this.inner.createQueryCompiler();
  }

  createAdapter() {
    return this.inner.createAdapter();
  }

  createIntrospector(db: Kysely<any>) {
    return this.inner.createIntrospector(db);
  }
}
