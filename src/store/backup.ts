/**
 * Online backup of the embedded SQLite store (issue 13 item 4), with
 * better-sqlite3's `db.backup()` (SQLite's online backup API,
 * https://www.sqlite.org/backup.html).
 *
 * Consistent while serving: the backup reads through its own connection in
 * WAL mode, so writers go on; a write by another connection (a running
 * `grantkeeper serve`) makes SQLite restart the copy, so after the first
 * restart the rest is copied in one step — one read transaction, one
 * snapshot — instead of chasing the writers forever. The copy is written to a
 * private (0600) temporary file beside the target and renamed into place when
 * complete, so a half-written backup never carries the target's name.
 */
import { renameSync, rmSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import SQLite from "better-sqlite3";
import { ensurePrivateFile } from "./files.js";

/** Progress of a backup, after each step. */
export interface BackupProgress {
  totalPages: number;
  remainingPages: number;
}

/** What a finished backup copied. */
export interface BackupResult {
  /** Pages in the copy (page size: the source's, 4096 bytes by default). */
  pages: number;
  /** Steps that made no headway because writers made SQLite restart the copy (after the first, the rest went in one step). */
  restarts: number;
}

/** Pages copied per step while nobody writes: small steps keep progress moving (~4 MB). */
const STEP_PAGES = 1024;

/**
 * Copy the SQLite database at `sourcePath` to `targetPath`, online.
 * @param sourcePath the store's file (the path of a `sqlite:` URL)
 * @param targetPath the backup file; must not exist (its directory must)
 * @param onProgress called after each step
 * @throws Error with code `EEXIST` when the target exists; SQLite and file system errors as they are
 */
export async function backupSqlite(sourcePath: string, targetPath: string, onProgress?: (p: BackupProgress) => void): Promise<BackupResult> {
  const target = resolve(targetPath);
  if (!ensurePrivateFile(target)) throw Object.assign(new Error(`${targetPath} exists: choose a new file for the backup`), { code: "EEXIST" });
  // The target name is taken (0600, empty) so that nobody else takes it; the copy goes to a temporary file beside it.
  const temp = join(dirname(target), `.${basename(target)}.partial-${process.pid}`);
  const source = new SQLite(sourcePath, { fileMustExist: true });
  try {
    source.pragma("busy_timeout = 5000");
    ensurePrivateFile(temp);
    let lastRemaining = Number.POSITIVE_INFINITY;
    let restarts = 0;
    const r = await source.backup(temp, {
      progress: (p) => {
        onProgress?.(p);
        // A restart copies the first pages again: what remains does not shrink from one step to the next.
        if (p.remainingPages >= lastRemaining) restarts++;
        lastRemaining = p.remainingPages;
        return restarts > 0 ? 0x7fffffff : STEP_PAGES;
      },
    });
    onProgress?.({ totalPages: r.totalPages, remainingPages: 0 });
    renameSync(temp, target);
    return { pages: r.totalPages, restarts };
  } catch (e) {
    rmSync(temp, { force: true });
    rmSync(target, { force: true });
    throw e;
  } finally {
    source.close();
  }
}
