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
 * Every row of every table, as one text (tables by name, rows sorted by their
 * text). Two dumps are equal exactly when the stored data is. On PostgreSQL it
 * is one query (one round trip, however many tables); SQLite is in process.
 */
export async function dumpStore(store: Store): Promise<string> {
  const tables = await storeTables(store);
  if (store.dialect === "postgres") {
    const parts = tables.map((t) => sql`select ${t} as t, coalesce(string_agg(x::text, chr(10) order by x::text), '') as rows from ${sql.table(t)} x`);
    const rows = (await sql<{ t: string; rows: string }>`${sql.join(parts, sql` union all `)}`.execute(store.db)).rows;
    return JSON.stringify(Object.fromEntries(rows.map((r) => [r.t, r.rows]).sort(([a], [b]) => a!.localeCompare(b!))));
  }
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(t)}`.execute(store.db)).rows;
    out[t] = rows.map((r) => JSON.stringify(r, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))).sort();
  }
  return JSON.stringify(out);
}
