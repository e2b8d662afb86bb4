/**
 * Shared pieces of the benchmarks: progress lines, machine facts, the tiny
 * local token endpoint (run in its own process so its sockets and CPU do not
 * count against the process being measured), child processes with an IPC
 * protocol and hard time limits, and number formatting.
 */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { ProviderInput } from "../src/providers/definition.js";

/** One benchmark's contribution to docs/benchmarks.md. */
export interface BenchReport {
  name: string;
  title: string;
  /** Markdown body (what it measures, baseline, results). */
  markdown: string;
  /** Whether the stated goal was met in this run. */
  goalMet: boolean;
}

/** Options every benchmark receives from bench/run.ts. */
export interface BenchOptions {
  /** Smaller N, for a smoke check. */
  quick: boolean;
}

const startedAt = performance.now();

/** Print a progress line, with seconds since the run started. */
export function progress(message: string): void {
  process.stdout.write(`[bench +${((performance.now() - startedAt) / 1000).toFixed(1)}s] ${message}\n`);
}

/** Facts about this machine for the report header. */
export function machineFacts(): Record<string, string> {
  return {
    node: process.version,
    cores: String(availableParallelism()),
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    platform: `${process.platform} ${process.arch}`,
    "load average at start (1/5/15 min)": loadavg().map((l) => l.toFixed(2)).join(" / "),
    source: sourceVersion(),
    date: new Date().toISOString(),
  };
}

/** The commit the benchmarked code was built from, and whether src/ had uncommitted changes. */
function sourceVersion(): string {
  const git = (...args: string[]) => execFileSync("git", args, { cwd: resolve(benchDir, "..", ".."), timeout: 5_000, encoding: "utf8" }).trim();
  try {
    const dirty = git("status", "--porcelain", "--", "src").split("\n").filter(Boolean).length;
    return `git ${git("rev-parse", "--short", "HEAD")}${dirty ? ` + uncommitted changes in ${dirty} src/ file(s)` : ""}`;
  } catch {
    return "unknown (not a git checkout)";
  }
}

/** Directory of the compiled benchmark scripts (dist/bench). */
export const benchDir = dirname(fileURLToPath(import.meta.url));

/** Scratch directory for benchmark databases (git-ignored). Created on demand. */
export function scratchDir(): string {
  const dir = resolve(benchDir, "..", "..", ".bench-out");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Delete a SQLite database file and its WAL/SHM companions. */
export function removeSqlite(path: string): void {
  for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(path + suffix, { force: true });
}

/** A fresh random 32-byte key, base64 (benchmarks never reuse keys). */
export function benchKey(): string {
  return randomBytes(32).toString("base64");
}

/** The provider every benchmark defines, pointing at the local token endpoint. */
export function benchProvider(origin: string): ProviderInput {
  return {
    displayName: "bench",
    authorizationEndpoint: `${origin}/auth`,
    tokenEndpoint: `${origin}/token`,
    clientId: "bench-client",
    clientSecret: "bench-secret",
  };
}

/** Deterministic connection id of the i-th seeded benchmark grant (`conn_` + 26 characters). */
export function benchConnectionId(i: number): string {
  return `conn_bench${String(i).padStart(21, "0")}`;
}

/** Reject after `ms` milliseconds: every wait in the benchmarks is bounded. */
export async function withTimeout<T>(p: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** A message between a benchmark and its child process. */
export interface ChildMessage {
  type: string;
  [key: string]: unknown;
}

/** A forked benchmark script with request/response helpers over IPC. */
export class BenchChild {
  private readonly inbox: ChildMessage[] = [];
  private waiters: Array<() => void> = [];
  private exited: string | undefined;
  /** The child process. */
  readonly proc: ChildProcess;

  /**
   * @param script file name in dist/bench, e.g. `tokenServer.js`
   * @param label prefix of the child's progress lines
   */
  constructor(
    script: string,
    readonly label: string,
    execArgv: string[] = [],
  ) {
    this.proc = fork(join(benchDir, script), [], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv });
    this.proc.on("message", (m: ChildMessage) => {
      if (m.type === "progress") progress(`${label}: ${String(m.message)}`);
      else this.inbox.push(m);
      this.notify();
    });
    this.proc.on("exit", (code, signal) => {
      this.exited = `${label} exited (code ${code}, signal ${signal})`;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Send a message to the child. */
  send(m: ChildMessage): void {
    this.proc.send(m);
  }

  /**
   * The next message of `type` (earlier messages of other types are kept).
   * @throws when the child exits first, sends `error`, or `timeoutMs` passes
   */
  async next(type: string, timeoutMs: number): Promise<ChildMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const err = this.inbox.findIndex((m) => m.type === "error");
      if (err >= 0) throw new Error(`${this.label}: ${String(this.inbox[err]!.message)}`);
      const i = this.inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      if (this.exited) throw new Error(`${this.exited} before sending "${type}"`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label}: no "${type}" within ${timeoutMs} ms`);
      await withTimeout(new Promise<void>((r) => this.waiters.push(r)), left, this.label).catch(() => undefined);
    }
  }

  /** Kill the child (SIGKILL) if it is still running, and wait for its exit. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.proc.once("exit", () => r()));
    // Profiling (GK_BENCH_PROFILE): let the child exit by itself so that node writes its CPU profile.
    if (process.env.GK_BENCH_PROFILE && this.proc.connected) {
      this.proc.disconnect();
      if (await withTimeout(gone, 10_000, `${this.label} exit`).then(() => true, () => false)) return;
    }
    this.proc.kill("SIGKILL");
    await withTimeout(gone, 5_000, `${this.label} kill`).catch(() => undefined);
  }
}

/** Helpers for the child side of {@link BenchChild}. */
export const parent = {
  /** Send a message to the parent process. */
  send(m: ChildMessage): Promise<void> {
    return new Promise((r) => (process.send ? process.send(m, undefined, {}, () => r()) : r()));
  },
  /** Send a progress line. */
  progress(message: string): void {
    process.send?.({ type: "progress", message });
  },
  /** The next message from the parent (bounded). */
  next(timeoutMs: number): Promise<ChildMessage> {
    return withTimeout(new Promise<ChildMessage>((r) => process.once("message", (m: ChildMessage) => r(m))), timeoutMs, "waiting for parent");
  },
  /** Report an error to the parent, then exit non-zero. */
  async fail(e: unknown): Promise<never> {
    await parent.send({ type: "error", message: (e as Error)?.stack ?? String(e) });
    process.exit(1);
  },
};

/** The local token endpoint (bench/tokenServer.ts) running in its own process. */
export interface TokenServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Token requests answered since the last reset. */
  requests(): Promise<number>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Start the token endpoint in a child process.
 * @param delayMs how long each token answer takes, in milliseconds
 */
export async function startTokenServer(delayMs: number): Promise<TokenServer> {
  const child = new BenchChild("tokenServer.js", "token endpoint");
  child.send({ type: "start", delayMs });
  const { port } = await child.next("listening", 10_000);
  const origin = `http://127.0.0.1:${String(port)}`;
  const ask = async (type: string) => {
    child.send({ type });
    return (await child.next(`${type}:ok`, 10_000)).requests as number;
  };
  return { origin, requests: () => ask("stats"), reset: async () => void (await ask("reset")), close: () => child.stop() };
}

/**
 * The nearest-rank quantile `q` (0..1) of values sorted ascending; NaN for none.
 * @param sorted ascending (the caller sorts once for several quantiles)
 */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Megabytes (2^20 bytes), one decimal. */
export function mb(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

/** A number with thousands separators, `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "0.25×" style ratio of ours to the baseline; "n/a" when the baseline is 0. */
export function ratio(ours: number, baseline: number): string {
  if (baseline === 0) return "n/a";
  const r = ours / baseline;
  return `${r >= 0.01 ? r.toFixed(2) : r.toPrecision(2)}×`;
}

/** A Markdown table from a header row and data rows. */
export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** The local PostgreSQL every benchmark uses (stack.md: 127.0.0.1:5432, trust auth, database `test`). */
export const PG_BASE = "postgres://postgres@127.0.0.1:5432/test";

/**
 * Ask the local PostgreSQL for a CHECKPOINT now, so that the writes of earlier
 * phases are flushed before the next measured one starts, and the next
 * time- or WAL-triggered checkpoint is far off: a checkpoint's writes and
 * fsyncs compete with every commit on this machine's disk (docs/benchmarks.md,
 * retention), and one running in one queue's round and not another's
 * measures the checkpoint, not the queue (the log showed one writing through
 * a grantkeeper round of 2,021 jobs/s, between rounds of 3,779 and 4,768).
 * Every store shares the disk, so it runs before every phase it is used
 * for, whatever the engine.
 */
export function pgCheckpoint(): Promise<void> {
  return adminQuery("CHECKPOINT");
}

/** Drop (and so empty) a PostgreSQL schema. */
export function dropSchema(schema: string): Promise<void> {
  return adminQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** Run one statement of the benchmarks' own on the local PostgreSQL, on a client of its own. */
async function adminQuery(text: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_BASE });
  await admin.connect();
  try {
    await admin.query(text);
  } finally {
    await admin.end();
  }
}
