/**
 * The store a test runs on, chosen by `GK_TEST_BACKEND` (set per vitest
 * project): a SQLite file in a fresh temp dir, or a fresh PostgreSQL schema.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { openStore, type Store } from "../../src/store/database.js";
import { migrateToLatest } from "../../src/store/migrations.js";

/** A database URL for one test file plus its cleanup. */
export interface TestDatabase {
  url: string;
  backend: "sqlite" | "postgres";
  /** Directory for files the test writes (logs, keys). */
  dir: string;
  cleanup(): Promise<void>;
}

/** A fresh, empty database for this test file. */
export async function testDatabase(): Promise<TestDatabase> {
  const backend = process.env.GK_TEST_BACKEND === "postgres" ? "postgres" : "sqlite";
  const dir = mkdtempSync(join(tmpdir(), "gk-test-"));
  if (backend === "sqlite") {
    return { url: `sqlite:${join(dir, "grantkeeper.db")}`, backend, dir, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const base = process.env.GK_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const schema = `gk_t_${randomBytes(6).toString("hex")}`;
  return {
    url: `${base}${base.includes("?") ? "&" : "?"}schema=${schema}`,
    backend,
    dir,
    cleanup: async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A fresh test database ({@link testDatabase}) with a store opened on it and
 * migrated to the latest schema: the set-up of the store tests. The caller
 * closes the store and cleans the database up (a store that failed to migrate
 * is closed here).
 * @param url open this database instead of a fresh one (`tdb` is then undefined)
 */
export async function migratedStore(): Promise<{ tdb: TestDatabase; store: Store }>;
export async function migratedStore(url: string): Promise<{ tdb: undefined; store: Store }>;
export async function migratedStore(url?: string): Promise<{ tdb: TestDatabase | undefined; store: Store }>;
export async function migratedStore(url?: string): Promise<{ tdb: TestDatabase | undefined; store: Store }> {
  const tdb = url === undefined ? await testDatabase() : undefined;
  const store = await openStore(url ?? tdb!.url);
  try {
    await migrateToLatest(store);
  } catch (e) {
    await store.close();
    await tdb?.cleanup();
    throw e;
  }
  return { tdb, store };
}

/** A random 32-byte key, base64. */
export function testKey(): string {
  return randomBytes(32).toString("base64");
}
