/**
 * `grantkeeper prune`: one retention sweep now (api-contract.md v1.1 "CLI
 * additions", docs/operations.md "Retention"), with what it deleted per table.
 * Needs only the config and the store (no encryption key: nothing is decrypted).
 */
import { existsSync } from "node:fs";
import { Command } from "commander";
import { loadConfig } from "../config/config.js";
import { systemClock } from "../domain/clock.js";
import { RETENTION_TABLES, type RetentionTable } from "../domain/retention.js";
import { RetentionSweeper, type SweepReport } from "../lifecycle/retention.js";
import { openStore } from "../store/database.js";
import { migrateToLatest } from "../store/migrations.js";
import { RetentionRepository } from "../store/retention.js";
import { CliError, ExitCode, progress } from "./command.js";
import { cliLogger, sqliteFileOf } from "./runtime.js";

/** A sweep that has run this long shows its progress on stderr, milliseconds. */
const PROGRESS_AFTER_MS = 2_000;

/** Options of `grantkeeper prune`. */
export interface PruneOptions {
  /** Print one JSON object instead of lines. */
  json?: boolean;
  /** SQLite: after the sweep, switch a file made before `auto_vacuum=INCREMENTAL` to it with one full VACUUM. */
  vacuum?: boolean;
}

/** `prune: N job(s) and M other row(s) deleted` (payloads go with their jobs and are not counted apart). */
function progressLine(deleted: Readonly<Record<RetentionTable, number>>): string {
  const other = RETENTION_TABLES.filter((t) => t !== "jobs" && t !== "job_payloads").reduce((n, t) => n + deleted[t], 0);
  return `prune: ${deleted.jobs} job(s) and ${other} other row(s) deleted`;
}

/** The human lines of a sweep's report (stdout). */
export function formatPruneReport(r: SweepReport, vacuumMode?: number): string {
  if (r.skipped) return "skipped: another grantkeeper instance is sweeping this store; nothing deleted\n";
  const lines = RETENTION_TABLES.map((t) => `${t}: ${r.deleted[t]} deleted`);
  if (r.reclaimedPages > 0) lines.push(`reclaimed ${r.reclaimedPages} free page(s)`);
  if (r.interrupted) lines.push("interrupted: the next sweep continues");
  if (vacuumMode !== undefined) lines.push(vacuumMode === 2 ? "vacuumed: the file now gives freed space back after each sweep (auto_vacuum=INCREMENTAL)" : `vacuum ran but auto_vacuum is ${vacuumMode}`);
  return lines.join("\n") + "\n";
}

/**
 * Run one sweep with the configured windows and print what it deleted (stdout); a sweep running longer than
 * {@link PROGRESS_AFTER_MS} shows its progress on stderr (`\r`-updated on a terminal, a line a second otherwise).
 * Like the other one-shot commands it sets no store up, but applies pending migrations (as `replay` does).
 * @returns the exit code: 0 when it ran, 1 when another instance was sweeping (nothing deleted; try again later)
 * @throws {@link CliError} (exit 1) when the SQLite store does not exist; ConfigError / DatabaseUrlError (exit 2); the store's error (exit 1)
 */
export async function runPrune(o: PruneOptions): Promise<number> {
  const config = loadConfig();
  const file = sqliteFileOf(config.databaseUrl);
  if (file !== undefined && !existsSync(file)) throw new CliError(`no store here: ${config.databaseUrl} does not exist; set GRANTKEEPER_DATABASE_URL to the store to prune`);
  const store = await openStore(config.databaseUrl);
  try {
    await migrateToLatest(store);
    const repo = new RetentionRepository(store);
    // Progress for a long sweep only (a backlog on PostgreSQL goes at most 1,000 jobs a second): a quick one prints just its report.
    const bar = progress();
    let shown = false;
    const onProgress = (deleted: Readonly<Record<RetentionTable, number>>, elapsedMs: number) => {
      if (!shown && elapsedMs < PROGRESS_AFTER_MS) return;
      shown = true;
      bar.update(`${progressLine(deleted)} so far`);
    };
    const sweeper = new RetentionSweeper({ repo, clock: systemClock, logger: cliLogger(process.env.GRANTKEEPER_LOG_LEVEL ?? "warn"), policy: config.retention, onProgress });
    const report = await sweeper.sweep();
    if (shown) bar.done(progressLine(report.deleted));
    const vacuumMode = o.vacuum && !report.skipped ? await repo.vacuumIntoIncremental() : undefined;
    if (o.json) process.stdout.write(JSON.stringify({ ...report, durationMs: Math.round(report.durationMs), ...(vacuumMode !== undefined ? { autoVacuum: vacuumMode } : {}) }) + "\n");
    else process.stdout.write(formatPruneReport(report, vacuumMode));
    return report.skipped ? ExitCode.runtime : ExitCode.ok;
  } finally {
    await store.close();
  }
}

/** The `prune` command (registered with one line in main.ts). */
export function pruneCommand(): Command {
  return new Command("prune")
    .description("delete finished rows past their retention windows now (one sweep); prints rows deleted per table")
    .option("--json", "print JSON")
    .option("--vacuum", "SQLite: then switch an older file to auto_vacuum=INCREMENTAL with one full VACUUM (exclusive lock, needs free disk as large as the file)")
    .action(async (o: PruneOptions) => {
      process.exitCode = await runPrune(o);
    });
}
