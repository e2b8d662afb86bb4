import { describe, expect, it } from "vitest";
import { Command } from "commander";
import { createProgram, progress, runCli } from "./command.js";
import { GrantkeeperError } from "../domain/errors.js";
import { CliError, describeError, ExitCode } from "./exit.js";

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { stream: { isTTY, write: (s: string) => (out.push(s), true) } as never, text: () => out.join("") };
}

describe("progress", () => {
  it("rewrites one line with \\r on a terminal", () => {
    const s = sink(true);
    const p = progress({ stream: s.stream });
    p.update("replayed 1 job(s)…");
    p.update("replayed 2 job(s)…");
    p.done("replayed 2 job(s)");
    expect(s.text()).toBe("\rreplayed 1 job(s)…\x1b[K\rreplayed 2 job(s)…\x1b[K\rreplayed 2 job(s)\x1b[K\n");
  });

  it("writes plain lines, at most one per interval, and never \\r on a pipe", () => {
    const s = sink(false);
    let now = 0;
    const p = progress({ stream: s.stream, everyMs: 1000, now: () => now });
    p.update("a 1");
    now = 500;
    p.update("a 2");
    now = 1000;
    p.update("a 3");
    now = 1200;
    p.update("a 4");
    p.done();
    expect(s.text()).toBe("a 1\na 3\na 4\n");
    expect(s.text()).not.toContain("\r");
  });
});

describe("describeError", () => {
  it("maps kinds to exit codes and keeps one line", () => {
    expect(describeError(new GrantkeeperError("connection_not_found", "no connection conn_x"))).toEqual({ exitCode: ExitCode.notFound, line: "no connection conn_x (connection_not_found)" });
    expect(describeError(new GrantkeeperError("invalid_config", "refresh.marginSecs: unknown key")).exitCode).toBe(ExitCode.usage);
    expect(describeError(new GrantkeeperError("integration_not_enabled", "is DISABLED")).exitCode).toBe(ExitCode.runtime);
    expect(describeError(new CliError("no store here", ExitCode.runtime))).toEqual({ exitCode: 1, line: "no store here" });
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1\n    at x"), { code: "ECONNREFUSED" });
    expect(describeError(new AggregateError([refused], ""))).toEqual({ exitCode: 1, line: "connect ECONNREFUSED 127.0.0.1:1 — nothing answers there: is the database running and the URL right?" });
    expect(describeError(new Error("boom\n    at y"))).toEqual({ exitCode: 1, line: "boom" });
  });
});

describe("runCli", () => {
  it("a command's error becomes one stderr line and its exit code; commander's usage errors exit 2", async () => {
    const program = createProgram("0.0.0");
    program.addCommand(new Command("fail").action(() => {
      throw new CliError("nothing here", ExitCode.runtime);
    }));
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (written.push(s), true)) as typeof process.stderr.write;
    const before = process.exitCode;
    try {
      await runCli(program, ["node", "grantkeeper", "fail"]);
      expect(process.exitCode).toBe(1);
      expect(written.join("")).toBe("grantkeeper: nothing here\n");
      written.length = 0;
      await runCli(program, ["node", "grantkeeper", "fail", "--nope"]);
      expect(process.exitCode).toBe(2);
      expect(written.join("")).toContain("unknown option '--nope'");
    } finally {
      process.stderr.write = write;
      process.exitCode = before;
    }
  });
});
