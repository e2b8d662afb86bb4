/**
 * Files grantkeeper creates for its embedded store and generated keys are
 * private to the user running it (issue 10 item 7): directories 0700, files
 * 0600, whatever the process umask is — the SQLite file holds every grant
 * (encrypted) and every job payload, and its `-wal` / `-shm` companions hold
 * recent pages of it. Existing directories and files keep the mode their
 * owner gave them.
 */
import { chmodSync, closeSync, existsSync, fchmodSync, mkdirSync, openSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** Mode of directories grantkeeper creates. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of files grantkeeper creates. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Create `dir` and any missing parents with mode 0700, set exactly (a umask
 * can only take bits away from `mkdir`'s mode, e.g. leave 0500). Directories
 * that already exist are not touched.
 * @throws the file system error (e.g. EACCES) with its code
 */
export function ensurePrivateDir(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) {
    missing.push(d);
    if (dirname(d) === d) break;
  }
  if (missing.length === 0) return;
  mkdirSync(resolve(dir), { recursive: true, mode: PRIVATE_DIR_MODE });
  for (const d of missing.reverse()) chmodSync(d, PRIVATE_DIR_MODE);
}

/**
 * Create `file` empty with mode 0600, set exactly, unless it exists (then it
 * is left as it is). Its directory must exist.
 * @returns true when this call created it
 * @throws the file system error (e.g. EACCES) with its code
 */
export function ensurePrivateFile(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, "wx", PRIVATE_FILE_MODE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
  return true;
}
