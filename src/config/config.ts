/**
 * Configuration: a YAML/JSON file (`GRANTKEEPER_CONFIG`, default
 * `./grantkeeper.config.yaml` when present) plus environment variables that
 * override the few of api-contract.md "Start". Files speak seconds; the
 * resolved config speaks milliseconds (`…Ms`).
 */
import { existsSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { resolveRefreshPolicy, type RefreshPolicy } from "../domain/policy.js";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import type { RetentionPolicy } from "../domain/retention.js";
import { reconnectUrlProblem } from "../alerts/reconnectUrl.js";

const seconds = z.number().finite().min(0);

/** The config file's schema, with the contract's defaults. Unknown keys are errors (typos must not silently fall back to defaults). */
export const configFileSchema = z
  .object({
    databaseUrl: z.string().optional(),
    port: z.number().int().min(0).max(65535).optional(),
    host: z.string().optional(),
    publicUrl: z.string().url().optional(),
    allowedReturnOrigins: z.array(z.string().url()).default([]),
    refresh: z
      .object({
        marginSeconds: seconds.default(300),
        jitterSeconds: seconds.default(30),
        timeoutSeconds: z.number().finite().positive().default(30),
        maxRetries: z.number().int().min(0).default(5),
        backoffBaseSeconds: seconds.default(5),
        backoffMaxSeconds: seconds.default(300),
        recoveryIntervalSeconds: seconds.default(1800),
        minIntervalSeconds: seconds.default(5),
        assumedLifetimeSeconds: seconds.default(3600),
        keepAliveSeconds: seconds.default(86400),
      })
      .strict()
      .prefault({}),
    breaker: z.object({ maxConsecutiveFailures: z.number().int().min(1).default(3), cooldownSeconds: seconds.default(120) }).strict().prefault({}),
    integrations: z
      .object({ resetOnReauth: z.array(z.enum(["ERROR", "DISABLED"])).default(["ERROR"]), parkWhenDisabled: z.boolean().default(true) })
      .strict()
      .prefault({}),
    jobs: z
      .object({ leaseSeconds: seconds.default(60), maxAttempts: z.number().int().min(1).default(5), maxBodyBytes: z.number().int().min(1).default(1_048_576) })
      .strict()
      .prefault({}),
    webhook: z
      .object({
        /** How long a rotated-out inbound webhook secret is still accepted beside the new one (Stripe's practice: 24 h). */
        secretOverlapSeconds: seconds.default(86_400),
      })
      .strict()
      .prefault({}),
    alerts: z
      .object({
        escalateAfter: z.number().int().min(1).default(3),
        alertOnFirstFailure: z.boolean().default(true),
        alertOnRecovery: z.boolean().default(true),
        flapWindowSeconds: seconds.default(600),
        maxPerMinutePerSink: z.number().int().min(1).default(30),
        reconnectUrl: z
          .string()
          .nullable()
          .default(null)
          .superRefine((v, ctx) => {
            const problem = v === null ? undefined : reconnectUrlProblem(v);
            if (problem) ctx.addIssue({ code: "custom", message: problem });
          }),
        sinks: z
          .array(
            z
              .object({
                type: z.enum(["log", "slack", "webhook"]),
                name: z.string().min(1).optional(),
                url: z.string().url().optional(),
                secret: z.string().min(16).optional(),
                audience: z.enum(["ops", "user"]).default("ops"),
                minSeverity: z.enum(["info", "warning", "critical"]).default("info"),
                kinds: z.array(z.string()).optional(),
              })
              .strict()
              .refine((s) => s.type === "log" || s.url !== undefined, { message: "slack and webhook sinks need a url" })
              .refine((s) => s.type !== "webhook" || s.secret !== undefined, { message: "webhook sinks need a secret (16+ characters) to sign with" }),
          )
          .default([{ type: "log", audience: "ops", minSeverity: "info" }]),
      })
      .strict()
      .prefault({}),
    scheduler: z
      .object({ batchSize: z.number().int().min(1).max(10_000).default(200), concurrency: z.number().int().min(1).max(256).default(32), maxSleepSeconds: z.number().positive().default(30) })
      .strict()
      .prefault({}),
    // Data lifecycle (contract v1.1): finished rows only; queued, running, faulted and parked jobs are never deleted.
    retention: z
      .object({
        succeededJobsSeconds: seconds.default(604_800),
        failedJobsSeconds: seconds.default(2_592_000),
        alertsSeconds: seconds.default(7_776_000),
        eventsSeconds: seconds.default(7_776_000),
        sweepIntervalSeconds: z.number().finite().positive().default(300),
      })
      .strict()
      .prefault({}),
    connect: z.object({ stateTtlSeconds: z.number().int().min(30).default(600) }).strict().prefault({}),
    proxy: z
      .object({
        timeoutSeconds: z.number().finite().positive().default(30),
        authFailuresToDegrade: z.number().int().min(1).default(3),
        connectionsPerOrigin: z.number().int().min(1).max(4096).default(64),
      })
      .strict()
      .prefault({}),
    server: z
      .object({
        /** The whole request must arrive within this; a proxied upload still sending then is cut after this long without a byte. */
        requestTimeoutSeconds: z.number().finite().positive().default(30),
        /** Default 10, or requestTimeoutSeconds when that is shorter. */
        headersTimeoutSeconds: z.number().finite().positive().optional(),
        keepAliveTimeoutSeconds: z.number().finite().positive().default(5),
        maxConnections: z.number().int().min(1).default(1024),
        lingerSeconds: z.number().finite().positive().default(5),
        lingerMaxBytes: z.number().int().min(1).default(67_108_864),
      })
      .strict()
      .refine((s) => s.headersTimeoutSeconds === undefined || s.headersTimeoutSeconds <= s.requestTimeoutSeconds, { message: "headersTimeoutSeconds must not exceed requestTimeoutSeconds", path: ["headersTimeoutSeconds"] })
      .prefault({}),
  })
  .strict();

/** Parsed config file (seconds). */
export type ConfigFile = z.infer<typeof configFileSchema>;

/** Resolved configuration (milliseconds). */
export interface GrantkeeperConfig {
  databaseUrl: string;
  port: number;
  host: string;
  publicUrl: string;
  /** Origins `returnTo` may point at: `publicUrl`'s plus configured ones. */
  allowedReturnOrigins: string[];
  apiKey: string | undefined;
  encryptionKey: string | undefined;
  /** Keys still accepted for decryption while rotating (`GRANTKEEPER_RETIRED_ENCRYPTION_KEYS`, comma-separated base64). */
  retiredEncryptionKeys: string[];
  refresh: RefreshPolicy;
  scheduler: { batchSize: number; concurrency: number; maxSleepMs: number };
  connect: { stateTtlMs: number };
  /** Retention windows and the sweep interval (`retention` in the file, seconds there); see src/domain/retention.ts. */
  retention: RetentionPolicy;
  /** Provider API calls (the proxy and `ctx.fetch`). */
  proxy: { timeoutMs: number; authFailuresToDegrade: number; connectionsPerOrigin: number };
  /** HTTP server limits (`server` in the file, seconds there); see `ServerLimits` in src/http/server.ts. */
  server: { requestTimeoutMs: number; headersTimeoutMs: number; keepAliveTimeoutMs: number; maxConnections: number; lingerMs: number; lingerMaxBytes: number };
  /** The rest of the file, kept for the parts that read it (integrations, jobs, alerts). */
  file: ConfigFile;
  /** Path of the config file read, if any. */
  configPath: string | undefined;
}

/**
 * An invalid config file or environment: a {@link GrantkeeperError} with code
 * `invalid_config`, kind `misconfigured`; `message` names the bad key.
 */
export class ConfigError extends GrantkeeperError {
  /** @param message names the bad key or variable and what is wrong with it */
  constructor(message: string) {
    super(ErrorCode.invalidConfig, message);
    this.name = "ConfigError";
  }
}

/** Convert file seconds to the refresh policy in milliseconds. */
export function refreshPolicyFromFile(r: ConfigFile["refresh"]): RefreshPolicy {
  const ms = (s: number) => Math.round(s * 1000);
  return resolveRefreshPolicy({
    marginMs: ms(r.marginSeconds),
    jitterMs: ms(r.jitterSeconds),
    timeoutMs: ms(r.timeoutSeconds),
    maxRetries: r.maxRetries,
    backoffBaseMs: ms(r.backoffBaseSeconds),
    backoffMaxMs: ms(r.backoffMaxSeconds),
    recoveryIntervalMs: ms(r.recoveryIntervalSeconds),
    minIntervalMs: ms(r.minIntervalSeconds),
    assumedLifetimeMs: ms(r.assumedLifetimeSeconds),
    keepAliveMs: ms(r.keepAliveSeconds),
  });
}

/**
 * Load the configuration from file and environment.
 * @param env environment (injected for tests)
 * @throws {@link ConfigError} for an unreadable or invalid file, or a bad env value
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): GrantkeeperConfig {
  const explicit = env.GRANTKEEPER_CONFIG;
  const configPath = explicit ?? (existsSync("./grantkeeper.config.yaml") ? "./grantkeeper.config.yaml" : undefined);
  let raw: unknown = {};
  if (configPath !== undefined) {
    let text: string;
    try {
      text = readFileSync(configPath, "utf8");
    } catch (e) {
      throw new ConfigError(`cannot read config file ${configPath}: ${(e as Error).message}`);
    }
    try {
      raw = (configPath.endsWith(".json") ? JSON.parse(text) : parseYaml(text)) ?? {};
    } catch (e) {
      throw new ConfigError(`config file ${configPath} is not valid ${configPath.endsWith(".json") ? "JSON" : "YAML"}: ${(e as Error).message}`);
    }
  }
  const parsed = configFileSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ConfigError(`config file ${configPath ?? "(none)"} is invalid: ${first}`);
  }
  const file = parsed.data;
  const rawPort = env.GRANTKEEPER_PORT?.trim() || undefined;
  if (rawPort !== undefined && !/^\d{1,5}$/.test(rawPort)) throw new ConfigError(`GRANTKEEPER_PORT must be an integer 0..65535, got ${JSON.stringify(env.GRANTKEEPER_PORT)}`);
  const port = rawPort !== undefined ? Number(rawPort) : (file.port ?? 7420);
  if (port > 65535) throw new ConfigError(`GRANTKEEPER_PORT must be an integer 0..65535, got ${rawPort}`);
  const host = env.GRANTKEEPER_HOST ?? file.host ?? "127.0.0.1";
  const publicUrl = (env.GRANTKEEPER_PUBLIC_URL ?? file.publicUrl ?? `http://127.0.0.1:${port}`).replace(/\/+$/, "");
  try {
    new URL(publicUrl);
  } catch {
    throw new ConfigError(`GRANTKEEPER_PUBLIC_URL must be an absolute URL, got ${publicUrl}`);
  }
  return {
    databaseUrl: env.GRANTKEEPER_DATABASE_URL ?? file.databaseUrl ?? "sqlite:./data/grantkeeper.db",
    port,
    host,
    publicUrl,
    allowedReturnOrigins: [new URL(publicUrl).origin, ...file.allowedReturnOrigins.map((u) => new URL(u).origin)],
    apiKey: env.GRANTKEEPER_API_KEY || undefined,
    encryptionKey: env.GRANTKEEPER_ENCRYPTION_KEY || undefined,
    retiredEncryptionKeys: (env.GRANTKEEPER_RETIRED_ENCRYPTION_KEYS ?? "").split(",").map((k) => k.trim()).filter(Boolean),
    refresh: refreshPolicyFromFile(file.refresh),
    scheduler: { batchSize: file.scheduler.batchSize, concurrency: file.scheduler.concurrency, maxSleepMs: Math.round(file.scheduler.maxSleepSeconds * 1000) },
    connect: { stateTtlMs: file.connect.stateTtlSeconds * 1000 },
    retention: {
      succeededJobsMs: Math.round(file.retention.succeededJobsSeconds * 1000),
      failedJobsMs: Math.round(file.retention.failedJobsSeconds * 1000),
      alertsMs: Math.round(file.retention.alertsSeconds * 1000),
      eventsMs: Math.round(file.retention.eventsSeconds * 1000),
      sweepIntervalMs: Math.round(file.retention.sweepIntervalSeconds * 1000),
    },
    proxy: { timeoutMs: Math.round(file.proxy.timeoutSeconds * 1000), authFailuresToDegrade: file.proxy.authFailuresToDegrade, connectionsPerOrigin: file.proxy.connectionsPerOrigin },
    server: {
      requestTimeoutMs: Math.round(file.server.requestTimeoutSeconds * 1000),
      headersTimeoutMs: Math.round((file.server.headersTimeoutSeconds ?? Math.min(10, file.server.requestTimeoutSeconds)) * 1000),
      keepAliveTimeoutMs: Math.round(file.server.keepAliveTimeoutSeconds * 1000),
      maxConnections: file.server.maxConnections,
      lingerMs: Math.round(file.server.lingerSeconds * 1000),
      lingerMaxBytes: file.server.lingerMaxBytes,
    },
    file,
    configPath,
  };
}
