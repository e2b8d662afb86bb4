/**
 * Files of the embedded store are private whatever the umask: the data
 * directory 0700, the SQLite file and its -wal/-shm 0600 (issue 10 item 7).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "./database.js";
import { ensurePrivateDir, ensurePrivateFile } from "./files.js";
import { migrateToLatest } from "./migrations.js";

const root = mkdtempSync(join(tmpdir(), "gk-files-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

let saved: number;
beforeEach(() => {
  saved = process.umask(0); // the most permissive umask: nothing is taken away from what we ask for
});
afterEach(() => {
  process.umask(saved);
});

describe("private files", () => {
  it("creates missing directories 0700 and leaves existing ones alone", () => {
    const existing = join(root, "existing");
    mkdirSync(existing, { mode: 0o755 });
    chmodSync(existing, 0o755);
    ensurePrivateDir(join(existing, "a", "b"));
    expect([mode(existing), mode(join(existing, "a")), mode(join(existing, "a", "b"))]).toEqual(["755", "700", "700"]);
    ensurePrivateDir(join(existing, "a", "b")); // idempotent
  });

  it("sets 0700 exactly under a umask that would take the owner's bits", () => {
    process.umask(0o277);
    const dir = join(root, "strict", "data");
    ensurePrivateDir(dir);
    expect(mode(dir)).toBe("700");
    expect(ensurePrivateFile(join(dir, "f"))).toBe(true);
    expect(mode(join(dir, "f"))).toBe("600");
  });

  it("creates a file 0600 once; an existing file keeps its mode and content", () => {
    const file = join(root, "keep");
    writeFileSync(file, "x", { mode: 0o644 });
    chmodSync(file, 0o644);
    expect(ensurePrivateFile(file)).toBe(false);
    expect(mode(file)).toBe("644");
    expect(statSync(file).size).toBe(1);
  });

  it("the SQLite store: data dir 0700, database, -wal and -shm 0600 under umask 000", async () => {
    const dir = join(root, "store", "data");
    const store = await openStore(`sqlite:${join(dir, "grantkeeper.db")}`);
    try {
      await migrateToLatest(store);
      await sql`select count(*) from providers`.execute(store.db);
      expect(existsSync(join(dir, "grantkeeper.db-wal"))).toBe(true);
      expect(existsSync(join(dir, "grantkeeper.db-shm"))).toBe(true);
      expect([mode(join(root, "store")), mode(dir)]).toEqual(["700", "700"]);
      for (const f of ["grantkeeper.db", "grantkeeper.db-wal", "grantkeeper.db-shm"]) expect({ f, mode: mode(join(dir, f)) }).toEqual({ f, mode: "600" });
    } finally {
      await store.close();
    }
  });
});
