/** `grantkeeper doctor`: configuration, keys, store and migrations, checked without changing anything. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { loadConfig } from "../config/config.js";
import { isReachable, openStore } from "../store/database.js";
import { pendingMigrations } from "../store/migrations.js";
import { ExitCode } from "./command.js";
import { describeError } from "./exit.js";
import { sqliteFileOf } from "./runtime.js";
import { dataDirOf } from "./secrets.js";
import { keyUsageLines } from "./keys.js";

/** Outcome of one check: `ok`, `todo` (a step still to take on a fresh install, not a fault) or `FAIL`. */
type Mark = "ok" | "todo" | "FAIL";

/**
 * Run every check, printing one line each (`ok`, `todo` or `FAIL` then the
 * finding). Creates nothing: a missing store or key is a `todo` naming the
 * command that sets it up (`grantkeeper migrate`, `grantkeeper serve`).
 * @returns exit code: 0 when nothing FAILs (todos allowed), 1 otherwise, 2 for an invalid configuration
 */
export async function doctor(): Promise<number> {
  let failed = false;
  const line = (mark: Mark, text: string) => {
    if (mark === "FAIL") failed = true;
    process.stdout.write(`${mark.padEnd(4)} ${text}\n`);
  };
  let config;
  try {
    config = loadConfig();
    line("ok", `config ${config.configPath ?? "(defaults, no file)"}`);
  } catch (e) {
    line("FAIL", describeError(e).line);
    return ExitCode.usage;
  }
  const dir = dataDirOf(config.databaseUrl);
  for (const [what, env, value, file] of [
    ["API key", "GRANTKEEPER_API_KEY", config.apiKey, "api-key"],
    ["encryption key", "GRANTKEEPER_ENCRYPTION_KEY", config.encryptionKey, "encryption-key"],
  ] as const) {
    if (value !== undefined) line("ok", `${what} from ${env}`);
    else if (dir === undefined) line("FAIL", `${what} missing: set ${env} (required with PostgreSQL: every instance must share it)`);
    else if (existsSync(join(dir, file))) line("ok", `${what} in ${join(dir, file)}`);
    else line("todo", `${what} not generated yet: \`grantkeeper serve\` writes one to ${join(dir, file)} (or set ${env})`);
  }
  const file = sqliteFileOf(config.databaseUrl);
  if (file !== undefined && !existsSync(file)) {
    line("todo", `store ${config.databaseUrl} does not exist yet: run \`grantkeeper migrate\` (serve also migrates at start)`);
  } else {
    try {
      const store = await openStore(config.databaseUrl);
      try {
        const reachable = await isReachable(store);
        line(reachable ? "ok" : "FAIL", `store ${store.location} ${reachable ? "reachable" : "unreachable: check GRANTKEEPER_DATABASE_URL and that the database runs"}`);
        if (reachable) {
          const pending = await pendingMigrations(store);
          line(pending.length ? "todo" : "ok", pending.length ? `${pending.length} pending migration(s): run \`grantkeeper migrate\` (serve also migrates at start)` : "migrations up to date");
          // Rows per encryption key id per column (issue 13): what a rotation has left.
          if (pending.length === 0) for (const l of await keyUsageLines(store, config)) line(l.mark, l.text);
        }
      } finally {
        await store.close();
      }
    } catch (e) {
      line("FAIL", `store: ${describeError(e).line}`);
    }
  }
  const url = new URL(config.publicUrl);
  line(url.protocol === "https:" || ["127.0.0.1", "localhost"].includes(url.hostname) ? "ok" : "FAIL", `public URL ${config.publicUrl} (redirect URI ${config.publicUrl}/v1/oauth/callback)${url.protocol === "https:" || ["127.0.0.1", "localhost"].includes(url.hostname) ? "" : ": must be https outside loopback"}`);
  return failed ? ExitCode.runtime : ExitCode.ok;
}

/** The `doctor` command: exit 0 when nothing fails (steps still to take on a fresh install are `todo` lines), 1 when something does. */
export function doctorCommand(): Command {
  return new Command("doctor").description("check configuration, keys, store and migrations (read-only)").action(async () => {
    process.exitCode = await doctor();
  });
}
