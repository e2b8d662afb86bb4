/**
 * Encryption-key rotation, online and to the end (issue 13 item 2; contract
 * v1.1 "Data lifecycle"): every ciphertext the store holds, where it lives,
 * how many sit under each key id, the re-encryption of all of them under the
 * current key, and the start-up check that the configured keys open the store.
 *
 * Rotation is safe while other instances serve, as long as they already run
 * with the new key as current and the old one retired (every read works
 * during the rotation, and whatever they write is under the new key):
 * - rows are chosen by "key id ≠ current" and walked in primary-key order in
 *   batches, so a crashed run resumes by running again (idempotent);
 * - each row's update is conditional on the ciphertext it read (compare and
 *   set): a token a concurrent refresh stored meanwhile is never overwritten.
 */
import { sql, type Kysely } from "kysely";
import { DecryptionError, Encryptor } from "./encryption.js";
import { payloadContext } from "./payloadCipher.js";
import type { Database } from "./schema.js";

/**
 * One column holding ciphertexts made by {@link Encryptor}, with the
 * associated data each row's ciphertext is bound to.
 */
export interface CipherField {
  table: keyof Database & string;
  /** The table's primary key (one text column): the batches' order and the update's row. */
  key: string;
  column: string;
  /** Associated data of the row's ciphertext (must match where it is written). */
  context(key: string): string;
  /** `job_payloads.body`: legacy rows hold plaintext (headers in their own column) and are sealed by a rotation. */
  payload?: true;
}

/**
 * Every ciphertext column of the store. A new `encrypt(…)` call site that
 * stores its result in a new column must be listed here, or `keys rotate`
 * leaves it under the old key (test/e2e/keyRotation.integration.test.ts checks the
 * list against the schema's `_ct` columns).
 */
export const CIPHER_FIELDS: readonly CipherField[] = [
  { table: "connections", key: "id", column: "access_token_ct", context: (id) => `connection:${id}:access_token` },
  { table: "connections", key: "id", column: "refresh_token_ct", context: (id) => `connection:${id}:refresh_token` },
  { table: "providers", key: "id", column: "client_secret_ct", context: (id) => `provider:${id}:client_secret` },
  { table: "integrations", key: "id", column: "delivery_secret_ct", context: (id) => `integration:${id}:delivery_secret` },
  { table: "integrations", key: "id", column: "webhook_secret_ct", context: (id) => `integration:${id}:webhook_secret` },
  // The secret a webhook-secret rotation replaced: same context as the current one (src/jobs/ingress.ts `signingOf`).
  { table: "integrations", key: "id", column: "webhook_previous_secret_ct", context: (id) => `integration:${id}:webhook_secret` },
  { table: "oauth_states", key: "state_hash", column: "code_verifier_ct", context: (hash) => `oauth_state:${hash}:code_verifier` },
  { table: "job_payloads", key: "job_id", column: "body", context: payloadContext, payload: true },
];

/** `table.column` of a field, as progress and reports name it. */
export function fieldName(f: CipherField): string {
  return `${f.table}.${f.column}`;
}

/** How many rows of one column are under one key id. */
export interface KeyUsage {
  /** `table.column`, e.g. `connections.access_token_ct`. */
  field: string;
  /** Key id (8 base64url characters), or null for legacy plaintext payloads (written before they were encrypted). */
  keyId: string | null;
  rows: number;
}

/** `v1.<keyId>.` — the first 12 characters of every ciphertext under `keyId`. */
const prefixOf = (keyId: string) => `v1.${keyId}.`;

/** SQL condition: the field's value is set and not under `currentKeyId` (legacy plaintext payloads included). */
function notUnder(f: CipherField, currentKeyId: string) {
  const col = sql.ref(f.column);
  return sql<boolean>`${col} is not null and substr(${col}, 1, 12) <> ${prefixOf(currentKeyId)}`;
}

/**
 * Rows per key id for every ciphertext column (`grantkeeper doctor`). Scans
 * each table once (a full scan of `job_payloads` on a large queue).
 * @returns non-empty groups only, in {@link CIPHER_FIELDS} order
 */
export async function countByKeyId(db: Kysely<Database>): Promise<KeyUsage[]> {
  const out: KeyUsage[] = [];
  for (const f of CIPHER_FIELDS) {
    const col = sql.ref(f.column);
    const r = await sql<{ key_id: string; n: number | string }>`
      select case when substr(${col}, 1, 3) = 'v1.' then substr(${col}, 4, 8) else '' end as key_id, count(*) as n
      from ${sql.table(f.table)} where ${col} is not null group by 1 order by 1`.execute(db);
    for (const row of r.rows) out.push({ field: fieldName(f), keyId: row.key_id === "" ? null : row.key_id, rows: Number(row.n) });
  }
  return out;
}

/** Rows not under the current key (legacy plaintext payloads included), per `table.column`. */
export async function countNotUnderCurrent(db: Kysely<Database>, currentKeyId: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const f of CIPHER_FIELDS) {
    const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(f.table)} where ${notUnder(f, currentKeyId)}`.execute(db);
    out.set(fieldName(f), Number(r.rows[0]?.n ?? 0));
  }
  return out;
}

/** Progress of a rotation, after each batch. */
export interface RotationProgress {
  /** `table.column` being rotated. */
  field: string;
  /** Rows of this field re-encrypted so far in this run. */
  done: number;
  /** Rows of this field under another key id when the run reached it. */
  total: number;
}

/** A ciphertext no configured key opens (unknown key id, tampered, or copied from another row). */
export interface RotationFailure {
  field: string;
  /** The row's primary key (an id or a hash — never a secret). */
  key: string;
  keyId: string | undefined;
  reason: string;
}

/** What a rotation did. */
export interface RotationReport {
  /** Key id every ciphertext was re-encrypted under. */
  keyId: string;
  /** Ciphertexts re-encrypted (and legacy payloads sealed). */
  rotated: number;
  /** Rows whose value changed between the read and the update (a concurrent write: theirs kept, re-checked next pass). */
  raced: number;
  failures: RotationFailure[];
  /** Rows still under another key id after the run, per `table.column` (0 everywhere = done). */
  remaining: Map<string, number>;
}

/** Options of {@link rotateKeys}. */
export interface RotationOptions {
  /** Rows read and updated per batch (one transaction each). @defaultValue 500 */
  batchSize?: number;
  /** Called after each batch. */
  onProgress?: (p: RotationProgress) => void;
  /**
   * Called between a batch's read and its conditional updates, with the
   * batch's primary keys: the window in which a concurrent write must win
   * (tests write there to prove it does). Not for production use.
   */
  beforeWrite?: (field: string, keys: string[]) => Promise<void>;
  /** Passes over all fields while rows are left that are not failures (rows written meanwhile under an old key). @defaultValue 3 */
  maxPasses?: number;
}

/**
 * Re-encrypt every ciphertext of the store under the encryptor's current key
 * (and seal legacy plaintext payloads), in batches in primary-key order. Each
 * batch is one transaction; each row's update is conditional on the value it
 * read, so a concurrent write wins and nothing is overwritten. Resumable: a
 * run after a crash picks up the rows still under another key id.
 * @returns the report; done when every entry of `remaining` is 0
 * @throws store errors only — a ciphertext no key opens is reported in `failures`, not thrown
 */
export async function rotateKeys(db: Kysely<Database>, encryptor: Encryptor, options: RotationOptions = {}): Promise<RotationReport> {
  const batchSize = options.batchSize ?? 500;
  const current = encryptor.keyId;
  const report: RotationReport = { keyId: current, rotated: 0, raced: 0, failures: [], remaining: new Map() };
  const failed = new Set<string>();
  for (let pass = 0; pass < (options.maxPasses ?? 3); pass++) {
    const before = report.rotated;
    for (const f of CIPHER_FIELDS) {
      const name = fieldName(f);
      const total = Number((await sql<{ n: number | string }>`select count(*) as n from ${sql.table(f.table)} where ${notUnder(f, current)}`.execute(db)).rows[0]?.n ?? 0);
      if (total === 0) continue;
      let done = 0;
      let after: string | undefined;
      for (;;) {
        const key = sql.ref(f.key);
        const rows = (
          await sql<{ k: string; v: string; h: string | null }>`
            select ${key} as k, ${sql.ref(f.column)} as v, ${f.payload ? sql.ref("headers") : sql`null`} as h
            from ${sql.table(f.table)}
            where ${notUnder(f, current)} ${after !== undefined ? sql`and ${key} > ${after}` : sql``}
            order by ${key} limit ${batchSize}`.execute(db)
        ).rows;
        if (rows.length === 0) break;
        after = rows[rows.length - 1]!.k;
        const updates: Array<{ k: string; old: string; next: string }> = [];
        for (const r of rows) {
          try {
            const ctx = f.context(r.k);
            const plain = f.payload && !r.v.startsWith("v1.") ? `${r.h ?? "{}"}\n${r.v}` : encryptor.decrypt(r.v, ctx);
            updates.push({ k: r.k, old: r.v, next: encryptor.encrypt(plain, ctx) });
          } catch (e) {
            const id = `${name}:${r.k}`;
            if (!failed.has(id)) {
              failed.add(id);
              report.failures.push({ field: name, key: r.k, keyId: Encryptor.keyIdOfCiphertext(r.v), reason: e instanceof DecryptionError ? e.message : String(e) });
            }
          }
        }
        await options.beforeWrite?.(name, updates.map((u) => u.k));
        const changed = await db.transaction().execute(async (trx) => {
          let n = 0;
          for (const u of updates) {
            const set = f.payload ? sql`${sql.ref(f.column)} = ${u.next}, headers = ''` : sql`${sql.ref(f.column)} = ${u.next}`;
            const r = await sql`update ${sql.table(f.table)} set ${set} where ${key} = ${u.k} and ${sql.ref(f.column)} = ${u.old}`.execute(trx);
            n += Number(r.numAffectedRows ?? 0);
          }
          return n;
        });
        report.rotated += changed;
        report.raced += updates.length - changed;
        done += changed;
        options.onProgress?.({ field: name, done, total });
        if (rows.length < batchSize) break;
      }
    }
    report.remaining = await countNotUnderCurrent(db, current);
    const left = [...report.remaining.values()].reduce((a, b) => a + b, 0);
    // Done, or only rows no key opens are left, or a pass changed nothing (another pass would not either).
    if (left === 0 || left <= failed.size || report.rotated === before) break;
  }
  return report;
}

/**
 * The start-up check (issue 13 item 2): refuse a keyring that opens nothing
 * rather than serve garbage. Looks for one ciphertext under the current or a
 * retired key id in each column (the newest payload only, one index lookup)
 * and decrypts it as a probe. Cheap: `limit 1` queries, no full read of the
 * queue.
 * @throws {@link DecryptionError} (one line, no key material) when the store holds ciphertexts but none under a
 *   configured key id, or when the probe does not decrypt under its key
 */
export async function verifyKeyring(db: Kysely<Database>, encryptor: Encryptor): Promise<void> {
  const known = encryptor.keyIds;
  const unknown = new Set<string>();
  const probe = (f: CipherField, key: string, value: string) => {
    try {
      encryptor.decrypt(value, f.context(key));
    } catch {
      throw new DecryptionError(
        `the configured encryption keys do not open the store: ${fieldName(f)} of ${key} is under key id ${Encryptor.keyIdOfCiphertext(value)} but does not decrypt — the key was changed or the row altered; start with the key the store was written with`,
      );
    }
  };
  for (const f of CIPHER_FIELDS) {
    const col = sql.ref(f.column);
    if (f.payload) {
      // Job ids are time-ordered: the newest payload is the one most likely under the current key.
      const newest = await sql<{ k: string; v: string }>`select ${sql.ref(f.key)} as k, ${col} as v from ${sql.table(f.table)} order by ${sql.ref(f.key)} desc limit 1`.execute(db);
      const row = newest.rows[0];
      if (!row || !row.v.startsWith("v1.")) continue;
      const id = Encryptor.keyIdOfCiphertext(row.v)!;
      if (!known.includes(id)) {
        unknown.add(id);
        continue;
      }
      probe(f, row.k, row.v);
      return;
    }
    const ids = sql.join(known.map((id) => sql`${id}`));
    const found = await sql<{ k: string; v: string }>`select ${sql.ref(f.key)} as k, ${col} as v from ${sql.table(f.table)} where ${col} is not null and substr(${col}, 1, 3) = 'v1.' and substr(${col}, 4, 8) in (${ids}) limit 1`.execute(db);
    if (found.rows[0]) {
      probe(f, found.rows[0].k, found.rows[0].v);
      return;
    }
    const any = await sql<{ v: string }>`select ${col} as v from ${sql.table(f.table)} where ${col} is not null limit 1`.execute(db);
    if (any.rows[0]) unknown.add(Encryptor.keyIdOfCiphertext(any.rows[0].v) ?? "(malformed)");
  }
  if (unknown.size > 0) {
    throw new DecryptionError(
      `the configured encryption keys (key id ${known.join(", ")}) open none of the stored secrets, which are under key id ${[...unknown].join(", ")}: start with the key the store was written with (GRANTKEEPER_ENCRYPTION_KEY, or in GRANTKEEPER_RETIRED_ENCRYPTION_KEYS while rotating)`,
    );
  }
}
