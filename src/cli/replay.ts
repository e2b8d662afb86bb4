/** `grantkeeper replay INTEGRATION`: queue an integration's parked and dead jobs again. */
import { Command } from "commander";
import { progress, withRuntime } from "./command.js";

/** The `replay` command: progress on stderr (`\r` only on a terminal), the count on stdout. */
export function replayCommand(): Command {
  return new Command("replay")
    .argument("<integrationId>")
    .description("run an ENABLED integration's parked and dead jobs again, in arrival order")
    .action(async (integrationId: string) => {
      await withRuntime(async (rt) => {
        const p = progress();
        const n = await rt.gk.jobs.replay(integrationId, (done) => p.update(`replayed ${done} job(s)…`));
        p.done(`replayed ${n} job(s)`);
        process.stdout.write(`${n} job(s) queued again for ${integrationId}; a running grantkeeper serve delivers them\n`);
      });
    });
}
