#!/usr/bin/env node
/**
 * The `grantkeeper` command line (commander). Each command lives in its own
 * file and is registered here with one line; src/cli/command.ts holds what
 * they share (exit codes, one-line errors, progress, opening grantkeeper).
 * docs/cli.md lists the commands, their output and exit codes.
 */
import { createRequire } from "node:module";
import { createProgram, runCli } from "./command.js";
import { connectionsCommand } from "./connections.js";
import { doctorCommand } from "./doctor.js";
import { migrateCommand } from "./migrate.js";
import { preflightCommand } from "./preflight.js";
import { replayCommand } from "./replay.js";
import { serveCommand } from "./serve.js";
import { statusCommand } from "./status.js";
import { pruneCommand } from "./prune.js";
import { keysCommand } from "./keys.js";
import { backupCommand } from "./backup.js";

const { version } = createRequire(import.meta.url)("../../../package.json") as { version: string };
const program = createProgram(version);

// One line per command, in the order `--help` lists them.
program.addCommand(serveCommand());
program.addCommand(migrateCommand());
program.addCommand(statusCommand());
program.addCommand(connectionsCommand());
program.addCommand(preflightCommand());
program.addCommand(replayCommand());
program.addCommand(doctorCommand());
program.addCommand(pruneCommand());
program.addCommand(keysCommand());
program.addCommand(backupCommand());

await runCli(program);
