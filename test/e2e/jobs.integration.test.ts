/**
 * Jobs end to end: signed webhook ingress, idempotency, parking while the
 * grant is dead and replay in arrival order after re-authorization through
 * the real login, outcome classes, the 424 auth_failed path, per-target
 * breaker with a cooldown on every path and a half-open probe, library
 * handlers, and a cleanup failure that must not stop the worker.
 */
import { createHmac } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../../src/jobs/errors.js";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startConsumer, type Consumer } from "../support/consumer.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { connectEntity } from "../support/connect.js";
import { rawRequest } from "../support/upstream.js";
import { internalsOf } from "../../src/internals.js";

const WEBHOOK_SECRET = "webhook-signing-secret-value";

describe("jobs", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let t: GrantkeeperUnderTest;
  let consumer: Consumer;
  let aliceConn: string;
  const events: string[] = [];

  async function connect(entityId: string): Promise<string> {
    return (await connectEntity(t.gk, "acme", entityId)).body.connection.id;
  }
  async function integration(name: string, delivery: string | undefined, extra: Record<string, unknown> = {}) {
    const res = await t.api("POST", "/v1/integrations", { name, entityId: "alice", connectionIds: [aliceConn], ...(delivery ? { delivery: { url: delivery, timeoutMs: 2000 } } : {}), webhook: { signing: "hmac-sha256", secret: WEBHOOK_SECRET }, ...extra });
    expect(res.status).toBe(201);
    return res.body as { id: string; deliverySecret?: string };
  }
  async function send(integrationId: string, body: string, headers: Record<string, string> = {}) {
    const sig = `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`;
    const res = await fetch(`${t.url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "content-type": "application/json", "x-signature-256": sig, ...headers }, body });
    return { status: res.status, body: (await res.json()) as any };
  }
  const run = () => t.gk.worker.runDue();
  const job = async (id: string) => (await t.api("GET", `/v1/jobs/${id}`)).body;

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db, {
      refresh: { marginMs: 30_000, jitterMs: 0, minIntervalMs: 0, timeoutMs: 2_000 },
      extra: { jobs: { maxAttempts: 2, backoffBaseMs: 1_000, backoffMaxMs: 1_000, leaseMs: 10_000, pollMs: 3_600_000 }, breaker: { maxConsecutiveFailures: 3, cooldownMs: 60_000 } },
    });
    as = await startAuthServer({ accessTokenTtlSeconds: 600, clients: [{ clientId: "c", clientSecret: "jobs-client-secret", redirectUris: [`${t.url}/v1/oauth/callback`] }] });
    await t.api("PUT", "/v1/providers/acme", { issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, clientId: "c", clientSecret: "jobs-client-secret", scopes: ["openid"], apiBaseUrl: as.issuer });
    aliceConn = await connect("alice");
    consumer = await startConsumer(() => t.clock.now());
    for (const k of ["job.dead", "breaker.opened", "breaker.closed"] as const) t.gk.hooks.on(k, () => void events.push(k));
    await t.gk.start();
  });

  afterAll(async () => {
    await t?.close();
    await consumer?.close();
    await as?.close();
    await db?.cleanup();
  });

  it("rejects a bad signature (401), an unknown integration (404) and a body over the limit (413), storing nothing", async () => {
    const i = await integration("ingress", consumer.url);
    const bad = await fetch(`${t.url}/v1/webhooks/${i.id}`, { method: "POST", headers: { "x-signature-256": "sha256=00" }, body: "{}" });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as any).code).toBe("invalid_signature");
    expect((await send("int_doesnotexist", "{}")).status).toBe(404);
    expect((await send(i.id, "x".repeat(1_048_577))).status).toBe(413);
    expect((await t.api("GET", `/v1/jobs?integrationId=${i.id}`)).body.items).toHaveLength(0);
  });

  it("accepts a signed webhook (202 after commit) and delivers it signed, body intact", async () => {
    const i = await integration("delivery", consumer.url);
    consumer.secret = i.deliverySecret!;
    const body = JSON.stringify({ event: "record.created", id: 1, text: "héllo" });
    const res = await send(i.id, body);
    expect(res).toMatchObject({ status: 202, body: { disposition: "queued" } });
    await run();
    const got = consumer.received.find((r) => r.jobId === res.body.jobId)!;
    expect(got).toMatchObject({ body, signatureValid: true, attempt: 1 });
    expect(got.headers.authorization).toBeUndefined();
    expect(await job(res.body.jobId)).toMatchObject({ state: "succeeded", attempts: 1 });
  });

  it("hands the consumer the sender's headers whatever their names, without its credentials", async () => {
    const i = await integration("header-names", consumer.url);
    consumer.secret = i.deliverySecret!;
    const body = '{"n":"names"}';
    const sig = `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`;
    // node:http, not fetch (Node 20's fetch drops a header named `__proto__`); a computed key, which a literal `__proto__:` is not.
    const headers = { "content-type": "application/json", "x-signature-256": sig, ["__proto__"]: "p", constructor: "c", authorization: "Bearer sender-secret" };
    const res = await rawRequest(t.url, "POST", `/v1/webhooks/${i.id}`, headers, body);
    expect(res.status).toBe(202);
    const { jobId } = JSON.parse(res.body) as { jobId: string };
    await run();
    const got = consumer.received.find((r) => r.jobId === jobId)!;
    expect(Object.hasOwn(got.headers, "__proto__") && got.headers["__proto__"]).toBe("p");
    expect(Object.hasOwn(got.headers, "constructor") && got.headers.constructor).toBe("c");
    expect(got.headers.authorization).toBeUndefined();
  });

  it("records a duplicate delivery (same Idempotency-Key) once", async () => {
    const i = await integration("idempotent", consumer.url);
    const a = await send(i.id, '{"n":1}', { "idempotency-key": "evt-42" });
    const b = await send(i.id, '{"n":1}', { "idempotency-key": "evt-42" });
    expect(b).toMatchObject({ status: 202, body: { jobId: a.body.jobId, disposition: "duplicate" } });
    expect((await t.api("GET", `/v1/jobs?integrationId=${i.id}`)).body.items).toHaveLength(1);
  });

  it("parks webhooks while the grant is dead and replays exactly them, in arrival order, after re-authorization", async () => {
    const i = await integration("parking", consumer.url);
    consumer.secret = i.deliverySecret!;
    await as.revokeGrantsOf("alice");
    await t.api("POST", `/v1/connections/${aliceConn}/refresh`);
    expect((await t.api("GET", `/v1/integrations/${i.id}`)).body).toMatchObject({ status: "ERROR", statusReason: "credential_invalidated" });
    const accepted: string[] = [];
    for (let n = 0; n < 5; n++) {
      const r = await send(i.id, JSON.stringify({ n }));
      expect(r.body.disposition).toBe("parked");
      accepted.push(r.body.jobId);
    }
    await run();
    expect(consumer.received.filter((r) => accepted.includes(r.jobId))).toHaveLength(0);
    expect((await t.api("GET", `/v1/integrations/${i.id}`)).body.parkedJobs).toBe(5);
    expect((await t.api("POST", `/v1/integrations/${i.id}/replay`)).status).toBe(409);

    expect(await connect("alice")).toBe(aliceConn);
    expect((await t.api("GET", `/v1/integrations/${i.id}`)).body).toMatchObject({ status: "ENABLED", parkedJobs: 0 });
    await run();
    const delivered = consumer.received.filter((r) => accepted.includes(r.jobId)).map((r) => r.jobId);
    expect(delivered).toEqual(accepted);
    expect(consumer.received.filter((r) => accepted.includes(r.jobId)).map((r) => JSON.parse(r.body).n)).toEqual([0, 1, 2, 3, 4]);
  });

  it("a consumer 4xx is a failed job (user error): recorded, not retried", async () => {
    const i = await integration("user-error", consumer.url);
    consumer.answer({ status: 400, body: { message: "record invalid" } });
    const r = await send(i.id, "{}");
    await run();
    t.clock.advance(3_600_000);
    await run();
    expect(consumer.received.filter((x) => x.jobId === r.body.jobId)).toHaveLength(1);
    expect(await job(r.body.jobId)).toMatchObject({ state: "failed", lastError: { class: "user", code: "http_400" } });
  });

  it("a consumer 5xx is a fault: retried after the cooldown, then dead with one job.dead event", async () => {
    const i = await integration("faults", `${consumer.url}?target=faults`);
    consumer.answer({ status: 503 }, { status: 503 });
    const r = await send(i.id, "{}");
    await run();
    expect(await job(r.body.jobId)).toMatchObject({ state: "faulted", attempts: 1, lastError: { class: "infra", code: "http_503" } });
    // the cooldown holds every path: a new job for the same target waits too
    const other = await send(i.id, '{"later":true}');
    await run();
    expect(consumer.received.filter((x) => x.jobId === other.body.jobId)).toHaveLength(0);
    t.clock.advance(60_000);
    await run();
    expect(await job(r.body.jobId)).toMatchObject({ state: "dead", attempts: 2 });
    expect(events.filter((e) => e === "job.dead")).toHaveLength(1);
    t.clock.advance(60_000);
    await run();
    expect(await job(other.body.jobId)).toMatchObject({ state: "succeeded" });
  });

  it("three consecutive faults open the target's breaker: ERROR(circuit_open), jobs parked; a probe after the cooldown closes it and replays", async () => {
    const target = `${consumer.url}?target=breaker`;
    const i = await integration("breaker", target);
    consumer.answer({ status: 500 }, { status: 500 }, { status: 500 });
    const first = await send(i.id, '{"seq":1}');
    await run();
    t.clock.advance(60_000);
    await run();
    const second = await send(i.id, '{"seq":2}');
    t.clock.advance(60_000);
    await run();
    expect((await t.api("GET", `/v1/integrations/${i.id}`)).body).toMatchObject({ status: "ERROR", statusReason: "circuit_open", statusCause: { target } });
    expect(events).toContain("breaker.opened");
    const third = await send(i.id, '{"seq":3}');
    expect(third.body.disposition).toBe("parked");
    await run();
    expect(consumer.received.filter((x) => x.jobId === third.body.jobId)).toHaveLength(0);
    t.clock.advance(60_000);
    await run();
    expect(events).toContain("breaker.closed");
    expect((await t.api("GET", `/v1/integrations/${i.id}`)).body).toMatchObject({ status: "ENABLED", parkedJobs: 0 });
    expect(await job(second.body.jobId)).toMatchObject({ state: "succeeded" });
    expect(await job(third.body.jobId)).toMatchObject({ state: "succeeded" });
    expect((await job(first.body.jobId)).state).toBe("dead");
  });

  it("424 auth_failed refreshes the connection (single-flight) and re-runs the job", async () => {
    const i = await integration("auth", `${consumer.url}?target=auth`);
    consumer.answer({ status: 424, body: { code: "auth_failed", connectionId: aliceConn } });
    const before = as.refreshRequests();
    const r = await send(i.id, "{}");
    await run();
    expect(as.refreshRequests()).toBe(before + 1);
    expect(await job(r.body.jobId)).toMatchObject({ state: "succeeded", attempts: 2 });
  });

  it("library handlers: fresh tokens through ctx, UserError is failed, a throw is a fault", async () => {
    const seen: string[] = [];
    t.gk.handle("handled", async (j, ctx) => {
      const body = j.json<{ mode: string }>();
      seen.push(body.mode);
      const token = await ctx.token(ctx.connectionIds[0]!);
      expect(token.length).toBeGreaterThan(10);
      if (body.mode === "user") throw new UserError("the record is invalid", "invalid_record");
      if (body.mode === "boom") throw new Error("database down");
    });
    const i = await integration("handled", undefined);
    const ok = await send(i.id, '{"mode":"ok"}');
    const user = await send(i.id, '{"mode":"user"}');
    const boom = await send(i.id, '{"mode":"boom"}');
    await run();
    expect(await job(ok.body.jobId)).toMatchObject({ state: "succeeded" });
    expect(await job(user.body.jobId)).toMatchObject({ state: "failed", lastError: { class: "user", code: "invalid_record" } });
    expect(await job(boom.body.jobId)).toMatchObject({ state: "faulted", lastError: { class: "infra", code: "handler_error" } });
    expect(seen).toEqual(["ok", "user", "boom"]);
  });

  it("a store failure while recording an outcome never stops the worker; the job runs again after its lease", async () => {
    const i = await integration("cleanup", `${consumer.url}?target=cleanup`);
    const kdb = internalsOf(t.gk).store.db;
    if (db.backend === "sqlite") {
      await sql`CREATE TRIGGER fail_finish BEFORE UPDATE OF state ON jobs WHEN NEW.state = 'succeeded' BEGIN SELECT RAISE(ABORT, 'injected failure'); END`.execute(kdb);
    } else {
      await sql`CREATE FUNCTION fail_finish() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql`.execute(kdb);
      await sql`CREATE TRIGGER fail_finish BEFORE UPDATE ON jobs FOR EACH ROW WHEN (NEW.state = 'succeeded') EXECUTE FUNCTION fail_finish()`.execute(kdb);
    }
    const r = await send(i.id, "{}");
    await run();
    expect(t.gk.worker.stats.cleanupErrors).toBe(1);
    expect(await job(r.body.jobId)).toMatchObject({ state: "running" });
    await sql`DROP TRIGGER fail_finish${db.backend === "postgres" ? sql` ON jobs` : sql``}`.execute(kdb);
    t.clock.advance(10_001);
    await run();
    expect(await job(r.body.jobId)).toMatchObject({ state: "succeeded" });
    expect(consumer.received.filter((x) => x.jobId === r.body.jobId).length).toBe(2); // at least once
    expect(t.logText()).toContain("could not record a job outcome");
  });
});
