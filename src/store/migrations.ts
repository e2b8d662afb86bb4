/**
 * Versioned migrations, run by kysely's Migrator (`grantkeeper migrate`, and
 * at start). The migrations are in `migrations/`: 0001–0007 create the
 * tables ({@link ./migrations/tables.ts}), 0008 on change them
 * ({@link ./migrations/later.ts}). One schema for SQLite and PostgreSQL; the
 * dialect branches are the auto-increment column type and how a CHECK
 * changes (SQLite rebuilds the table). State lists in CHECKs and partial
 * indexes come from the exported constants (`stateSql.ts`) from 0009 on;
 * earlier migrations spell theirs out (history is not rewritten), and a test
 * compares every migrated CHECK with its constant.
 */
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from "kysely";
import type { Dialect, Store } from "./database.js";
import { laterMigrations } from "./migrations/later.js";
import { tableMigrations } from "./migrations/tables.js";

function migrations(dialect: Dialect): Record<string, Migration> {
  const tables = tableMigrations(dialect);
  const later = laterMigrations(dialect);
  const twice = Object.keys(later).filter((name) => name in tables);
  if (twice.length > 0) throw new Error(`migrations defined twice: ${twice.join(", ")}`);
  return { ...tables, ...later };
}

class InlineProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}

/**
 * kysely looks for its migration tables in *every* schema unless told which:
 * with several grantkeeper schemas in one PostgreSQL database it would find
 * another schema's lock table and fail. Pin the schema.
 *
 * Migrations of one release are independent of each other's order (each adds
 * its own columns, tables or constraints), and some were written side by
 * side: a store that ran a later-named one first (a development build) still
 * gets the earlier-named ones instead of refusing to start.
 */
function newMigrator(store: Store): Migrator {
  return new Migrator({ db: store.db, provider: new InlineProvider(store.dialect), allowUnorderedMigrations: true, ...(store.dialect === "postgres" && store.schema ? { migrationTableSchema: store.schema } : {}) });
}

/** Outcome of {@link migrateToLatest}: the names of migrations applied by this call. */
export interface MigrationReport {
  applied: string[];
}

/**
 * Apply every pending migration. Safe to call from several processes at once
 * (kysely takes a lock table on PostgreSQL; SQLite serializes writers).
 * @throws Error with the failing migration's name when one fails (nothing after it runs)
 */
export async function migrateToLatest(store: Store): Promise<MigrationReport> {
  for (let attempt = 1; ; attempt++) {
    try {
      return reportOf(await newMigrator(store).migrateToLatest());
    } catch (e) {
      // kysely's table lookup reads the catalog of every schema; another schema dropped at that moment fails it with
      // 3F000 (invalid_schema_name) although ours is fine. Migrations run in a transaction on PostgreSQL: retrying is safe.
      if (attempt >= 5 || !isOtherSchemaVanished(store, e)) throw e;
    }
  }
}

/** True for PostgreSQL's 3F000 about a schema that is not the store's own. */
function isOtherSchemaVanished(store: Store, e: unknown): boolean {
  if (store.dialect !== "postgres") return false;
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const pgError = c as Error & { code?: string };
    if (pgError.code === "3F000") return store.schema === undefined || !pgError.message.includes(`"${store.schema}"`);
  }
  return false;
}

/**
 * Migrate up or down to the named migration (for upgrade tests and manual
 * rollbacks; `migrateToLatest` is what start-up runs).
 * @param name a migration name, e.g. `0005_provider_state_index`
 * @throws Error with the failing migration's name when one fails
 */
export async function migrateTo(store: Store, name: string): Promise<MigrationReport> {
  return reportOf(await newMigrator(store).migrateTo(name));
}

function reportOf({ error, results }: MigrationResultSet): MigrationReport {
  if (error) {
    const failed = results?.find((r) => r.status === "Error");
    throw new Error(`migration ${failed?.migrationName ?? "(unknown)"} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
  return { applied: (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName) };
}

/** Names of migrations not yet applied (for `/readyz` and `grantkeeper doctor`). */
export async function pendingMigrations(store: Store): Promise<string[]> {
  const migrator = newMigrator(store);
  const all = await migrator.getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
