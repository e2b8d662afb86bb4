/**
 * Webhook ingress with cached signing settings (issue 16 item 3), two
 * instances on one store, each with its own manual clock, on real sockets:
 * the integration's status is decided by the INSERT (a status change made on
 * the other instance is honoured by the very next accept, cache or not); a
 * rotated secret is accepted beside the new one for
 * `webhook.secretOverlapSeconds` and refused after; a new secret is accepted
 * at once on the instance that set it and on the other one; cached settings
 * live at most 5 s.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/domain/clock.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";

const OLD_SECRET = "rotation-secret-old-0123456789";
const NEW_SECRET = "rotation-secret-new-9876543210";
const DAY_MS = 86_400_000;

describe("webhook signing cache, secret rotation, status in the INSERT", () => {
  let db: TestDatabase;
  let a: GrantkeeperUnderTest;
  let b: GrantkeeperUnderTest;
  let n = 0;
  let connectionId: string;

  beforeAll(async () => {
    db = await testDatabase();
    const key = testKey();
    const start = Date.now();
    // Workers idle (no poll during the test): dispositions are what is checked.
    const extra = { jobs: { pollMs: 3_600_000 } };
    a = await startGrantkeeper(db, { encryptionKey: key, instanceId: "instance-a", clock: new ManualClock(start), logName: "a.log", extra });
    b = await startGrantkeeper(db, { encryptionKey: key, instanceId: "instance-b", clock: new ManualClock(start), logName: "b.log", extra });
    await a.gk.providers.put("acme", { authorizationEndpoint: "https://auth.example.com/authorize", tokenEndpoint: "https://auth.example.com/token", clientId: "c", clientSecret: "s" });
    connectionId = (await a.gk.connections.storeGrant({ providerId: "acme", entityId: "e0", source: "import", tokens: { accessToken: "at-rotation", tokenType: "Bearer", expiresInSeconds: 3600 } })).connection.id;
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.cleanup();
  });

  async function integration(secret: string): Promise<string> {
    const res = await a.api("POST", "/v1/integrations", { name: "rotating", entityId: "e0", connectionIds: [connectionId], webhook: { signing: "hmac-sha256", secret } });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }
  /** POST a fresh body (never a duplicate) signed with `secret` to `on`. */
  async function post(on: GrantkeeperUnderTest, integrationId: string, secret: string) {
    const body = JSON.stringify({ n: ++n });
    const signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
    const res = await fetch(`${on.url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "content-type": "application/json", "x-signature-256": signature }, body });
    return { status: res.status, body: (await res.json()) as { disposition?: string; code?: string; reason?: string } };
  }
  const advance = (ms: number) => {
    a.clock.advance(ms);
    b.clock.advance(ms);
  };

  it("a status change made on another instance is honoured by the next accept, although the signing settings are cached", async () => {
    const id = await integration(OLD_SECRET);
    expect(await post(a, id, OLD_SECRET)).toMatchObject({ status: 202, body: { disposition: "queued" } });
    expect((await b.api("POST", `/v1/integrations/${id}/disable`)).status).toBe(200);
    // Same instant on A's clock: its cached signing settings are fresh, the status is read by the INSERT.
    expect(await post(a, id, OLD_SECRET)).toMatchObject({ status: 202, body: { disposition: "parked" } });
    expect((await b.api("POST", `/v1/integrations/${id}/enable`)).status).toBe(200);
    expect(await post(a, id, OLD_SECRET)).toMatchObject({ status: 202, body: { disposition: "queued" } });
    const states = ((await a.api("GET", `/v1/jobs?integrationId=${id}`)).body.items as Array<{ state: string }>).map((j) => j.state);
    // The parked job was replayed by the enable.
    expect(states).toEqual(["queued", "queued", "queued"]);
  });

  it("a new secret is accepted at once on both instances; the old one is accepted for the overlap, then refused", async () => {
    const id = await integration(OLD_SECRET);
    // Both instances have the old settings cached.
    expect(await post(a, id, OLD_SECRET)).toMatchObject({ status: 202 });
    expect(await post(b, id, OLD_SECRET)).toMatchObject({ status: 202 });
    const put = await b.api("PUT", `/v1/integrations/${id}/webhook`, { signing: "hmac-sha256", secret: NEW_SECRET });
    expect(put.status).toBe(200);
    // On the instance that set it, and on the other one whose cache still holds the old settings.
    expect(await post(b, id, NEW_SECRET)).toMatchObject({ status: 202, body: { disposition: "queued" } });
    expect(await post(a, id, NEW_SECRET)).toMatchObject({ status: 202, body: { disposition: "queued" } });
    // Senders still signing with the old secret keep working during the overlap, on both.
    expect(await post(a, id, OLD_SECRET)).toMatchObject({ status: 202 });
    expect(await post(b, id, OLD_SECRET)).toMatchObject({ status: 202 });
    advance(DAY_MS - 1_000);
    expect(await post(a, id, OLD_SECRET)).toMatchObject({ status: 202 });
    // Putting the same secret again is no new rotation: the overlap still ends a day after the real one.
    expect((await b.api("PUT", `/v1/integrations/${id}/webhook`, { signing: "hmac-sha256", secret: NEW_SECRET })).status).toBe(200);
    advance(1_000);
    for (const on of [a, b]) {
      expect(await post(on, id, OLD_SECRET)).toMatchObject({ status: 401, body: { code: "invalid_signature", reason: "mismatch" } });
      expect(await post(on, id, NEW_SECRET)).toMatchObject({ status: 202 });
    }
    // A secret that was never the integration's is refused throughout.
    expect(await post(a, id, "never-this-integrations-secret-0")).toMatchObject({ status: 401, body: { code: "invalid_signature" } });
  });

  it("cached settings live at most 5 s: a webhook block removed on another instance is refused by then", async () => {
    const id = await integration(OLD_SECRET);
    expect(await post(a, id, OLD_SECRET)).toMatchObject({ status: 202 });
    expect((await b.api("DELETE", `/v1/integrations/${id}/webhook`)).status).toBe(200);
    // The instance that removed it refuses at once.
    expect(await post(b, id, OLD_SECRET)).toMatchObject({ status: 401, body: { code: "webhook_signing_not_configured" } });
    advance(5_000);
    expect(await post(a, id, OLD_SECRET)).toMatchObject({ status: 401, body: { code: "webhook_signing_not_configured" } });
  });
});
