/** Shared set-up of CLI commands: config, secrets, logger, grantkeeper. */
import { loadConfig, type GrantkeeperConfig } from "../config/config.js";
import { createGrantkeeper, type Grantkeeper } from "../grantkeeper.js";
import { createLogger, type Logger } from "../telemetry/logger.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import type { SinkConfig } from "../alerts/sinks.js";
import { resolveSecrets, type ResolvedSecrets } from "./secrets.js";

/** Everything a command needs. */
export interface Runtime {
  config: GrantkeeperConfig;
  secrets: ResolvedSecrets;
  logger: Logger;
  gk: Grantkeeper;
}

/**
 * Load config and secrets and open grantkeeper (migrating the store).
 * @param opts.migrate run migrations @defaultValue true
 * @param opts.telemetry metrics and tracer @defaultValue a fresh one without process metrics
 */
export async function openRuntime(opts: { migrate?: boolean; logLevel?: string; telemetry?: Telemetry } = {}): Promise<Runtime> {
  const config = loadConfig();
  const logger = createLogger(opts.logLevel ? { level: opts.logLevel } : {});
  const secrets = resolveSecrets(config.databaseUrl, config.apiKey, config.encryptionKey);
  const gk = await createGrantkeeper({
    databaseUrl: config.databaseUrl,
    encryptionKey: secrets.encryptionKey,
    retiredEncryptionKeys: config.retiredEncryptionKeys,
    refresh: config.refresh,
    scheduler: config.scheduler,
    integrations: { resetOnReauth: config.file.integrations.resetOnReauth, parkWhenDisabled: config.file.integrations.parkWhenDisabled },
    jobs: { leaseMs: config.file.jobs.leaseSeconds * 1000, maxAttempts: config.file.jobs.maxAttempts, maxBodyBytes: config.file.jobs.maxBodyBytes },
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
    migrate: opts.migrate ?? true,
    ...(opts.telemetry ? { telemetry: opts.telemetry } : {}),
  });
  return { config, secrets, logger, gk };
}
