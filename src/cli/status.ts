/** `grantkeeper status`: connections and integrations at a glance (read-only). */
import { Command } from "commander";
import { withRuntime } from "./command.js";
import { printStatus } from "./report.js";

/** The `status` command: read-only — creates no store or key; exits 1 with what to run when there is none. */
export function statusCommand(): Command {
  return new Command("status")
    .description("connections and integrations with state, reason, next refresh, failures (read-only)")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }) => {
      await withRuntime((rt) => printStatus(rt.gk, o.json === true), { readOnly: true });
    });
}
