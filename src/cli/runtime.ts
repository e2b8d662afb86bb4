/** Shared set-up of CLI commands: config, secrets, logger, grantkeeper. */
import { ConfigError, loadConfig, type GrantkeeperConfig } from "../config/config.js";
import { createGrantkeeper, type Grantkeeper } from "../grantkeeper.js";
import { createLogger, type Logger } from "../telemetry/logger.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import type { SinkConfig } from "../alerts/sinks.js";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import pino, { type DestinationStream } from "pino";
import { openStore } from "../store/database.js";
import { pendingMigrations } from "../store/migrations.js";
import { CliError } from "./exit.js";
import { dataDirOf, resolveSecrets, type ResolvedSecrets } from "./secrets.js";

/** Everything a command needs. */
export interface Runtime {
  config: GrantkeeperConfig;
  secrets: ResolvedSecrets;
  logger: Logger;
  gk: Grantkeeper;
}

/**
 * Most a buffered logger holds while stderr does not take lines (a stalled pipe); lines beyond it are
 * dropped rather than growing the heap until the server dies. @defaultValue 16 MiB
 */
export const LOG_BUFFER_MAX_BYTES = 16 * 2 ** 20;

/**
 * The CLI's logger: pino JSON lines on stderr (fd 2), so stdout carries only what a command prints.
 * One-shot commands write each line before going on. `serve` buffers (`buffered`): lines go out
 * asynchronously, gathered into one write while the previous is in flight — a synchronous write
 * per line was the largest single cost of a proxied API call after the socket itself (one
 * access line per request; issue 16's profile). Buffered lines are flushed on any exit
 * (`process.exit`, a crash's exit, the end of the event loop); a `kill -9` loses at most the
 * lines of the write in flight and those queued behind it.
 * @param level pino level @defaultValue `GRANTKEEPER_LOG_LEVEL`, else "info"
 * @param opts.buffered asynchronous writes, at most {@link LOG_BUFFER_MAX_BYTES} queued @defaultValue false
 */
export function cliLogger(level?: string, opts: { buffered?: boolean } = {}): Logger {
  const destination = opts.buffered ? bufferedDestination(2) : pino.destination({ dest: 2, sync: true });
  return createLogger({ ...(level ? { level } : {}), destination });
}

/**
 * `serve`'s log destination ({@link cliLogger} `buffered`): asynchronous writes, at most {@link LOG_BUFFER_MAX_BYTES}
 * queued, flushed on exit.
 * @param dest a file descriptor or a path (benchmarks write to `/dev/null` as `serve` writes to stderr)
 */
export function bufferedDestination(dest: number | string): DestinationStream {
  return pino.destination({ dest, sync: false, maxLength: LOG_BUFFER_MAX_BYTES });
}

/** The SQLite file of a `sqlite:` URL, or undefined for PostgreSQL and `:memory:`. */
export function sqliteFileOf(databaseUrl: string): string | undefined {
  if (!databaseUrl.startsWith("sqlite:")) return undefined;
  const path = databaseUrl.slice("sqlite:".length);
  return path === ":memory:" || path === "" ? undefined : resolve(path);
}

/**
 * Check, without creating anything, that a store and its encryption key
 * exist here and (with `checkMigrations`) that the store's schema is
 * current — what a one-shot command needs (issue 15 item 7): only `serve`
 * and `migrate` set a store up.
 * @param opts.checkMigrations refuse a store with pending migrations (read-only commands, which do not migrate) @defaultValue true
 * @throws {@link CliError} (exit 1) naming what is missing and the command that sets it up;
 *   {@link ConfigError} (exit 2) for PostgreSQL without `GRANTKEEPER_ENCRYPTION_KEY`
 */
export async function assertInitialised(config: GrantkeeperConfig, opts: { checkMigrations?: boolean } = {}): Promise<void> {
  const file = sqliteFileOf(config.databaseUrl);
  if (file !== undefined && !existsSync(file)) {
    throw new CliError(`no store here: ${config.databaseUrl} does not exist; run \`grantkeeper serve\` (or \`grantkeeper migrate\`) to create it, or set GRANTKEEPER_DATABASE_URL`);
  }
  const dir = dataDirOf(config.databaseUrl);
  if (config.encryptionKey === undefined && dir === undefined) {
    throw new ConfigError("GRANTKEEPER_ENCRYPTION_KEY is required with PostgreSQL (every instance must share it)");
  }
  if (config.encryptionKey === undefined && dir !== undefined && !existsSync(join(dir, "encryption-key"))) {
    throw new CliError(`no encryption key here: ${join(dir, "encryption-key")} does not exist; set GRANTKEEPER_ENCRYPTION_KEY or run \`grantkeeper serve\` once to generate it`);
  }
  if (opts.checkMigrations === false) return;
  const store = await openStore(config.databaseUrl);
  try {
    const pending = await pendingMigrations(store);
    if (pending.length > 0) throw new CliError(`the store at ${store.location} needs ${pending.length} migration(s); run \`grantkeeper migrate\``);
  } finally {
    await store.close();
  }
}

/**
 * Load config and secrets and open grantkeeper (migrating the store).
 * Logs (pino JSON) go to stderr: stdout carries only what the command prints.
 * @param opts.migrate run migrations @defaultValue true
 * @param opts.create set up what is missing: the store (SQLite) and generated keys — `serve` only; otherwise a missing store or encryption key is a {@link CliError} (exit 1) and no API key is generated (only `serve` needs one) @defaultValue true
 * @param opts.readOnly create nothing and change nothing: implies `create: false`, no migrations (a store needing them is a {@link CliError}) @defaultValue false
 * @param opts.telemetry metrics and tracer @defaultValue a fresh one without process metrics
 * @param opts.bufferedLogs write log lines asynchronously ({@link cliLogger}; `serve`) @defaultValue false
 */
export async function openRuntime(opts: { migrate?: boolean; create?: boolean; readOnly?: boolean; logLevel?: string; telemetry?: Telemetry; bufferedLogs?: boolean } = {}): Promise<Runtime> {
  const config = loadConfig();
  const create = opts.create !== false && opts.readOnly !== true;
  if (!create) await assertInitialised(config, { checkMigrations: opts.readOnly === true });
  const logger = cliLogger(opts.logLevel, { buffered: opts.bufferedLogs === true });
  // Not creating: the encryption key exists (checked above); the API key is not needed, so a missing one is not generated.
  const secrets = !create ? { ...resolveSecrets(config.databaseUrl, config.apiKey ?? "", config.encryptionKey), apiKey: config.apiKey ?? "" } : resolveSecrets(config.databaseUrl, config.apiKey, config.encryptionKey);
  const gk = await createGrantkeeper({
    databaseUrl: config.databaseUrl,
    encryptionKey: secrets.encryptionKey,
    retiredEncryptionKeys: config.retiredEncryptionKeys,
    refresh: config.refresh,
    scheduler: config.scheduler,
    integrations: { resetOnReauth: config.file.integrations.resetOnReauth, parkWhenDisabled: config.file.integrations.parkWhenDisabled },
    jobs: { leaseMs: config.file.jobs.leaseSeconds * 1000, maxAttempts: config.file.jobs.maxAttempts, maxBodyBytes: config.file.jobs.maxBodyBytes },
    webhook: { secretOverlapMs: config.file.webhook.secretOverlapSeconds * 1000 },
    breaker: { maxConsecutiveFailures: config.file.breaker.maxConsecutiveFailures, cooldownMs: config.file.breaker.cooldownSeconds * 1000 },
    alerts: {
      sinks: config.file.alerts.sinks as SinkConfig[],
      policy: { escalateAfter: config.file.alerts.escalateAfter, alertOnFirstFailure: config.file.alerts.alertOnFirstFailure, alertOnRecovery: config.file.alerts.alertOnRecovery, flapWindowMs: config.file.alerts.flapWindowSeconds * 1000 },
      maxPerMinutePerSink: config.file.alerts.maxPerMinutePerSink,
      reconnectUrl: config.file.alerts.reconnectUrl,
    },
    publicUrl: config.publicUrl,
    allowedReturnOrigins: config.allowedReturnOrigins,
    stateTtlMs: config.connect.stateTtlMs,
    retention: config.retention,
    proxy: config.proxy,
    logger,
    migrate: opts.readOnly ? false : (opts.migrate ?? true),
    ...(opts.telemetry ? { telemetry: opts.telemetry } : {}),
  });
  return { config, secrets, logger, gk };
}
