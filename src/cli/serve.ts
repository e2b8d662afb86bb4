/** `grantkeeper serve`: API, connect flow and refresh scheduler in one process. */
import { hkdfSync } from "node:crypto";
import { Command } from "commander";
import { createApp } from "../http/app.js";
import { MIN_API_KEY_LENGTH, parseApiKeys, shortApiKeys } from "../http/auth.js";
import { listen } from "../http/server.js";
import { createTelemetry } from "../telemetry/telemetry.js";
import { startTracing, tracingOptionsFromEnv } from "../telemetry/tracing.js";
import { describeError, ExitCode } from "./exit.js";
import { openRuntime } from "./runtime.js";

/** The `serve` command: see {@link serve}. */
export function serveCommand(): Command {
  return new Command("serve").description("API, connect flow and proactive refresh scheduler in one process").action(serve);
}

/**
 * Run until SIGINT/SIGTERM, then stop the scheduler, finish in-flight work and close the store.
 * Tracing is on only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set.
 * Logs (pino JSON) go to stderr; the "listening on" summary to stdout.
 * @throws the listen error (`EADDRINUSE`…) after closing grantkeeper; the CLI prints it as one line, exit 1
 */
export async function serve(): Promise<void> {
  // Before anything that could start a span; a bad endpoint stops the start with a RangeError naming it.
  const tracing = await startTracing(tracingOptionsFromEnv());
  const rt = await openRuntime({ telemetry: createTelemetry({ metrics: { processMetrics: true } }), bufferedLogs: true });
  const { config, secrets, logger, gk } = rt;
  if (tracing) logger.info({ otlpOrigin: new URL(tracing.tracesUrl).origin }, "tracing to OTLP/HTTP");
  for (const file of secrets.generated) logger.warn({ file }, "generated a secret into the data directory (mode 0600); set the environment variable to manage it yourself");
  const apiKeys = parseApiKeys(secrets.apiKey);
  for (const short of shortApiKeys(apiKeys)) {
    logger.warn(
      { keyPosition: short.position, keys: apiKeys.length, length: short.length, minimumLength: MIN_API_KEY_LENGTH },
      `API key ${short.position} of ${apiKeys.length} ${secrets.apiKeyFile ? `in ${secrets.apiKeyFile}` : "in GRANTKEEPER_API_KEY"} has ${short.length} characters: failed key checks are not limited, so a short key can be guessed; use ${MIN_API_KEY_LENGTH} or more random characters (e.g. \`openssl rand -base64 24\`)`,
    );
  }
  // Dashboard sessions are signed with a key derived from the encryption key: every instance accepts them, a restart keeps them.
  const sessionSecret = Buffer.from(hkdfSync("sha256", Buffer.from(secrets.encryptionKey, "base64"), Buffer.alloc(0), "grantkeeper dashboard session v1", 32));
  const app = createApp(gk, { apiKey: secrets.apiKey, maxBodyBytes: config.file.jobs.maxBodyBytes, sessionSecret });
  let server;
  try {
    server = await listen(app, config.host, config.port, { limits: config.server, logger });
  } catch (e) {
    await gk.close();
    await tracing?.shutdown().catch(() => undefined);
    throw e;
  }
  await gk.start();
  // Before the summary: a supervisor that stops us as soon as it reads it gets a clean shutdown.
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    await server.close();
    await gk.close();
    await tracing?.shutdown().catch((e: Error) => logger.warn({ err: { name: e.name, message: e.message } }, "could not flush traces"));
    process.exit(0);
  };
  const onSignal = (signal: string) =>
    void shutdown(signal).catch((e: unknown) => {
      process.stderr.write(`grantkeeper: shutdown failed: ${describeError(e).line}\n`);
      process.exit(ExitCode.runtime);
    });
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  logger.info(
    { url: server.url, publicUrl: config.publicUrl, store: gk.storeLocation, apiKeyFile: secrets.apiKeyFile ?? "(from GRANTKEEPER_API_KEY)", redirectUri: gk.authorization.redirectUri, instanceId: gk.instanceId },
    "grantkeeper serving",
  );
  process.stdout.write(`grantkeeper listening on ${server.url}\n  store: ${gk.storeLocation}\n  API key: ${secrets.apiKeyFile ? `in ${secrets.apiKeyFile}` : "from GRANTKEEPER_API_KEY"}\n  OAuth redirect URI: ${gk.authorization.redirectUri}\n  dashboard: ${config.publicUrl}/ (sign in with the API key)\n`);
}
