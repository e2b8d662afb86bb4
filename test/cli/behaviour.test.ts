/**
 * The CLI as a newcomer meets it (issue 15 item 7): the built binary spawned
 * in empty directories, asserting stdout, stderr and exit codes. Run
 * `npm run build` first.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/database.js";
import { migrateTo, pendingMigrations } from "../../src/store/migrations.js";
import { testKey } from "../support/backend.js";

const MAIN = join(import.meta.dirname, "../../dist/src/cli/main.js");
const dirs: string[] = [];

function emptyDir(): string {
  const d = mkdtempSync(join(tmpdir(), "gk-cli-"));
  dirs.push(d);
  return d;
}

/** Environment without any GRANTKEEPER_* variable of the test runner, plus `extra`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("GRANTKEEPER_")) env[k] = v;
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], opts: { cwd: string; env?: Record<string, string>; until?: (r: Run) => boolean }): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(MAIN, args, { cwd: opts.cwd, env: cleanEnv(opts.env ?? {}), timeout: 30_000 });
    const r: Run = { code: null, stdout: "", stderr: "" };
    const check = () => {
      if (opts.until?.(r)) child.kill("SIGTERM");
    };
    child.stdout.on("data", (d) => ((r.stdout += d), check()));
    child.stderr.on("data", (d) => ((r.stderr += d), check()));
    child.on("close", (code) => resolve({ ...r, code }));
  });
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const noStack = (text: string) => expect(text).not.toMatch(/^\s+at /m);
const oneLine = (text: string) => expect(text.trimEnd().split("\n")).toHaveLength(1);

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("grantkeeper binary", { timeout: 120_000 }, () => {
  it("is executable with a shebang, and --help lists the commands on stdout with exit 0", async () => {
    expect(statSync(MAIN).mode & 0o111).not.toBe(0);
    const r = await run(["--help"], { cwd: emptyDir() });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: grantkeeper/);
    for (const c of ["serve", "migrate", "status", "connections", "preflight", "replay", "doctor"]) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, "m"));
    expect(r.stderr).toBe("");
  });

  it("`npx grantkeeper` runs the package's bin from the repository (as the README shows)", async () => {
    const r = await new Promise<Run>((resolve) => {
      const child = spawn("npx", ["--offline", "--no-install", "grantkeeper", "--version"], { cwd: join(import.meta.dirname, "../.."), env: cleanEnv({}), timeout: 60_000 });
      const out: Run = { code: null, stdout: "", stderr: "" };
      child.stdout.on("data", (d) => (out.stdout += d));
      child.stderr.on("data", (d) => (out.stderr += d));
      child.on("close", (code) => resolve({ ...out, code }));
    });
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(r.code).toBe(0);
  });

  it("usage errors — unknown command, unknown option, missing argument — exit 2 with the problem on stderr", async () => {
    const dir = emptyDir();
    const unknown = await run(["stauts"], { cwd: dir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'stauts'");
    expect(unknown.stdout).toBe("");
    const option = await run(["status", "--jsno"], { cwd: dir });
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("unknown option '--jsno'");
    expect(option.stderr).toContain("grantkeeper status --help");
    const missing = await run(["replay"], { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'integrationId'");
    const badValue = await run(["connections", "list", "--state", "fine"], { cwd: dir });
    expect(badValue.code).toBe(2);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("commands other than serve and migrate, in an empty directory, create nothing and say how to start, exit 1", async () => {
    const dir = emptyDir();
    for (const args of [["status"], ["status", "--json"], ["connections", "list"], ["connections", "show", "conn_x"], ["connections", "refresh", "conn_x"], ["replay", "int_x"], ["preflight", "--entity", "e", "--providers", "acme"]]) {
      const r = await run(args, { cwd: dir });
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stdout).toBe("");
      oneLine(r.stderr);
      expect(r.stderr).toMatch(/^grantkeeper: no store here: sqlite:\.\/data\/grantkeeper\.db does not exist; run `grantkeeper serve` \(or `grantkeeper migrate`\)/);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it("doctor on a fresh install says what to run (todo lines, not FAIL), creates nothing and exits 0", async () => {
    const dir = emptyDir();
    const r = await run(["doctor"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("FAIL");
    expect(r.stdout).toMatch(/^todo store sqlite:\.\/data\/grantkeeper\.db does not exist yet: run `grantkeeper migrate`/m);
    expect(r.stdout).toMatch(/^todo encryption key not generated yet/m);
    expect(readdirSync(dir)).toEqual([]);
    // After migrate the store is there; keys still are not (only serve generates them), and status says so.
    const m = await run(["migrate"], { cwd: dir });
    expect(m.code).toBe(0);
    expect(m.stdout).toMatch(/^applied \d+ migration\(s\) to sqlite:\.\/data\/grantkeeper\.db/);
    const again = await run(["doctor"], { cwd: dir });
    expect(again.stdout).toMatch(/^ok   migrations up to date/m);
    const status = await run(["status"], { cwd: dir });
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/^grantkeeper: no encryption key here: .*encryption-key does not exist; set GRANTKEEPER_ENCRYPTION_KEY/);
    expect(readdirSync(join(dir, "data")).filter((f) => f.endsWith("key"))).toEqual([]);
  });

  it("status on a migrated store with a key prints the summary on stdout and no log line", async () => {
    const dir = emptyDir();
    const env = { GRANTKEEPER_ENCRYPTION_KEY: testKey(), GRANTKEEPER_LOG_LEVEL: "debug" };
    expect((await run(["migrate"], { cwd: dir, env })).code).toBe(0);
    const r = await run(["status"], { cwd: dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^connections: 0 \(none\)\nno connections\n\nintegrations: 0 \(none\)\nno integrations\n$/);
    expect(readdirSync(join(dir, "data")).filter((f) => f.endsWith("key"))).toEqual([]);
  });

  it("read-only commands on a store that needs migrations say so and migrate nothing", async () => {
    const dir = emptyDir();
    const url = `sqlite:${join(dir, "gk.db")}`;
    const store = await openStore(url);
    try {
      await migrateTo(store, "0001_core");
    } finally {
      await store.close();
    }
    const env = { GRANTKEEPER_DATABASE_URL: url, GRANTKEEPER_ENCRYPTION_KEY: testKey() };
    const status = await run(["status"], { cwd: dir, env });
    expect(status.code).toBe(1);
    oneLine(status.stderr);
    expect(status.stderr).toMatch(/^grantkeeper: the store at sqlite:.*gk\.db needs \d+ migration\(s\); run `grantkeeper migrate`\n$/);
    const doctor = await run(["doctor"], { cwd: dir, env });
    expect(doctor.code).toBe(0);
    expect(doctor.stdout).toMatch(/^todo \d+ pending migration\(s\): run `grantkeeper migrate`/m);
    const again = await openStore(url);
    try {
      expect((await pendingMigrations(again)).length).toBeGreaterThan(0);
    } finally {
      await again.close();
    }
  });

  it("serve: the summary on stdout, JSON logs only on stderr", async () => {
    const dir = emptyDir();
    const port = await closedPort();
    const r = await run(["serve"], { cwd: dir, env: { GRANTKEEPER_PORT: String(port), GRANTKEEPER_LOG_LEVEL: "info" }, until: (x) => x.stderr.includes('"msg":"grantkeeper serving"') && x.stdout.includes("dashboard:") });
    expect(r.stdout).toContain(`grantkeeper listening on http://127.0.0.1:${port}`);
    expect(r.stdout).toContain(`dashboard: http://127.0.0.1:${port}/ (sign in with the API key)`);
    expect(r.stdout.split("\n").filter((l) => l.trimStart().startsWith("{"))).toEqual([]);
    const logs = r.stderr.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { msg: string });
    expect(logs.map((l) => l.msg)).toContain("grantkeeper serving");
    expect(r.code).toBe(0);
  });

  it("serve on a port in use: one line naming the address and what to do, exit 1", async () => {
    const dir = emptyDir();
    const busy: Server = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await run(["serve"], { cwd: dir, env: { GRANTKEEPER_PORT: String(port), GRANTKEEPER_LOG_LEVEL: "error" } });
      expect(r.code).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toBe(`grantkeeper: listen EADDRINUSE: address already in use 127.0.0.1:${port} — another process listens there: stop it or set GRANTKEEPER_PORT\n`);
      expect(r.stdout).toBe("");
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  });

  it("an unreachable PostgreSQL URL is one line with a hint, exit 1, for status, refresh and doctor alike", async () => {
    const dir = emptyDir();
    const port = await closedPort();
    const env = { GRANTKEEPER_DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/test`, GRANTKEEPER_API_KEY: "k", GRANTKEEPER_ENCRYPTION_KEY: testKey() };
    for (const args of [["status"], ["connections", "refresh", "conn_x"], ["migrate"]]) {
      const r = await run(args, { cwd: dir, env });
      expect(r.code, args.join(" ")).toBe(1);
      oneLine(r.stderr);
      noStack(r.stderr);
      expect(r.stderr).toBe(`grantkeeper: connect ECONNREFUSED 127.0.0.1:${port} — nothing answers there: is the database running and the URL right?\n`);
    }
    const doctor = await run(["doctor"], { cwd: dir, env });
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/^FAIL store: connect ECONNREFUSED/m);
    expect(readdirSync(dir)).toEqual([]);
  });
});
