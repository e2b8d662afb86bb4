/**
 * Child process of the scheduler-scale benchmark that fills a SQLite store
 * with N connections, directly with kysely in batched transactions.
 *
 * Every row gets its own AES-256-GCM ciphertexts (two per row, bound to the
 * row id by the associated data), so every grant in the store is a valid one;
 * the time this takes is measured and reported. `next_refresh_at` is spread
 * uniformly over 24 h starting `spreadStartMs` from now; the first
 * `dueCount` rows (the due set) are parked 48 h out and moved to "due in 5 s"
 * by the measuring process, so their due time is relative to its start.
 *
 * IPC: `seed {databaseUrl, file, encryptionKey, origin, n, dueCount, spreadStartMs}` →
 * `progress`… → `seeded {createMs, buildMs, insertMs, totalMs, dbBytes}`.
 */
import { statSync } from "node:fs";
import { sql } from "kysely";
import { createGrantkeeper } from "../src/grantkeeper.js";
import { tokenContext } from "../src/lifecycle/refreshRecorder.js";
import type { ConnectionRow } from "../src/store/connections.js";
import { Encryptor, parseEncryptionKey } from "../src/store/encryption.js";
import { benchConnectionId, benchProvider, parent } from "./common.js";
import { internalsOf } from "../src/internals.js";

const DAY_MS = 86_400_000;
/** Rows per transaction and per INSERT statement (21 columns × 500 stays under SQLite's 32,766 parameters). */
const ROWS_PER_TX = 10_000;
const ROWS_PER_STATEMENT = 500;

async function main(): Promise<void> {
  const m = await parent.next(30_000);
  if (m.type !== "seed") throw new Error(`expected seed, got ${m.type}`);
  const n = Number(m.n);
  const dueCount = Number(m.dueCount);
  const key = String(m.encryptionKey);
  const t0 = performance.now();
  const gk = await createGrantkeeper({ databaseUrl: String(m.databaseUrl), encryptionKey: key, providers: { bench: benchProvider(String(m.origin)) }, instanceId: "bench-seed" });
  const createMs = performance.now() - t0;
  const enc = new Encryptor(parseEncryptionKey(key));
  const now = Date.now();
  const spreadStart = now + Number(m.spreadStartMs);
  let buildMs = 0;
  let insertMs = 0;
  let reported = 0;
  for (let start = 0; start < n; start += ROWS_PER_TX) {
    const tb = performance.now();
    const rows: ConnectionRow[] = [];
    for (let i = start; i < Math.min(n, start + ROWS_PER_TX); i++) {
      const id = benchConnectionId(i);
      const next = i < dueCount ? now + 2 * DAY_MS : spreadStart + Math.floor(Math.random() * DAY_MS);
      rows.push({
        id,
        provider_id: "bench",
        entity_id: `entity-${i}`,
        state: "ready",
        access_token_ct: enc.encrypt(`at-${i}-${now}`, tokenContext(id, "access_token")),
        refresh_token_ct: enc.encrypt(`rt-${i}-${now}`, tokenContext(id, "refresh_token")),
        token_type: "Bearer",
        scope: "",
        expires_at: next + 315_000,
        expires_at_assumed: 0,
        last_refreshed_at: now,
        last_attempt_at: null,
        next_refresh_at: next,
        consecutive_failures: 0,
        last_error: null,
        token_version: 1,
        lease_owner: null,
        lease_until: null,
        api_auth_rejections: 0,
        created_at: now,
        updated_at: now,
        connection_config: "{}",
      });
    }
    const ti = performance.now();
    buildMs += ti - tb;
    await internalsOf(gk).store.db.transaction().execute(async (trx) => {
      for (let j = 0; j < rows.length; j += ROWS_PER_STATEMENT) await trx.insertInto("connections").values(rows.slice(j, j + ROWS_PER_STATEMENT)).execute();
    });
    insertMs += performance.now() - ti;
    const done = Math.min(n, start + ROWS_PER_TX);
    if (done - reported >= n / 10 || done === n) {
      reported = done;
      parent.progress(`seeded ${done.toLocaleString("en-US")}/${n.toLocaleString("en-US")} rows (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
  }
  // Leave no WAL behind: the measured start-up must not pay for this process's checkpoint.
  await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(internalsOf(gk).store.db);
  await gk.close();
  const totalMs = performance.now() - t0;
  await parent.send({ type: "seeded", createMs, buildMs, insertMs, totalMs, dbBytes: statSync(String(m.file)).size });
  process.exit(0);
}

main().catch((e) => parent.fail(e));
