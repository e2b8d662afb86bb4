#!/usr/bin/env node
/** The `grantkeeper` command line (commander). */
import { Command, Option } from "commander";
import { ErrorCode, isGrantkeeperError, type ErrorCodeValue } from "../domain/errors.js";
import { migrateToLatest } from "../store/migrations.js";
import { openStore } from "../store/database.js";
import { loadConfig } from "../config/config.js";
import { serveCommand } from "./serve.js";
import { openRuntime } from "./runtime.js";
import { printConnections, printStatus, printPreflight, doctor } from "./report.js";
import { parsePreflightProviders } from "./preflightArgs.js";
import { registerPrune } from "./prune.js";

/** Open grantkeeper for one command and always close it, whatever the command does. */
async function withRuntime(fn: (rt: Awaited<ReturnType<typeof openRuntime>>) => Promise<void>): Promise<void> {
  const rt = await openRuntime({ logLevel: "warn" });
  try {
    await fn(rt);
  } finally {
    await rt.gk.close();
  }
}

const program = new Command();
program.name("grantkeeper").description("Keeps third-party OAuth 2.0 grants alive and the integrations on top of them healthy.").version("0.1.0");

program.command("serve").description("API, connect flow and proactive refresh scheduler in one process").action(serveCommand);

program
  .command("migrate")
  .description("apply pending store migrations (also done at start)")
  .action(async () => {
    const config = loadConfig();
    const store = await openStore(config.databaseUrl);
    try {
      const { applied } = await migrateToLatest(store);
      process.stdout.write(applied.length ? `applied ${applied.length} migration(s): ${applied.join(", ")}\n` : "store is up to date\n");
    } finally {
      await store.close();
    }
  });

const connections = program.command("connections").description("inspect and refresh connections");
connections
  .command("list")
  .option("--entity <entityId>")
  .option("--provider <providerId>")
  .addOption(new Option("--state <state>").choices(["pending", "syncing", "ready", "degraded", "error"]))
  .option("--json", "print JSON")
  .action(async (o: { entity?: string; provider?: string; state?: string; json?: boolean }) => {
    await withRuntime(async (rt) => {
      await printConnections(rt.gk, { ...(o.entity ? { entityId: o.entity } : {}), ...(o.provider ? { providerId: o.provider } : {}), ...(o.state ? { state: o.state } : {}) }, o.json === true);
    });
  });
connections
  .command("show <id>")
  .description("one connection and its recent history")
  .action(async (id: string) => {
    await withRuntime(async (rt) => {
      const c = await rt.gk.connections.get(id);
      const ev = await rt.gk.connections.events(id, { limit: 20 });
      process.stdout.write(JSON.stringify({ connection: c, recentEvents: ev.items }, null, 2) + "\n");
    });
  });
connections
  .command("refresh <id>")
  .description("refresh now (single-flight, rate limited)")
  .action(async (id: string) => {
    await withRuntime(async (rt) => {
      const c = await rt.gk.connections.refresh(id);
      process.stdout.write(`${c.id} ${c.state}${c.lastError ? ` (${c.lastError.class} ${c.lastError.code})` : ""} next refresh ${c.nextRefreshAt ?? "never"}\n`);
      if (c.state === "error") process.exitCode = 3;
    });
  });

program
  .command("status")
  .description("connections with state, reason, next refresh, failures")
  .option("--json", "print JSON")
  .action(async (o: { json?: boolean }) => {
    await withRuntime(async (rt) => {
      await printStatus(rt.gk, o.json === true);
    });
  });

program
  .command("replay <integrationId>")
  .description("run an ENABLED integration's parked and dead jobs again, in arrival order")
  .action(async (integrationId: string) => {
    await withRuntime(async (rt) => {
      const n = await rt.gk.jobs.replay(integrationId, (done) => process.stderr.write(`\rreplayed ${done} job(s)…`));
      process.stderr.write("\n");
      process.stdout.write(`${n} job(s) queued again for ${integrationId}; a running grantkeeper serve delivers them\n`);
    });
  });

program
  .command("preflight")
  .description("which of an entity's required providers are usable; exit 0 when all are, 3 otherwise")
  .requiredOption("--entity <entityId>", "the end user or account")
  .requiredOption("--providers <ids>", "comma-separated provider ids, each optionally with required scopes: github:repo+read:org,slack")
  .option("--json", "print JSON")
  .action(async (o: { entity: string; providers: string; json?: boolean }) => {
    await withRuntime(async (rt) => {
      const result = await rt.gk.preflight(o.entity, parsePreflightProviders(o.providers));
      printPreflight(result, o.json === true);
      process.exitCode = result.ok ? 0 : 3;
    });
  });

program
  .command("doctor")
  .description("check configuration, keys, store and migrations")
  .action(async () => {
    process.exitCode = await doctor();
  });

registerPrune(program);

/** Codes of a configuration that keeps grantkeeper from starting (exit 2). */
const STARTUP_CODES: ReadonlySet<ErrorCodeValue> = new Set([ErrorCode.invalidConfig, ErrorCode.invalidDatabaseUrl, ErrorCode.invalidEncryptionKey]);

program.parseAsync(process.argv).catch((e: unknown) => {
  const err = e as Error;
  // A configuration the operator must fix before anything can run: exit 2, the message names what to fix.
  if (isGrantkeeperError(e) && STARTUP_CODES.has(e.code)) {
    process.stderr.write(`grantkeeper: ${err.message}\n`);
    process.exit(2);
  }
  if (isGrantkeeperError(e)) {
    process.stderr.write(`grantkeeper: ${e.message} (${e.code})\n`);
    process.exit(e.kind === "not_found" ? 4 : 1);
  }
  process.stderr.write(`grantkeeper: ${err.stack ?? String(err)}\n`);
  process.exit(1);
});
