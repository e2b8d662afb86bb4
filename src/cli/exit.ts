/**
 * Exit codes of the `grantkeeper` CLI and the one line an error becomes
 * (issue 15 item 7; docs/cli.md "Exit codes").
 */
import { isGrantkeeperError } from "../domain/errors.js";

/**
 * Exit codes of the CLI (docs/cli.md "Exit codes").
 * - `ok` 0: done;
 * - `runtime` 1: the command ran and failed (store unreachable, port taken, nothing set up here yet…);
 * - `usage` 2: the invocation or configuration is wrong (unknown option, bad argument, invalid config file, missing key on PostgreSQL);
 * - `notUsable` 3: done, but a grant is not usable (`preflight`, `connections refresh` ending in `error`);
 * - `notFound` 4: the named connection, integration or job does not exist.
 */
export const ExitCode = { ok: 0, runtime: 1, usage: 2, notUsable: 3, notFound: 4 } as const;

/** One of {@link ExitCode}'s values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An error a command reports as one line on stderr, then exits with `exitCode`.
 * The message says what is wrong and what to do; it never holds a secret.
 */
export class CliError extends Error {
  /**
   * @param message one line: what is wrong and what to do next
   * @param exitCode process exit code @defaultValue {@link ExitCode}.runtime
   */
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.runtime,
  ) {
    super(message);
    this.name = "CliError";
  }
}

const SYSTEM_HINTS: Record<string, string> = {
  EADDRINUSE: "another process listens there: stop it or set GRANTKEEPER_PORT",
  EACCES: "permission denied",
  ECONNREFUSED: "nothing answers there: is the database running and the URL right?",
  ENOTFOUND: "host not found: check the URL",
  ETIMEDOUT: "timed out: check the host and the network",
  EHOSTUNREACH: "host unreachable: check the URL and the network",
};

/** The `code` of a Node system error (or of the first error inside an AggregateError), if any. */
function systemCode(e: unknown): string | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") return code;
  if (e instanceof AggregateError) return systemCode(e.errors[0]);
  return undefined;
}

function messageOf(e: unknown): string {
  if (e instanceof AggregateError && e.message === "") return e.errors.map(messageOf).join("; ");
  if (e instanceof Error) return e.message.split("\n")[0] ?? e.name;
  return String(e);
}

/**
 * The exit code and the one line (without the `grantkeeper:` prefix) an error becomes.
 * Mapping: {@link CliError} keeps its own code; a `GrantkeeperError` (src/domain/errors.ts)
 * of kind `invalid_input`, `malformed_request` or `misconfigured` (bad argument,
 * invalid config file, missing key) is a usage error (2), `not_found` is 4, anything else 1. A Node system error
 * (`EADDRINUSE`, `ECONNREFUSED`…) is 1 with a hint on what to check.
 */
export function describeError(e: unknown): { exitCode: ExitCodeValue; line: string } {
  if (e instanceof CliError) return { exitCode: e.exitCode, line: e.message };
  // The store could not be reached: the system error under it (ECONNREFUSED…) says what to check.
  if (isGrantkeeperError(e) && e.code === "store_unavailable" && systemCode(e.cause) !== undefined) return describeError(e.cause);
  if (isGrantkeeperError(e)) {
    const usage = e.kind === "invalid_input" || e.kind === "malformed_request" || e.kind === "misconfigured";
    return { exitCode: usage ? ExitCode.usage : e.kind === "not_found" ? ExitCode.notFound : ExitCode.runtime, line: `${e.message} (${e.code})` };
  }
  const code = systemCode(e);
  if (code !== undefined) {
    const hint = SYSTEM_HINTS[code];
    return { exitCode: ExitCode.runtime, line: `${messageOf(e)}${hint ? ` — ${hint}` : ""}` };
  }
  return { exitCode: ExitCode.runtime, line: messageOf(e) };
}

