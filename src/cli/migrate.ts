/** `grantkeeper migrate`: apply pending store migrations. */
import { Command } from "commander";
import { loadConfig } from "../config/config.js";
import { openStore } from "../store/database.js";
import { migrateToLatest } from "../store/migrations.js";

/** The `migrate` command: creates the store when there is none (SQLite), then applies pending migrations; prints what it applied. */
export function migrateCommand(): Command {
  return new Command("migrate").description("create the store if needed and apply pending migrations (serve also does this at start)").action(async () => {
    const config = loadConfig();
    const store = await openStore(config.databaseUrl);
    try {
      const { applied } = await migrateToLatest(store);
      process.stdout.write(applied.length ? `applied ${applied.length} migration(s) to ${store.location}: ${applied.join(", ")}\n` : "store is up to date\n");
    } finally {
      await store.close();
    }
  });
}
