/**
 * Helpers of the demo (see ./demo.ts): a narrator with timestamps relative to
 * the start, bounded polling, a small API client, and `grantkeeper serve` as a
 * child process whose JSON log lines are narrated (never a token).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

export { sleep };

const tty = process.stdout.isTTY === true && !process.env.NO_COLOR;
const paint = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = paint("1");
const dim = paint("2");
const red = paint("31");

/** Width narrated lines wrap at. */
const WIDTH = 100;

/** Split `text` at spaces into lines of at most `width` characters (longer words stay whole). */
function wrap(text: string, width: number): string[] {
  const indent = /^ */.exec(text)![0];
  const lines: string[] = [];
  let current = indent;
  for (const word of text.slice(indent.length).split(" ")) {
    if (current.trim() && current.length + 1 + word.length > width) {
      lines.push(current);
      current = `${indent}  ${word}`;
    } else current = current.trim() ? `${current} ${word}` : `${current}${word}`;
  }
  return [...lines, current];
}

/** A phase that did not happen in time, or went wrong: the demo stops with this message. */
export class DemoFailure extends Error {
  override name = "DemoFailure";
}

/** Prints short, timestamped lines: a header per step, then what happens. */
export class Narrator {
  private readonly t0 = Date.now();
  private steps = 0;

  /** Seconds since the demo started, e.g. `12.3`. */
  elapsed(at = Date.now()): string {
    return ((at - this.t0) / 1000).toFixed(1);
  }

  /** The demo-relative label of an absolute time (ISO string or ms), e.g. `+12.3s`. */
  rel(at: string | number | null | undefined): string {
    if (at === null || at === undefined) return "-";
    const ms = typeof at === "number" ? at : Date.parse(at);
    return `+${this.elapsed(ms)}s`;
  }

  /** A step header. */
  step(title: string): void {
    this.steps += 1;
    process.stdout.write(`\n${bold(`── ${this.steps}. ${title}`)}\n`);
  }

  /** One narrated line, wrapped at {@link WIDTH} columns. */
  say(text: string): void {
    const stamp = dim(`[${this.elapsed().padStart(5)}s]`);
    process.stdout.write(`${stamp} ${wrap(text, WIDTH - 9).join(`\n${" ".repeat(11)}`)}\n`);
  }

  /** A line without a timestamp (tables). */
  line(text: string): void {
    process.stdout.write(`${text}\n`);
  }

  /** A line from grantkeeper's own log. */
  log(text: string): void {
    this.say(`  ${dim(`gk log │ ${text}`)}`);
  }

  /** A failure line. */
  fail(text: string): void {
    process.stdout.write(`\n${red(bold("DEMO FAILED"))} ${text}\n`);
  }
}

/**
 * Call `probe` every `everyMs` until it returns something other than
 * undefined, at most `maxTries` times.
 * @throws {@link DemoFailure} naming `what` when it never does
 */
export async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, opts: { everyMs?: number; maxTries: number }): Promise<T> {
  for (let i = 0; i < opts.maxTries; i++) {
    const got = await probe();
    if (got !== undefined) return got;
    await sleep(opts.everyMs ?? 1000);
  }
  throw new DemoFailure(`${what}: did not happen within ${opts.maxTries} tries of ${(opts.everyMs ?? 1000) / 1000} s`);
}

/** An HTTP answer with its JSON body parsed. */
export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** A client for grantkeeper's `/v1` API with the bearer key. */
export function apiClient(baseUrl: string, apiKey: string) {
  return async (method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, accept: "application/json", ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep the text */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
}

/** `grantkeeper serve` running as a child process. */
export interface ServeProcess {
  child: ChildProcess;
  /** Set when the process exited before {@link ServeProcess.stop} was called. */
  crashed(): string | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Picks the log lines a newcomer cares about and phrases them; undefined to skip. */
function phrase(line: Record<string, any>): string | undefined {
  const msg = String(line.msg ?? "");
  if (msg === "refresh attempt") {
    // pino's redaction list has a bare "code" path (meant for authorization codes), which also hides this field.
    const code = line.code === undefined ? "" : ` code=${line.code}`;
    const tail = line.consecutiveFailures !== undefined ? ` failures=${line.consecutiveFailures}` : "";
    return `refresh attempt: result=${line.result} class=${line.class} reason=${line.reason}${code}${tail}`;
  }
  if (msg === "grantkeeper serving") return `serving on ${line.url}`;
  if (msg === "grant stored") return `grant stored for ${line.connectionId} (${line.source})`;
  if (msg === "http request" || msg.startsWith("generated a secret")) return undefined;
  if (Number(line.level) >= 40) return `${msg}${line.reason ? `: ${line.reason}` : ""}`;
  if (msg === "shutting down") return `shutting down (${line.signal})`;
  return undefined;
}

/**
 * Spawn `node dist/src/cli/main.js serve` with `env` added to ours; the JSON
 * log lines (on stderr) go through `onLine` (raw) and the narrator (phrased).
 */
export function spawnServe(mainJs: string, env: Record<string, string>, narrator: Narrator, onLine: (line: Record<string, any>, raw: string) => void): ServeProcess {
  const child = spawn(process.execPath, [mainJs, "serve"], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stopping = false;
  let crash: string | undefined;
  const stderr: string[] = [];
  // Logs (pino JSON lines) come on stderr; anything else there is kept for a crash report.
  createInterface({ input: child.stderr! }).on("line", (text) => {
    stderr.push(text);
    if (stderr.length > 100) stderr.shift();
    let line: Record<string, any>;
    try {
      line = JSON.parse(text) as Record<string, any>;
    } catch {
      return;
    }
    onLine(line, text);
    const p = phrase(line);
    if (p) narrator.log(p);
  });
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      if (!stopping) crash = `grantkeeper exited early (code ${code}, signal ${signal}); stderr:\n${stderr.slice(-15).join("\n")}`;
      resolve();
    });
  });
  return {
    child,
    crashed: () => crash,
    async stop(graceMs = 5000) {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
