/** Spawning the built `grantkeeper` binary the way a user does, for CLI tests (run `npm run build` first). */
import { spawn } from "node:child_process";
import { join } from "node:path";

/** The built CLI entry point. */
export const CLI_MAIN = join(import.meta.dirname, "../../dist/src/cli/main.js");

/** What a finished CLI run left: exit code (null when killed), signal, and both streams as text. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Run `grantkeeper …args` in `cwd` with `env` over this process's environment. Never rejects.
 * @param options.timeoutMs killed after this many milliseconds (default 30,000)
 * @param options.onStderr sees stderr so far as it arrives, with a function that kills the child (SIGKILL)
 */
export function runCli(args: string[], options: { env: Record<string, string>; cwd: string; timeoutMs?: number; onStderr?: (text: string, kill: () => void) => void }): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { env: { ...process.env, ...options.env }, cwd: options.cwd, timeout: options.timeoutMs ?? 30_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => {
      stderr += d;
      options.onStderr?.(stderr, () => child.kill("SIGKILL"));
    });
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
