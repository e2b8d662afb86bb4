/** `grantkeeper connections list|show|refresh`. */
import { Command, Option } from "commander";
import { CONNECTION_STATES } from "../domain/states.js";
import { ExitCode, withRuntime } from "./command.js";
import { printConnections } from "./report.js";

/**
 * The `connections` command group. `list` and `show` are read-only (they
 * create no store or key, exit 1 when there is none); `refresh` calls the
 * provider now and exits 3 when the grant ends in `error`.
 */
export function connectionsCommand(): Command {
  const connections = new Command("connections").description("inspect and refresh connections");
  connections
    .command("list")
    .description("connections with state, next refresh and last error (read-only)")
    .option("--entity <entityId>", "only this end user or account")
    .option("--provider <providerId>", "only this provider")
    .addOption(new Option("--state <state>", "only this state").choices([...CONNECTION_STATES]))
    .option("--json", "print JSON")
    .action(async (o: { entity?: string; provider?: string; state?: string; json?: boolean }) => {
      await withRuntime(
        async (rt) => {
          await printConnections(rt.gk, { ...(o.entity ? { entityId: o.entity } : {}), ...(o.provider ? { providerId: o.provider } : {}), ...(o.state ? { state: o.state } : {}) }, o.json === true);
        },
        { readOnly: true },
      );
    });
  connections
    .command("show <id>")
    .description("one connection and its recent history, as JSON (read-only)")
    .action(async (id: string) => {
      await withRuntime(
        async (rt) => {
          const c = await rt.gk.connections.get(id);
          const ev = await rt.gk.connections.events(id, { limit: 20 });
          process.stdout.write(JSON.stringify({ connection: c, recentEvents: ev.items }, null, 2) + "\n");
        },
        { readOnly: true },
      );
    });
  connections
    .command("refresh <id>")
    .description("refresh now (single-flight, rate limited); exit 3 when the grant is dead")
    .action(async (id: string) => {
      // withRuntime awaits gk.close(): the refresh and what it triggers finish before the process exits.
      await withRuntime(async (rt) => {
        const c = await rt.gk.connections.refresh(id);
        process.stdout.write(`${c.id} ${c.state}${c.lastError ? ` (${c.lastError.class} ${c.lastError.code})` : ""} next refresh ${c.nextRefreshAt ?? "never"}\n`);
        if (c.state === "error") process.exitCode = ExitCode.notUsable;
      });
    });
  return connections;
}
