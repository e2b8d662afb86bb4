/**
 * What every `grantkeeper` command shares: the program, exit codes, the one
 * line an error becomes, TTY-aware progress, and opening grantkeeper for one
 * command. A command lives in its own file, exports a function returning a
 * commander `Command`, and is registered with one line in `main.ts`
 * (`program.addCommand(pruneCommand())`). docs/cli.md lists the commands.
 *
 * Output rules (issue 15 item 7): what the user asked for goes to stdout;
 * logs (pino JSON), progress and errors go to stderr.
 */
import { Command, CommanderError } from "commander";
import { CliError, describeError, ExitCode } from "./exit.js";
import { openRuntime, type Runtime } from "./runtime.js";

export { CliError, ExitCode, type ExitCodeValue } from "./exit.js";

/** The root `grantkeeper` command, before any sub-command is added. */
export function createProgram(version: string): Command {
  return new Command()
    .name("grantkeeper")
    .description("Keeps third-party OAuth 2.0 grants alive and the integrations on top of them healthy.")
    .version(version);
}

/**
 * Apply the CLI's rules to `program` and every command under it, parse
 * `argv` and run the chosen command. Never throws: an error becomes one line
 * on stderr and its exit code (the stack only with `GRANTKEEPER_DEBUG=1`).
 * Commander's own usage errors (unknown command or option, missing argument)
 * exit {@link ExitCode}.usage.
 */
export async function runCli(program: Command, argv: string[] = process.argv): Promise<void> {
  const visit = (c: Command, path: string) => {
    c.exitOverride();
    c.showHelpAfterError(`(run \`${path} --help\` for usage)`);
    c.commands.forEach((sub) => visit(sub, `${path} ${sub.name()}`));
  };
  visit(program, program.name());
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has printed its message (or the help) already.
      process.exitCode = e.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
      return;
    }
    const { exitCode, line } = describeError(e);
    process.stderr.write(`grantkeeper: ${line}\n`);
    if (process.env.GRANTKEEPER_DEBUG === "1" && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = exitCode;
  }
}

/**
 * Open grantkeeper for one command and always close it (draining in-flight
 * work) before returning, whatever the command does.
 * A one-shot command never sets a store up: without a store or an
 * encryption key here it fails with a {@link CliError} naming the command
 * that does (`serve`, `migrate`).
 * @param opts passed to {@link openRuntime} (`create: false` unless given); logs go to stderr at `warn` unless `GRANTKEEPER_LOG_LEVEL` says otherwise
 */
export async function withRuntime<T>(fn: (rt: Runtime) => Promise<T>, opts: Parameters<typeof openRuntime>[0] = {}): Promise<T> {
  const rt = await openRuntime({ logLevel: process.env.GRANTKEEPER_LOG_LEVEL ?? "warn", create: false, ...opts });
  try {
    return await fn(rt);
  } finally {
    await rt.gk.close();
  }
}

/**
 * Progress of long work on stderr: rewritten in place with `\r` on a
 * terminal; on a pipe or file, one plain line at most every `everyMs` (and
 * the last one), so logs stay readable (issue 15 item 7).
 * @param opts.stream where to write @defaultValue process.stderr
 * @param opts.everyMs minimum milliseconds between plain lines @defaultValue 1000
 * @param opts.now clock in epoch milliseconds @defaultValue Date.now
 */
export function progress(opts: { stream?: Pick<NodeJS.WriteStream, "write" | "isTTY">; everyMs?: number; now?: () => number } = {}): { update(text: string): void; done(text?: string): void } {
  const stream = opts.stream ?? process.stderr;
  const everyMs = opts.everyMs ?? 1000;
  const clock = opts.now ?? Date.now;
  const tty = stream.isTTY === true;
  let last = -Infinity;
  let pending: string | undefined;
  return {
    update(text) {
      if (tty) {
        stream.write(`\r${text}\x1b[K`);
        return;
      }
      const now = clock();
      if (now - last >= everyMs) {
        stream.write(`${text}\n`);
        last = now;
        pending = undefined;
      } else pending = text;
    },
    done(text) {
      if (tty) stream.write(text !== undefined ? `\r${text}\x1b[K\n` : "\n");
      else if (text !== undefined) stream.write(`${text}\n`);
      else if (pending !== undefined) stream.write(`${pending}\n`);
    },
  };
}
