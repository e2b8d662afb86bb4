/**
 * `grantkeeper keys rotate`, `doctor`'s key lines and `grantkeeper backup`
 * as an operator runs them: the built CLI spawned on a real store (both
 * engines). A rotation killed with SIGKILL after its first progress line
 * resumes to the end while every token stays readable; a backup taken while
 * writes go on restores to a store that serves the same grants.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { internalsOf } from "../../src/internals.js";
import { Encryptor, keyIdOf, parseEncryptionKey } from "../../src/store/encryption.js";
import { JobRepository } from "../../src/store/jobs.js";
import { newJobId } from "../../src/store/jobRows.js";
import { countByKeyId } from "../../src/store/keyRotation.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { runCli } from "../support/cli.js";

const PROVIDERS = { acme: { authorizationEndpoint: "http://127.0.0.1:9/auth", tokenEndpoint: "http://127.0.0.1:9/token", clientId: "c", clientSecret: "keys-client-secret" } };

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawn the built CLI; `onStderr` sees stderr as it arrives and may kill the child. */
function cli(db: TestDatabase, args: string[], env: Record<string, string>, onStderr?: (text: string, kill: () => void) => void): Promise<Run> {
  return runCli(args, { env: { GRANTKEEPER_DATABASE_URL: db.url, GRANTKEEPER_API_KEY: "keys-api-key", GRANTKEEPER_LOG_LEVEL: "warn", ...env }, cwd: db.dir, timeoutMs: 120_000, ...(onStderr ? { onStderr } : {}) });
}

/** `n` connections written straight into the store under `key` (the set-up of a big store in seconds, not minutes). */
async function bulkConnections(gk: Grantkeeper, key: string, n: number): Promise<string[]> {
  const { store } = internalsOf(gk);
  const enc = new Encryptor(parseEncryptionKey(key));
  const first = (await gk.connections.storeGrant({ providerId: "acme", entityId: "bulk-template", source: "import", tokens: { accessToken: "bulk-at-template", tokenType: "Bearer", refreshToken: "bulk-rt-template", expiresInSeconds: 86_400 } })).connection.id;
  const tpl = await store.db.selectFrom("connections").selectAll().where("id", "=", first).executeTakeFirstOrThrow();
  const ids: string[] = [];
  for (let start = 0; start < n; start += 200) {
    const rows = [];
    for (let i = start; i < Math.min(n, start + 200); i++) {
      const id = `conn_bulk_${String(i).padStart(6, "0")}`;
      ids.push(id);
      rows.push({ ...tpl, id, entity_id: `bulk-${i}`, access_token_ct: enc.encrypt(`bulk-at-${i}`, `connection:${id}:access_token`), refresh_token_ct: enc.encrypt(`bulk-rt-${i}`, `connection:${id}:refresh_token`) });
    }
    await store.db.insertInto("connections").values(rows).execute();
  }
  return ids;
}

describe("grantkeeper keys rotate", () => {
  let db: TestDatabase;
  const keyA = testKey();
  const keyB = testKey();
  const idA = keyIdOf(parseEncryptionKey(keyA));
  const idB = keyIdOf(parseEncryptionKey(keyB));
  const rotating = { GRANTKEEPER_ENCRYPTION_KEY: keyB, GRANTKEEPER_RETIRED_ENCRYPTION_KEYS: ` ${keyA} ` };
  let ids: string[] = [];

  beforeAll(async () => {
    db = await testDatabase();
    const gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: keyA, providers: PROVIDERS });
    try {
      ids = await bulkConnections(gk, keyA, 4000);
    } finally {
      await gk.close();
    }
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  it("doctor shows rows per key id per column, marking current and retired keys", async () => {
    const r = await cli(db, ["doctor"], rotating);
    expect(r.stdout).toMatch(new RegExp(`ok\\s+keys connections\\.access_token_ct: ${idA} \\(retired\\) 4001`));
    expect(r.stdout).toMatch(new RegExp(`ok\\s+keys providers\\.client_secret_ct: ${idA} \\(retired\\) 1`));
    expect(r.stdout).toMatch(/todo keys: 8003 row\(s\) not under the current key: run `grantkeeper keys rotate`/);
    expect(r.code).toBe(0);
    // Without the old key, its rows are unreadable: doctor says so and fails.
    const lost = await cli(db, ["doctor"], { GRANTKEEPER_ENCRYPTION_KEY: keyB });
    expect(lost.stdout).toMatch(new RegExp(`FAIL keys connections\\.access_token_ct: ${idA} \\(UNKNOWN: no configured key\\) 4001`));
    expect(lost.code).toBe(1);
  });

  it("a start without the key the store was written with refuses in one line", async () => {
    const r = await cli(db, ["status"], { GRANTKEEPER_ENCRYPTION_KEY: keyB });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/open none of the stored secrets/);
    expect(r.stderr).not.toContain(keyB);
  });

  it("killed with SIGKILL mid-way, it resumes to the end; tokens stay readable throughout", async () => {
    const reader = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: keyB, retiredEncryptionKeys: [keyA] });
    try {
      let running = true;
      const readErrors: string[] = [];
      let reads = 0;
      const readLoop = (async () => {
        for (let n = 0; running; n++) {
          const i = (n * 397) % ids.length;
          try {
            const t = await reader.connections.ensureFresh(ids[i]!);
            if (t.accessToken !== `bulk-at-${i}`) readErrors.push(`${ids[i]}: ${t.accessToken}`);
          } catch (e) {
            readErrors.push(`${ids[i]}: ${(e as Error).message}`);
          }
          reads++;
          // better-sqlite3 answers synchronously: let the child's output and exit events in between reads.
          await new Promise((r) => setImmediate(r));
        }
      })();
      const killed = await cli(db, ["keys", "rotate", "--batch-size", "50"], rotating, (text, kill) => {
        if (/keys rotate: \S+ \d+\/\d+\n/.test(text)) kill();
      });
      expect(killed.signal).toBe("SIGKILL");
      expect(killed.stderr).toMatch(/^keys rotate: connections\.access_token_ct 50\/4001$/m);
      const mid = await countByKeyId(internalsOf(reader).store.db);
      const under = (keyId: string) => mid.filter((u) => u.field.startsWith("connections.") && u.keyId === keyId).reduce((a, u) => a + u.rows, 0);
      // Cut off part-way: some rows moved, some did not.
      expect(under(idB)).toBeGreaterThan(0);
      expect(under(idA)).toBeGreaterThan(0);

      const resumed = await cli(db, ["keys", "rotate", "--batch-size", "500"], rotating);
      running = false;
      await readLoop;
      expect(resumed.stdout).toMatch(new RegExp(`under key id ${idB}; no row is left under another key id`));
      expect(resumed.code).toBe(0);
      expect(readErrors).toEqual([]);
      expect(reads).toBeGreaterThan(10);
      const after = await countByKeyId(internalsOf(reader).store.db);
      expect(after.filter((u) => u.keyId !== idB)).toEqual([]);
      expect(after.find((u) => u.field === "connections.access_token_ct")?.rows).toBe(4001);
    } finally {
      await reader.close();
    }
    // The old key can go: every token reads under the new key alone, and a further run has nothing to do.
    const gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: keyB });
    try {
      for (const i of [0, 1, 1999, 3999]) expect((await gk.connections.ensureFresh(ids[i]!)).accessToken).toBe(`bulk-at-${i}`);
    } finally {
      await gk.close();
    }
    const again = await cli(db, ["keys", "rotate"], { GRANTKEEPER_ENCRYPTION_KEY: keyB });
    expect(again.stdout).toMatch(/re-encrypted 0 value\(s\)/);
    expect(again.code).toBe(0);
  }, 300_000); // three CLI processes: seconds each on a quiet machine, tens of seconds on a loaded one
});

describe("grantkeeper backup", () => {
  let db: TestDatabase;
  const key = testKey();

  beforeAll(async () => {
    db = await testDatabase();
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  it.runIf(process.env.GK_TEST_BACKEND === "postgres")("on PostgreSQL points at pg_dump and exits 2", async () => {
    const r = await cli(db, ["backup", join(db.dir, "b.db")], { GRANTKEEPER_ENCRYPTION_KEY: key });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/for PostgreSQL use pg_dump/);
  });

  it.runIf(process.env.GK_TEST_BACKEND !== "postgres")("copies the store while writes go on; the copy serves the same grants", async () => {
    const gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: key, providers: PROVIDERS });
    const target = join(db.dir, "backup.db");
    let running = true;
    let written = 0;
    let connectionId: string;
    try {
      connectionId = (await gk.connections.storeGrant({ providerId: "acme", entityId: "alice", source: "import", tokens: { accessToken: "backup-at", tokenType: "Bearer", refreshToken: "backup-rt", expiresInSeconds: 86_400 } })).connection.id;
      // Some 40 MB of queue, so the copy takes many steps and the writers below make SQLite restart it.
      const integrationId = (await gk.integrations.create({ name: "bulk", entityId: "alice", connectionIds: [connectionId] })).integration.id;
      const { store } = internalsOf(gk);
      const jobs = new JobRepository(store.db, store.dialect);
      const body = Buffer.alloc(3_000, 7).toString("base64");
      for (let n = 0; n < 10; n++) {
        const now = Date.now();
        await jobs.insertGroup(Array.from({ length: 1000 }, () => ({ id: newJobId(now), integration_id: integrationId, state: "succeeded" as const, attempts: 1, idempotency_key: null, headers: "{}", body, run_at: now, lease_owner: null, lease_until: null, last_error: null, probe: 0, received_at: now, created_at: now, updated_at: now, finished_at: now })));
      }
      const writes = (async () => {
        while (running) {
          await new Promise((r) => setImmediate(r));
          await gk.connections.storeGrant({ providerId: "acme", entityId: `w${written}`, source: "import", tokens: { accessToken: `w-at-${written}`, tokenType: "Bearer", expiresInSeconds: 86_400 } });
          written++;
        }
      })();
      const r = await cli(db, ["backup", target], { GRANTKEEPER_ENCRYPTION_KEY: key });
      running = false;
      await writes;
      expect(r.stdout).toMatch(/backed up sqlite:.* to .*backup\.db/);
      expect(r.stderr).toMatch(/backup: 100% \(\d+\/\d+ pages\)/);
      expect(r.code).toBe(0);
      expect(written).toBeGreaterThan(0);
      expect(statSync(target).mode & 0o777).toBe(0o600);
      // A second backup does not overwrite the first.
      const again = await cli(db, ["backup", target], { GRANTKEEPER_ENCRYPTION_KEY: key });
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/exists/);
    } finally {
      running = false;
      await gk.close();
    }
    const check = new SQLite(target, { readonly: true });
    try {
      expect(check.pragma("integrity_check", { simple: true })).toBe("ok");
    } finally {
      check.close();
    }
    // Restore = start on the copy with the same key: the same grant, the same token.
    const restored = await createGrantkeeper({ databaseUrl: `sqlite:${target}`, encryptionKey: key });
    try {
      expect(await restored.connections.ensureFresh(connectionId!)).toMatchObject({ accessToken: "backup-at" });
    } finally {
      await restored.close();
    }
  }, 300_000);
});
