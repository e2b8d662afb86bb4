/** Human and JSON reports of the CLI. */
import { loadConfig } from "../config/config.js";
import type { Grantkeeper } from "../grantkeeper.js";
import type { Connection } from "../lifecycle/view.js";
import type { ConnectionFilter } from "../store/connections.js";
import { isReachable, openStore } from "../store/database.js";
import { pendingMigrations } from "../store/migrations.js";
import { dataDirOf } from "./secrets.js";

async function all(gk: Grantkeeper, filter: ConnectionFilter): Promise<Connection[]> {
  const out: Connection[] = [];
  let cursor: string | undefined;
  do {
    const page = await gk.connections.list(filter, { limit: 500, ...(cursor ? { cursor } : {}) });
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}

/** Print connections as a table or JSON. */
export async function printConnections(gk: Grantkeeper, filter: ConnectionFilter, json: boolean): Promise<void> {
  const items = await all(gk, filter);
  if (json) {
    process.stdout.write(JSON.stringify({ items }, null, 2) + "\n");
    return;
  }
  const rows = [["ID", "PROVIDER", "ENTITY", "STATE", "USABLE", "NEXT REFRESH", "FAILURES", "LAST ERROR"]];
  for (const c of items) rows.push([c.id, c.providerId, c.entityId, c.state, c.usable ? "yes" : "no", c.nextRefreshAt ?? "-", String(c.consecutiveFailures), c.lastError ? `${c.lastError.class}:${c.lastError.code}` : "-"]);
  process.stdout.write(items.length ? table(rows) : "no connections\n");
}

/** `grantkeeper status`: counts by state, then every connection. */
export async function printStatus(gk: Grantkeeper, json: boolean): Promise<void> {
  const items = await all(gk, {});
  const byState: Record<string, number> = {};
  for (const c of items) byState[c.state] = (byState[c.state] ?? 0) + 1;
  if (json) {
    process.stdout.write(JSON.stringify({ connections: { total: items.length, byState, items } }, null, 2) + "\n");
    return;
  }
  process.stdout.write(`connections: ${items.length} (${Object.entries(byState).map(([k, v]) => `${k} ${v}`).join(", ") || "none"})\n\n`);
  await printConnections(gk, {}, false);
}

/**
 * `grantkeeper doctor`: configuration, keys, store, migrations.
 * @returns exit code: 0 all good, 1 something needs attention
 */
export async function doctor(): Promise<number> {
  let ok = true;
  const line = (good: boolean, text: string) => {
    ok &&= good;
    process.stdout.write(`${good ? "ok  " : "FAIL"} ${text}\n`);
  };
  let config;
  try {
    config = loadConfig();
    line(true, `config ${config.configPath ?? "(defaults, no file)"}`);
  } catch (e) {
    line(false, (e as Error).message);
    return 1;
  }
  const dir = dataDirOf(config.databaseUrl);
  line(config.apiKey !== undefined || dir !== undefined, `API key ${config.apiKey ? "from GRANTKEEPER_API_KEY" : dir ? `generated in ${dir}` : "missing (required with PostgreSQL)"}`);
  line(config.encryptionKey !== undefined || dir !== undefined, `encryption key ${config.encryptionKey ? "from GRANTKEEPER_ENCRYPTION_KEY" : dir ? `generated in ${dir}` : "missing (required with PostgreSQL)"}`);
  try {
    const store = await openStore(config.databaseUrl);
    try {
      const reachable = await isReachable(store);
      line(reachable, `store ${store.location} ${reachable ? "reachable" : "unreachable"}`);
      if (reachable) {
        const pending = await pendingMigrations(store);
        line(pending.length === 0, pending.length ? `pending migrations: ${pending.join(", ")} (run grantkeeper migrate)` : "migrations up to date");
      }
    } finally {
      await store.close();
    }
  } catch (e) {
    line(false, `store: ${(e as Error).message}`);
  }
  line(new URL(config.publicUrl).protocol === "https:" || ["127.0.0.1", "localhost"].includes(new URL(config.publicUrl).hostname), `public URL ${config.publicUrl} (redirect URI ${config.publicUrl}/v1/oauth/callback)`);
  return ok ? 0 : 1;
}
