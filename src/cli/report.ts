/** Human and JSON reports of the CLI. */
import type { Grantkeeper } from "../grantkeeper.js";
import type { Connection } from "../lifecycle/view.js";
import type { Integration } from "../integrations/view.js";
import type { PreflightResult } from "../lifecycle/preflight.js";
import type { ConnectionFilter } from "../store/connections.js";

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

async function allIntegrations(gk: Grantkeeper): Promise<Integration[]> {
  const out: Integration[] = [];
  let cursor: string | undefined;
  do {
    const page = await gk.integrations.list({}, { limit: 500, ...(cursor ? { cursor } : {}) });
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

const summary = (counts: Record<string, number>) => Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ") || "none";

/** `grantkeeper status`: connections and integrations with state, reason, next refresh, failures. */
export async function printStatus(gk: Grantkeeper, json: boolean): Promise<void> {
  const connections = await all(gk, {});
  const integrations = await allIntegrations(gk);
  const byState = countBy(connections, (c) => c.state);
  const byStatus = countBy(integrations, (i) => i.status);
  if (json) {
    process.stdout.write(
      JSON.stringify({ connections: { total: connections.length, byState, items: connections }, integrations: { total: integrations.length, byStatus, items: integrations } }, null, 2) + "\n",
    );
    return;
  }
  process.stdout.write(`connections: ${connections.length} (${summary(byState)})\n`);
  await printConnections(gk, {}, false);
  process.stdout.write(`\nintegrations: ${integrations.length} (${summary(byStatus)})\n`);
  const rows = [["ID", "NAME", "ENTITY", "STATUS", "REASON", "CAUSE", "CONNECTIONS"]];
  for (const i of integrations) rows.push([i.id, i.name, i.entityId, i.status, i.statusReason ?? "-", i.statusCause?.connectionId ?? i.statusCause?.target ?? "-", i.connectionIds.join(",")]);
  process.stdout.write(integrations.length ? table(rows) : "no integrations\n");
}

/** Print a preflight result as a table or JSON. */
export function printPreflight(result: PreflightResult, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }
  const rows = [["PROVIDER", "USABLE", "STATE", "ACTION", "CONNECT URL", "MISSING SCOPES"]];
  for (const p of result.providers) rows.push([p.providerId, p.usable ? "yes" : "no", p.state ?? "missing", p.action, p.connectUrl ?? "-", p.missingScopes?.join(" ") ?? "-"]);
  process.stdout.write(table(rows));
  process.stdout.write(result.ok ? `all ${result.providers.length} provider(s) usable for ${result.entityId}\n` : `${result.providers.filter((p) => p.action !== "none").length} provider(s) need the user: open the connect URL(s) above\n`);
}
