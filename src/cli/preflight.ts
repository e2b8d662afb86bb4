/** `grantkeeper preflight`: are an entity's required providers usable? */
import { Command } from "commander";
import { ExitCode, withRuntime } from "./command.js";
import { parsePreflightProviders } from "./preflightArgs.js";
import { printPreflight } from "./report.js";

/** The `preflight` command: exit 0 when every provider is usable, 3 otherwise, 2 for a malformed `--providers`. */
export function preflightCommand(): Command {
  return new Command("preflight")
    .description("which of an entity's required providers are usable; exit 0 when all are, 3 otherwise")
    .requiredOption("--entity <entityId>", "the end user or account")
    .requiredOption("--providers <ids>", "comma-separated provider ids, each optionally with required scopes: github:repo+read:org,slack")
    .option("--json", "print JSON")
    .action(async (o: { entity: string; providers: string; json?: boolean }) => {
      const required = parsePreflightProviders(o.providers);
      await withRuntime(async (rt) => {
        const result = await rt.gk.preflight(o.entity, required);
        printPreflight(result, o.json === true);
        process.exitCode = result.ok ? ExitCode.ok : ExitCode.notUsable;
      });
    });
}
