/**
 * Encryption at rest and key rotation through the library, on both engines
 * (issue 10 item 7, issue 13 item 2): webhook payloads are sealed in the
 * store and delivered as received; legacy plaintext payloads still deliver;
 * a rotation re-encrypts every ciphertext column (checked against the
 * schema) while reads work under current + retired keys, never overwrites a
 * token written meanwhile, and leaves nothing under the old key; a start with
 * keys that open nothing refuses.
 */
import { createHmac } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { internalsOf } from "../../src/internals.js";
import { Encryptor, keyIdOf, parseEncryptionKey } from "../../src/store/encryption.js";
import { JobRepository } from "../../src/store/jobs.js";
import { newJobId } from "../../src/store/jobRows.js";
import { CIPHER_FIELDS, countByKeyId, fieldName, rotateKeys } from "../../src/store/keyRotation.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { startReceiver, type Receiver } from "../support/receiver.js";

const WEBHOOK_SECRET = "rotation-webhook-secret";
const CLIENT_SECRET = "rotation-client-secret";

describe("encryption at rest and key rotation", () => {
  let db: TestDatabase;
  let receiver: Receiver;
  const keyA = testKey();
  const keyB = testKey();
  const idA = keyIdOf(parseEncryptionKey(keyA));
  const idB = keyIdOf(parseEncryptionKey(keyB));
  let connectionId: string;
  let integrationId: string;
  const others: string[] = [];
  const open = (current: string, retired: string[] = []) => createGrantkeeper({ databaseUrl: db.url, encryptionKey: current, retiredEncryptionKeys: retired });
  const rawPayload = async (gk: Grantkeeper, jobId: string) => (await sql<{ headers: string; body: string }>`select headers, body from job_payloads where job_id = ${jobId}`.execute(internalsOf(gk).store.db)).rows[0]!;
  const delivered = () => receiver.requests.map((r) => JSON.parse(r.body) as { jobId: string; headers: Record<string, string>; body: string; bodyEncoding?: string });
  const signed = (body: Uint8Array | string) => new Headers({ "x-signature-256": `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}` });

  beforeAll(async () => {
    db = await testDatabase();
    receiver = await startReceiver();
    const gk = await createGrantkeeper({
      databaseUrl: db.url,
      encryptionKey: keyA,
      providers: { acme: { authorizationEndpoint: "http://127.0.0.1:9/auth", tokenEndpoint: "http://127.0.0.1:9/token", clientId: "c", clientSecret: CLIENT_SECRET } },
    });
    try {
      connectionId = (await gk.connections.storeGrant({ providerId: "acme", entityId: "alice", source: "import", tokens: { accessToken: "alice-at", tokenType: "Bearer", refreshToken: "alice-rt", expiresInSeconds: 86_400 } })).connection.id;
      for (let i = 0; i < 60; i++) {
        others.push((await gk.connections.storeGrant({ providerId: "acme", entityId: `e${i}`, source: "import", tokens: { accessToken: `old-at-${i}`, tokenType: "Bearer", refreshToken: `old-rt-${i}`, expiresInSeconds: 86_400 } })).connection.id);
      }
      integrationId = (await gk.integrations.create({ name: "sealed", entityId: "alice", connectionIds: [connectionId], delivery: { url: `${receiver.url}/hook`, timeoutMs: 5_000 }, webhook: { signing: "hmac-sha256", secret: WEBHOOK_SECRET } })).integration.id;
      // A pending OAuth state (its PKCE verifier is a ciphertext too).
      const link = new URL((await gk.connectSessions.create({ providerId: "acme", entityId: "bob" })).connectUrl);
      await gk.authorization.begin(await gk.connectSessions.open("acme", link.searchParams.get("connectToken")!));
    } finally {
      await gk.close();
    }
  });

  afterAll(async () => {
    await receiver?.close();
    await db?.cleanup();
  });

  it("stores webhook bodies and headers sealed, and delivers the original bytes", async () => {
    const gk = await open(keyA);
    try {
      const body = Buffer.concat([Buffer.from('{"secret":"payload-marker-1234"}'), Buffer.from([0x00, 0xff, 0xfe])]);
      const accepted = await gk.ingress.accept(integrationId, body, new Headers({ ...Object.fromEntries(signed(body).entries()), "x-marker": "header-marker-5678" }));
      expect(accepted.disposition).toBe("queued");
      const row = await rawPayload(gk, accepted.jobId);
      expect(row.headers).toBe("");
      expect(row.body.startsWith(`v1.${idA}.`)).toBe(true);
      const raw = JSON.stringify(row);
      for (const plain of ["payload-marker-1234", body.toString("base64"), "header-marker-5678", "x-marker"]) expect(raw).not.toContain(plain);
      await gk.worker.runDue();
      const got = delivered().find((d) => d.jobId === accepted.jobId)!;
      expect(got.bodyEncoding).toBe("base64");
      expect(Buffer.from(got.body, "base64").equals(body)).toBe(true);
      expect(got.headers["x-marker"]).toBe("header-marker-5678");
    } finally {
      await gk.close();
    }
  });

  it("still delivers a payload stored in plaintext before payloads were encrypted", async () => {
    const gk = await open(keyA);
    try {
      const { store } = internalsOf(gk);
      const now = Date.now();
      const id = newJobId(now);
      await new JobRepository(store.db, store.dialect).insertGroup([
        { id, integration_id: integrationId, state: "queued", attempts: 0, idempotency_key: null, headers: JSON.stringify({ "x-legacy": "yes" }), body: Buffer.from("legacy-body").toString("base64"), run_at: now, lease_owner: null, lease_until: null, last_error: null, probe: 0, received_at: now, created_at: now, updated_at: now, finished_at: null },
      ]);
      await gk.worker.runDue();
      const got = delivered().find((d) => d.jobId === id)!;
      expect(got).toMatchObject({ body: "legacy-body", headers: { "x-legacy": "yes" } });
      expect((await countByKeyId(store.db)).find((u) => u.field === "job_payloads.body" && u.keyId === null)?.rows).toBe(1);
    } finally {
      await gk.close();
    }
  });

  it("refuses to start with keys that open none of the stored secrets, with one line, changing nothing", async () => {
    const stranger = testKey();
    const err = await open(stranger).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/open none of the stored secrets, which are under key id/);
    expect(err?.message).toContain(idA);
    expect(err?.message).not.toContain(stranger);
    expect(err?.message).not.toContain("\n");
    expect((err as { code?: string }).code).toBe("decryption_failed");
    // Retiring the right key is enough to start again.
    const gk = await open(stranger, [keyA]);
    await gk.close();
  });

  it("rotates every ciphertext column to the new key while reads work, never overwriting a token written meanwhile", async () => {
    const raced: string[] = [];
    const gk = await open(keyB, [keyA]);
    try {
      const { store } = internalsOf(gk);
      // Every column of the schema that holds a ciphertext is one the rotation knows.
      // (On PostgreSQL the introspection lists every schema of the database: only this store's.)
      const tables = (await store.db.introspection.getTables()).filter((t) => store.schema === undefined || t.schema === store.schema);
      const ctColumns = tables.flatMap((t) => t.columns.filter((c) => c.name.endsWith("_ct")).map((c) => `${t.name}.${c.name}`));
      expect(ctColumns.length).toBeGreaterThanOrEqual(6);
      for (const c of ctColumns) expect(CIPHER_FIELDS.map(fieldName)).toContain(c);
      // Before: every column holds rows under the old key.
      const before = await countByKeyId(store.db);
      for (const f of ["connections.access_token_ct", "connections.refresh_token_ct", "providers.client_secret_ct", "integrations.delivery_secret_ct", "integrations.webhook_secret_ct", "oauth_states.code_verifier_ct", "job_payloads.body"]) {
        expect(before.some((u) => u.field === f && u.keyId === idA)).toBe(true);
      }
      expect(await gk.connections.ensureFresh(connectionId)).toMatchObject({ accessToken: "alice-at" });

      // Rotation in small batches, while the same connections get new tokens (written under the new key) and are read.
      const encryptor = new Encryptor(parseEncryptionKey(keyB), [parseEncryptionKey(keyA)]);
      const progress: string[] = [];
      const writes = (async () => {
        for (let i = 0; i < others.length; i += 2) {
          await gk.connections.storeGrant({ providerId: "acme", entityId: `e${i}`, source: "import", tokens: { accessToken: `new-at-${i}`, tokenType: "Bearer", refreshToken: `new-rt-${i}`, expiresInSeconds: 86_400 } });
          expect((await gk.connections.ensureFresh(others[i + 1]!)).accessToken).toMatch(new RegExp(`^(old|raced)-at-${i + 1}$`));
        }
      })();
      // And, deterministically, inside the window between a batch's read and its write: that write must win.
      const beforeWrite = async (field: string, keys: string[]) => {
        if (field !== "connections.access_token_ct" || raced.length > 0) return;
        const i = others.findIndex((id, n) => n % 2 === 1 && keys.includes(id));
        if (i < 0) return;
        raced.push(others[i]!);
        await gk.connections.storeGrant({ providerId: "acme", entityId: `e${i}`, source: "import", tokens: { accessToken: `raced-at-${i}`, tokenType: "Bearer", refreshToken: `raced-rt-${i}`, expiresInSeconds: 86_400 } });
      };
      const [report] = await Promise.all([rotateKeys(store.db, encryptor, { batchSize: 7, beforeWrite, onProgress: (p) => void progress.push(`${p.field} ${p.done}/${p.total}`) }), writes]);
      expect(raced).toHaveLength(1);
      expect(report.raced).toBeGreaterThanOrEqual(1);
      expect(report.failures).toEqual([]);
      expect([...report.remaining.values()].every((n) => n === 0)).toBe(true);
      expect(progress.some((p) => p.startsWith("connections.access_token_ct "))).toBe(true);
      const after = await countByKeyId(store.db);
      expect(after.filter((u) => u.keyId !== idB)).toEqual([]);
      // A second run finds nothing to do.
      expect((await rotateKeys(store.db, encryptor)).rotated).toBe(0);
    } finally {
      await gk.close();
    }

    // The old key is gone: everything reads under the new key alone.
    const gk2 = await open(keyB);
    try {
      expect(await gk2.connections.ensureFresh(connectionId)).toMatchObject({ accessToken: "alice-at" });
      for (let i = 0; i < others.length; i++) {
        expect((await gk2.connections.ensureFresh(others[i]!)).accessToken).toBe(i % 2 === 0 ? `new-at-${i}` : raced.includes(others[i]!) ? `raced-at-${i}` : `old-at-${i}`);
      }
      // The webhook secret (signature check), the delivery secret and sealed payloads (delivery) all open.
      const accepted = await gk2.ingress.accept(integrationId, Buffer.from('{"after":"rotation"}'), signed('{"after":"rotation"}'));
      await gk2.worker.runDue();
      expect(delivered().find((d) => d.jobId === accepted.jobId)).toMatchObject({ body: '{"after":"rotation"}' });
      const { store } = internalsOf(gk2);
      const secret = (await sql<{ client_secret_ct: string }>`select client_secret_ct from providers where id = 'acme'`.execute(store.db)).rows[0]!.client_secret_ct;
      expect(new Encryptor(parseEncryptionKey(keyB)).decrypt(secret, "provider:acme:client_secret")).toBe(CLIENT_SECRET);
    } finally {
      await gk2.close();
    }
  });
});
