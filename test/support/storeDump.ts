/**
 * A dump of everything in a store — every table grantkeeper's migrations
 * created, read straight from the database, rows in a stable order — so a
 * test can assert that a request changed nothing, whichever tables other
 * features add later.
 */
import { sql } from "kysely";
import type { Store } from "../../src/store/database.js";

/** Names of the store's own tables (kysely's migration bookkeeping excluded). */
export async function storeTables(store: Store): Promise<string[]> {
  const rows =
    store.dialect === "sqlite"
      ? (await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(store.db)).rows
      : (await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = ${store.schema ?? "public"} and table_type = 'BASE TABLE'`.execute(store.db)).rows;
  return rows.map((r) => r.name).filter((n) => !n.startsWith("kysely_")).sort();
}

/**
 * Every row of every table, as one JSON text (tables by name, rows sorted by
 * their JSON). Two dumps are equal exactly when the stored data is.
 */
export async function dumpStore(store: Store): Promise<string> {
  const tables = await storeTables(store);
  const contents = await Promise.all(tables.map((t) => sql<Record<string, unknown>>`select * from ${sql.table(t)}`.execute(store.db)));
  const out: Record<string, string[]> = {};
  tables.forEach((t, i) => (out[t] = contents[i]!.rows.map((r) => JSON.stringify(r, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))).sort()));
  return JSON.stringify(out);
}
