/**
 * The runbook the dashboard links error codes to: the code tables of
 * docs/troubleshooting.md ("`lastError.code` of a connection", "… of a job"),
 * read from the installed package (package.json `files` ships that file) and
 * rendered with one anchor per code, so the dashboard and the docs cannot
 * say different things.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One row of a code table. */
export interface RunbookEntry {
  /** The codes the row is about (a row may name several: `` `http_408`, `timeout` ``). */
  codes: string[];
  /** The row's cells after the code cell, markdown as written (class/state, cause, fix). */
  cells: string[];
}

/** A code table of the runbook. */
export interface RunbookSection {
  /** `connection` or `job`. */
  kind: "connection" | "job";
  title: string;
  /** Column headers after the code column. */
  headers: string[];
  entries: RunbookEntry[];
}

/** The anchor id of a code on the runbook page: `connection-invalid_grant`, `job-http_5xx`. */
export const runbookAnchor = (kind: "connection" | "job", code: string) => `${kind}-${code.replace(/[^A-Za-z0-9_-]/g, "_")}`;

function findDoc(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "docs", "troubleshooting.md");
    if (existsSync(join(dir, "package.json")) && existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

const cellsOf = (line: string) => line.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());

/**
 * Parse the code tables of troubleshooting.md text.
 * @param markdown the document's text
 */
export function parseRunbook(markdown: string): RunbookSection[] {
  const out: RunbookSection[] = [];
  let current: RunbookSection | undefined;
  for (const line of markdown.split("\n")) {
    const heading = /^## `lastError\.code` of a (connection|job)\s*$/.exec(line);
    if (heading) {
      current = { kind: heading[1] as "connection" | "job", title: line.slice(3).replaceAll("`", ""), headers: [], entries: [] };
      out.push(current);
      continue;
    }
    if (line.startsWith("## ")) current = undefined;
    if (!current || !line.trim().startsWith("|")) continue;
    const cells = cellsOf(line);
    if (cells.every((c) => /^-+$/.test(c))) continue;
    if (current.headers.length === 0) {
      current.headers = cells.slice(1);
      continue;
    }
    const codes = [...cells[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    current.entries.push({ codes, cells: cells.slice(1) });
  }
  return out;
}

let cached: RunbookSection[] | undefined;

/** The runbook of the installed package (empty when the document is missing). Read once. */
export function runbook(): RunbookSection[] {
  if (!cached) {
    const file = findDoc();
    cached = file ? parseRunbook(readFileSync(file, "utf8")) : [];
  }
  return cached;
}

/**
 * The runbook code a stored code is filed under: itself when it has an entry,
 * else its status family (`http_503` → `http_5xx`, `http_404` → `http_4xx`),
 * else undefined (no entry: the code is shown without a link).
 */
export function runbookCode(kind: "connection" | "job", code: string): string | undefined {
  const has = (c: string) => runbook().some((s) => s.kind === kind && s.entries.some((e) => e.codes.includes(c)));
  if (has(code)) return code;
  const family = /^http_(\d)\d\d$/.exec(code);
  return family && has(`http_${family[1]}xx`) ? `http_${family[1]}xx` : undefined;
}
