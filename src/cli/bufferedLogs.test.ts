/**
 * `serve`'s buffered logger (cliLogger `buffered`): lines leave asynchronously, and none is lost when the
 * process exits — by `process.exit` (what `serve` does after SIGTERM) or by a crash.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const RUNTIME = join(import.meta.dirname, "../../dist/src/cli/runtime.js");

function run(ending: string): { lines: Array<Record<string, unknown>>; status: number | null } {
  const script = `
    const { cliLogger } = await import(${JSON.stringify(RUNTIME)});
    const log = cliLogger("info", { buffered: true });
    for (let i = 0; i < 5000; i++) log.info({ i, accessToken: "secret-" + i }, "line");
    ${ending}`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { lines, status: r.status };
}

describe("serve's buffered log lines", () => {
  it("are all written, in order, when the process exits right after logging them", () => {
    const { lines, status } = run("process.exit(0);");
    expect(status).toBe(0);
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    // Still redacted.
    expect(lines.every((l) => l.accessToken === "[redacted]")).toBe(true);
  });

  it("are all written when the process dies of an uncaught exception", () => {
    const { lines, status } = run('setImmediate(() => { throw new Error("boom"); });');
    expect(status).toBe(1);
    expect(lines).toHaveLength(5000);
  });
});
