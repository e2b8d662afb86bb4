/**
 * `grantkeeper backup FILE` (issue 13 item 4; contract v1.1): an online copy
 * of the embedded SQLite store (src/store/backup.ts), progress on stderr.
 * PostgreSQL stores are backed up with PostgreSQL's own tools
 * (docs/operations.md "Backup and restore").
 */
import { existsSync } from "node:fs";
import { Command } from "commander";
import { loadConfig } from "../config/config.js";
import { backupSqlite } from "../store/backup.js";
import { CliError, progress } from "./command.js";
import { sqliteFileOf } from "./runtime.js";

/** The `backup FILE` command (registered with one line in main.ts). */
export function backupCommand(): Command {
  return new Command("backup")
    .argument("<file>", "the backup file to write (must not exist)")
    .description("online copy of the SQLite store to FILE, consistent while grantkeeper serves (PostgreSQL: use pg_dump)")
    .action(async (file: string) => {
      process.exitCode = await runBackup(file);
    });
}

/**
 * Back the configured store up to `file`.
 * @returns 0 when the copy is complete, 2 when it cannot be made this way (a PostgreSQL or in-memory store, a
 *   target that exists)
 * @throws {@link CliError} (exit 1) when the store file does not exist; SQLite and file system errors (exit 1)
 */
export async function runBackup(file: string): Promise<number> {
  const config = loadConfig();
  const url = config.databaseUrl;
  if (!url.startsWith("sqlite:") || url === "sqlite::memory:") {
    process.stderr.write(
      url.startsWith("sqlite:")
        ? "grantkeeper: an in-memory store has nothing to back up\n"
        : "grantkeeper: backup copies the embedded SQLite store; for PostgreSQL use pg_dump (e.g. pg_dump -Fc -f grantkeeper.dump \"$DATABASE\") or your provider's point-in-time recovery — see docs/operations.md \"Backup and restore\"\n",
    );
    return 2;
  }
  const source = sqliteFileOf(url)!;
  if (!existsSync(source)) throw new CliError(`no store here: ${url} does not exist; set GRANTKEEPER_DATABASE_URL to the store to back up`);
  const bar = progress();
  let lastPct = -1;
  try {
    const r = await backupSqlite(source, file, (p) => {
      const pct = p.totalPages ? Math.floor(((p.totalPages - p.remainingPages) / p.totalPages) * 100) : 100;
      if (pct === lastPct) return;
      lastPct = pct;
      const text = `backup: ${pct}% (${p.totalPages - p.remainingPages}/${p.totalPages} pages)`;
      if (pct === 100) bar.done(text);
      else bar.update(text);
    });
    process.stdout.write(`backed up ${url} to ${file} (${r.pages} pages); keep the encryption key apart from this file (docs/operations.md)\n`);
    return 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      process.stderr.write(`grantkeeper: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}
