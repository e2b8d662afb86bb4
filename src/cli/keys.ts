/**
 * `grantkeeper keys rotate` and the key lines of `grantkeeper doctor`
 * (issue 13 item 2; contract v1.1 "Data lifecycle"). The work is in
 * src/store/keyRotation.ts; this file reads the keys from the environment,
 * prints progress and maps the result to an exit code.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { loadConfig, type GrantkeeperConfig } from "../config/config.js";
import { openStore, type Store } from "../store/database.js";
import { Encryptor, keyIdOf, parseEncryptionKey } from "../store/encryption.js";
import { countByKeyId, rotateKeys, verifyKeyring, type RotationProgress } from "../store/keyRotation.js";
import { migrateToLatest } from "../store/migrations.js";
import { CliError, ExitCode, progress } from "./command.js";
import { assertInitialised } from "./runtime.js";
import { dataDirOf, resolveSecrets } from "./secrets.js";

/** The `keys` command with its `rotate` sub-command (registered with one line in main.ts). */
export function keysCommand(): Command {
  const keys = new Command("keys").description("encryption keys");
  keys
    .command("rotate")
    .description("re-encrypt every stored secret and payload under GRANTKEEPER_ENCRYPTION_KEY (batches, resumable, safe while instances serve); exit 0 when no row is left under another key id")
    .option("--batch-size <rows>", "rows per batch (one transaction each)", "500")
    .action(async (o: { batchSize: string }) => {
      process.exitCode = await rotateCommand(Number(o.batchSize));
    });
  return keys;
}

/**
 * Run a rotation to the end. Progress goes to stderr (`\r`-updated on a
 * TTY, otherwise plain lines at most one a second: src/cli/command.ts
 * `progress`); the result to stdout.
 * @param batchSize rows per batch, an integer ≥ 1
 * @returns 0 when no row is left under another key id, 1 otherwise (rows no configured key opens, or written
 *   meanwhile under an old key by an instance still running with it as current)
 * @throws {@link CliError} exit 2 for a bad `--batch-size`, exit 1 without a store or key here;
 *   {@link DecryptionError} (exit 2) when the keys open none of the stored secrets — nothing is changed
 */
export async function rotateCommand(batchSize: number): Promise<number> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new CliError("--batch-size must be an integer ≥ 1", ExitCode.usage);
  const config = loadConfig();
  // A one-shot command sets nothing up: the store and its encryption key must exist.
  await assertInitialised(config, { checkMigrations: false });
  const secrets = resolveSecrets(config.databaseUrl, config.apiKey ?? "", config.encryptionKey);
  const encryptor = new Encryptor(parseEncryptionKey(secrets.encryptionKey), config.retiredEncryptionKeys.map(parseEncryptionKey));
  const store = await openStore(config.databaseUrl);
  const bar = progress();
  let moved = false;
  const onProgress = (p: RotationProgress) => {
    moved = true;
    bar.update(`keys rotate: ${p.field} ${p.done}/${p.total}`);
  };
  try {
    await migrateToLatest(store);
    await verifyKeyring(store.db, encryptor);
    const report = await rotateKeys(store.db, encryptor, { batchSize, onProgress });
    if (moved) bar.done();
    const left = [...report.remaining].filter(([, n]) => n > 0);
    if (left.length === 0) {
      process.stdout.write(`re-encrypted ${report.rotated} value(s) under key id ${report.keyId}; no row is left under another key id — the retired keys can be removed\n`);
      return 0;
    }
    process.stdout.write(`re-encrypted ${report.rotated} value(s) under key id ${report.keyId}; still under another key id: ${left.map(([f, n]) => `${f} ${n}`).join(", ")}\n`);
    for (const f of report.failures.slice(0, 10)) process.stdout.write(`  cannot open ${f.field} of ${f.key} (key id ${f.keyId ?? "?"}): ${f.reason}\n`);
    if (report.failures.length > 10) process.stdout.write(`  … and ${report.failures.length - 10} more\n`);
    if (report.failures.length === 0) process.stdout.write("  rows keep arriving under an old key: is an instance still running with it as GRANTKEEPER_ENCRYPTION_KEY? Restart it with the new key, then run keys rotate again\n");
    return 1;
  } finally {
    await store.close();
  }
}

/**
 * Current and retired key ids as configured, without creating anything (for
 * `doctor`): the current key from `GRANTKEEPER_ENCRYPTION_KEY` or, on SQLite,
 * the generated key file if it exists. Unparseable keys are left out.
 */
function configuredKeyIds(config: GrantkeeperConfig): { current?: string; retired: string[] } {
  const idOf = (b64: string) => {
    try {
      return keyIdOf(parseEncryptionKey(b64));
    } catch {
      return undefined;
    }
  };
  const dir = dataDirOf(config.databaseUrl);
  const file = dir ? join(dir, "encryption-key") : undefined;
  const currentB64 = config.encryptionKey ?? (file && existsSync(file) ? readFileSync(file, "utf8").trim() : undefined);
  const current = currentB64 ? idOf(currentB64) : undefined;
  return { ...(current ? { current } : {}), retired: config.retiredEncryptionKeys.map(idOf).filter((id): id is string => id !== undefined) };
}

/**
 * `doctor`'s key lines: rows per key id per column, each key id marked
 * current, retired or unknown. `FAIL` when some row is under a key id that no
 * configured key has (those rows cannot be read); `todo` while rows are left
 * under a retired key. Reads every ciphertext
 * column once (a full scan of `job_payloads`).
 */
export async function keyUsageLines(store: Store, config: GrantkeeperConfig): Promise<Array<{ mark: "ok" | "todo" | "FAIL"; text: string }>> {
  const ids = configuredKeyIds(config);
  const usage = await countByKeyId(store.db);
  const label = (keyId: string | null) => (keyId === null ? "plaintext (legacy, sealed by keys rotate)" : keyId === ids.current ? `${keyId} (current)` : ids.retired.includes(keyId) ? `${keyId} (retired)` : `${keyId} (UNKNOWN: no configured key)`);
  const byField = new Map<string, string[]>();
  let unknown = 0;
  let old = 0;
  for (const u of usage) {
    byField.set(u.field, [...(byField.get(u.field) ?? []), `${label(u.keyId)} ${u.rows}`]);
    if (u.keyId !== null && u.keyId !== ids.current && !ids.retired.includes(u.keyId)) unknown += u.rows;
    if (u.keyId !== ids.current) old += u.rows;
  }
  const lines: Array<{ mark: "ok" | "todo" | "FAIL"; text: string }> = [...byField].map(([field, parts]) => ({ mark: parts.some((p) => p.includes("UNKNOWN")) ? ("FAIL" as const) : ("ok" as const), text: `keys ${field}: ${parts.join(", ")}` }));
  if (usage.length === 0) lines.push({ mark: "ok", text: "keys: no stored secrets yet" });
  else if (unknown > 0) lines.push({ mark: "FAIL", text: `keys: ${unknown} row(s) under a key id no configured key has: set that key as GRANTKEEPER_ENCRYPTION_KEY or in GRANTKEEPER_RETIRED_ENCRYPTION_KEYS` });
  else if (old > 0) lines.push({ mark: "todo", text: `keys: ${old} row(s) not under the current key: run \`grantkeeper keys rotate\`` });
  return lines;
}
