/**
 * Two fixes to kysely's SQLite driver, both measured (docs/benchmarks.md,
 * docs/architecture.md "Throughput"):
 *
 * - Its connection mutex wakes every waiter on each release, so N concurrent
 *   queries cost O(N²) — 10k concurrent reads took 16 s instead of 1.4 s one
 *   after another. {@link FifoSqliteDriver} hands the connection to waiters in
 *   FIFO order instead, one wake-up per release. Transactions stay exclusive:
 *   the connection is held from acquire to release, as before.
 * - It prepares every statement anew (better-sqlite3's `prepare` parses and
 *   plans the SQL each time: 1.4 s of prepare vs 1.6 s of execution in a
 *   5k-job profile). {@link cachingDatabase} keeps prepared statements by SQL
 *   text in a bounded least-recently-used map.
 */
import { SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type SqliteDatabase, type SqliteDialectConfig, type SqliteStatement } from "kysely";

/** A SqliteDriver whose connection queue is first-in, first-out. */
export class FifoSqliteDriver extends SqliteDriver {
  private connection: DatabaseConnection | undefined;
  private busy = false;
  private readonly waiters: Array<() => void> = [];

  override async acquireConnection(): Promise<DatabaseConnection> {
    if (this.busy) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.busy = true;
    // The base class's own mutex is taken once, here, and never released: every acquisition goes through this queue.
    this.connection ??= await super.acquireConnection();
    return this.connection;
  }

  override async releaseConnection(): Promise<void> {
    const next = this.waiters.shift();
    if (next) next();
    else this.busy = false;
  }
}

/** A SqliteDialect that uses {@link FifoSqliteDriver}. */
export class FifoSqliteDialect extends SqliteDialect {
  constructor(private readonly fifoConfig: SqliteDialectConfig) {
    super(fifoConfig);
  }

  override createDriver(): Driver {
    return new FifoSqliteDriver(this.fifoConfig);
  }
}

/**
 * Wrap a better-sqlite3 database so that `prepare(sql)` returns a cached
 * statement for SQL text seen recently. Safe because kysely runs one
 * statement at a time on the one connection and grantkeeper never streams
 * (a statement being iterated could not be reused).
 * @param capacity statements kept; the least recently used is dropped first @defaultValue 512
 */
export function cachingDatabase(database: SqliteDatabase, capacity = 512): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => {
      cache.clear();
      database.close();
    },
    prepare(sql: string): SqliteStatement {
      const hit = cache.get(sql);
      if (hit) {
        // Re-insert: a Map iterates in insertion order, so its first key is the least recently used.
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      const statement = database.prepare(sql);
      cache.set(sql, statement);
      if (cache.size > capacity) cache.delete(cache.keys().next().value!);
      return statement;
    },
  };
}
