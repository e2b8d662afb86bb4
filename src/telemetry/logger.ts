/**
 * JSON logs with pino. Tokens, secrets, keys, `Authorization` headers and
 * cookies are redacted by path everywhere; messages never interpolate them
 * (pino redacts by path only, not inside strings).
 */
import pino, { type Logger, type DestinationStream } from "pino";

/** The logger type used across grantkeeper (pino's). */
export type { Logger };

/**
 * Paths redacted in every log line. Not `code` or `state`: those names carry
 * failure codes and connection states in our lines; OAuth authorization codes
 * and `state` values are never logged at all (request logs carry paths only).
 */
export const REDACT_PATHS = [
  "accessToken",
  "refreshToken",
  "access_token",
  "refresh_token",
  "id_token",
  "clientSecret",
  "client_secret",
  "code_verifier",
  "codeVerifier",
  "apiKey",
  "encryptionKey",
  "password",
  "secret",
  "authorization",
  "cookie",
  "connectToken",
  "connectUrl",
  "*.accessToken",
  "*.refreshToken",
  "*.access_token",
  "*.refresh_token",
  "*.clientSecret",
  "*.client_secret",
  "*.secret",
  "*.apiKey",
  "*.encryptionKey",
  "*.authorization",
  "*.cookie",
  "*.connectToken",
  "*.connectUrl",
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["set-cookie"]',
  "headers.authorization",
  "headers.cookie",
  'headers["set-cookie"]',
];

const LIVE_LINK = /(connectToken=)[^&#\s"'<>]+|gkcs_[A-Za-z0-9_-]+/g;

/**
 * `text` with every live connect link masked: the `connectToken` of a link
 * and any bare link secret (`gkcs_…`) become `[redacted]`. A connect link is
 * a credential until it is used or expires (docs/security.md); alerts and
 * logs must never carry one, and this is the last line of defence.
 */
export function maskConnectLinks(text: string): string {
  if (!text.includes("connectToken=") && !text.includes("gkcs_")) return text;
  return text.replace(LIVE_LINK, (m, param: string | undefined) => (param ? `${param}[redacted]` : "[redacted]"));
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** pino level. @defaultValue "info" (or `GRANTKEEPER_LOG_LEVEL`) */
  level?: string;
  /** Where lines go. @defaultValue stdout */
  destination?: DestinationStream;
}

let isoMs = -1;
let isoField = "";

/**
 * pino's `isoTime` field (`,"time":"2026-12-05T13:40:30.123Z"`), formatted once per millisecond: a busy
 * proxy writes several access lines per millisecond, each formatting the same date (issue 16).
 */
function isoTimeOncePerMs(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return isoField;
}

/** A JSON logger with grantkeeper's redaction rules. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.GRANTKEEPER_LOG_LEVEL ?? "info",
      base: { service: "grantkeeper" },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      timestamp: isoTimeOncePerMs,
      // Paths are redacted above; a link that slipped into a message string is masked here.
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === "string" ? maskConnectLinks(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that drops everything (library users who pass none). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/** The fields of one access-log line ("http request"). */
export interface AccessLine {
  method: string;
  /** The request path as received, without its query (queries may carry `code`, `state`, `connectToken`). */
  path: string;
  status: number;
  /** From the request's arrival to the last byte of the answer handed to the socket, milliseconds (rounded). */
  durationMs: number;
}

const accessLoggers = new WeakMap<Logger, Logger>();

/**
 * Write the access-log line of one HTTP request at `info`, for the app and the proxy's fast path alike.
 * The line holds only {@link AccessLine}'s fields — none a redact path names — so it goes through a child
 * of `logger` without the redaction pass (same destination, level and hooks), which doubled the cost of
 * each line (measured ~8 vs ~17 µs: per proxied API call, issue 16); a link secret in the path is still
 * masked ({@link maskConnectLinks}).
 */
export function logAccess(logger: Logger, line: AccessLine): void {
  let access = accessLoggers.get(logger);
  if (access === undefined) {
    access = logger.child({}, { redact: { paths: [] } });
    accessLoggers.set(logger, access);
  }
  if (!access.isLevelEnabled("info")) return;
  access.info({ method: line.method, path: maskConnectLinks(line.path), status: line.status, durationMs: line.durationMs }, "http request");
}
