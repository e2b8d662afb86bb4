/**
 * Webhook ingress, deny by default (issue 10 item 5), on a real socket:
 * an integration without a `webhook` block takes no inbound webhook; `none`
 * only by name; the alert sink's internal integration is outbound only,
 * whatever its stored signing says; a replay of a signed body whose scheme
 * signs no timestamp is a `duplicate` for 24 h — whatever unsigned delivery
 * header the replayer sets — and a new delivery after that.
 */
import { createHmac } from "node:crypto";
import { sign as githubSign } from "@octokit/webhooks-methods";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alertSinkIntegrationId } from "../../src/integrations/internal.js";
import { internalsOf } from "../../src/internals.js";
import { signedBodyReplayWindowMs } from "../../src/jobs/signatures.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { startReceiver, type Receiver } from "../support/receiver.js";

const SECRET = "ingress-webhook-secret-0123";
const SINK_SECRET = "alert-sink-secret-0123456789";

describe("webhook ingress: deny by default", () => {
  let db: TestDatabase;
  let sink: Receiver;
  let t: GrantkeeperUnderTest;
  let connectionId: string;

  async function integration(extra: Record<string, unknown> = {}): Promise<string> {
    const res = await t.api("POST", "/v1/integrations", { name: "hooks", entityId: "e1", connectionIds: [connectionId], ...extra });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }
  async function post(integrationId: string, body: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${t.url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    return { status: res.status, body: (await res.json()) as any };
  }
  const jobsOf = async (integrationId: string) => (await t.api("GET", `/v1/jobs?integrationId=${integrationId}`)).body.items as Array<{ id: string; idempotencyKey?: string }>;
  const hmacHex = (body: string) => createHmac("sha256", SECRET).update(body).digest("hex");

  beforeAll(async () => {
    db = await testDatabase();
    sink = await startReceiver();
    t = await startGrantkeeper(db, {
      extra: {
        alerts: { sinks: [{ type: "webhook", name: "pager", url: `${sink.url}/alerts`, secret: SINK_SECRET, audience: "ops", minSeverity: "info" }] },
        jobs: { pollMs: 3_600_000 },
      },
    });
    await t.gk.providers.put("acme", { authorizationEndpoint: "https://auth.example.com/authorize", tokenEndpoint: "https://auth.example.com/token", clientId: "c", clientSecret: "s" });
    connectionId = (await t.gk.connections.storeGrant({ providerId: "acme", entityId: "e1", source: "import", tokens: { accessToken: "at-ingress", tokenType: "Bearer", expiresInSeconds: 3600 } })).connection.id;
  });

  afterAll(async () => {
    await t?.close();
    await sink?.close();
    await db?.cleanup();
  });

  it("an integration created without a webhook block refuses every inbound webhook (401 webhook_signing_not_configured) and stores nothing", async () => {
    const id = await integration();
    expect((await t.api("GET", `/v1/integrations/${id}`)).body.webhook).toBeUndefined();
    for (const headers of <Array<Record<string, string>>>[{}, { "x-signature-256": `sha256=${hmacHex("{}")}` }, { "x-hub-signature-256": `sha256=${hmacHex("{}")}` }]) {
      const res = await post(id, "{}", headers);
      expect(res).toMatchObject({ status: 401, body: { code: "webhook_signing_not_configured", status: 401 } });
    }
    expect(await jobsOf(id)).toEqual([]);
  });

  it('signing "none" works only when asked for by name', async () => {
    const id = await integration({ webhook: { signing: "none" } });
    expect((await t.api("GET", `/v1/integrations/${id}`)).body.webhook).toEqual({ signing: "none" });
    expect(await post(id, '{"n":1}')).toMatchObject({ status: 202, body: { disposition: "queued" } });
  });

  it("PUT /v1/integrations/{id}/webhook gives an existing integration its signing; DELETE takes it away again", async () => {
    const id = await integration();
    const missingSecret = await t.api("PUT", `/v1/integrations/${id}/webhook`, { signing: "hmac-sha256" });
    expect(missingSecret).toMatchObject({ status: 422, body: { code: "validation_failed" } });
    expect((await t.api("PUT", `/v1/integrations/${id}/webhook`, { signing: "hmac-sha256", secret: SECRET, extra: 1 })).status).toBe(422);
    expect(await post(id, '{"n":2}', { "x-signature-256": `sha256=${hmacHex('{"n":2}')}` })).toMatchObject({ status: 401, body: { code: "webhook_signing_not_configured" } });

    const set = await t.api("PUT", `/v1/integrations/${id}/webhook`, { signing: "hmac-sha256", secret: SECRET });
    expect(set).toMatchObject({ status: 200, body: { id, webhook: { signing: "hmac-sha256" } } });
    expect(JSON.stringify(set.body)).not.toContain(SECRET);
    expect(await post(id, '{"n":2}', { "x-signature-256": "sha256=" + "0".repeat(64) })).toMatchObject({ status: 401, body: { code: "invalid_signature" } });
    expect(await post(id, '{"n":2}', { "x-signature-256": `sha256=${hmacHex('{"n":2}')}` })).toMatchObject({ status: 202, body: { disposition: "queued" } });

    expect((await t.api("DELETE", `/v1/integrations/${id}/webhook`)).body.webhook).toBeUndefined();
    expect(await post(id, '{"n":3}', { "x-signature-256": `sha256=${hmacHex('{"n":3}')}` })).toMatchObject({ status: 401, body: { code: "webhook_signing_not_configured" } });
    expect(await jobsOf(id)).toHaveLength(1);
    expect((await t.api("PUT", "/v1/integrations/int_0123456789abcdef01234567/webhook", { signing: "none" })).status).toBe(404);
  });

  it("the alert sink's integration is outbound only: nothing posted to it is queued or reaches the sink, whatever its signing column says", async () => {
    const sinkIntegration = alertSinkIntegrationId(`${sink.url}/alerts`);
    const row = await internalsOf(t.gk).store.db.selectFrom("integrations").select(["id", "webhook_signing"]).where("id", "=", sinkIntegration).executeTakeFirst();
    expect(row).toEqual({ id: sinkIntegration, webhook_signing: "not_configured" });
    const forged = JSON.stringify({ id: 1, kind: "grant_invalidated", message: "click https://evil.example/" });
    expect(await post(sinkIntegration, forged)).toMatchObject({ status: 401, body: { code: "webhook_signing_not_configured" } });
    // Even an operator (or a bug) writing `none` into its row opens nothing.
    await internalsOf(t.gk).store.db.updateTable("integrations").set({ webhook_signing: "none" }).where("id", "=", sinkIntegration).execute();
    expect(await post(sinkIntegration, forged)).toMatchObject({ status: 401, body: { code: "webhook_signing_not_configured" } });
    expect((await t.api("PUT", `/v1/integrations/${sinkIntegration}/webhook`, { signing: "none" })).body).toMatchObject({ status: 409, code: "integration_outbound_only" });
    await t.gk.worker.runDue();
    expect(await jobsOf(sinkIntegration)).toEqual([]);
    expect(sink.requests).toEqual([]);
  });

  it("github: a replayed body is a duplicate for 24 h whatever X-GitHub-Delivery says, then a new delivery", async () => {
    const id = await integration({ webhook: { signing: "github", secret: SECRET } });
    const body = JSON.stringify({ action: "opened", issue: { number: 7 } });
    const headers = async (delivery: string) => ({ "x-github-event": "issues", "x-github-delivery": delivery, "x-hub-signature-256": await githubSign(SECRET, body) });
    const first = await post(id, body, await headers("d-1"));
    expect(first).toMatchObject({ status: 202, body: { disposition: "queued" } });
    expect(await post(id, body, await headers("d-1"))).toEqual({ status: 202, body: { jobId: first.body.jobId, disposition: "duplicate" } });
    expect(await post(id, body, await headers("a-fresh-delivery-id"))).toEqual({ status: 202, body: { jobId: first.body.jobId, disposition: "duplicate" } });
    // Another body is another delivery.
    const other = JSON.stringify({ action: "closed", issue: { number: 7 } });
    expect(await post(id, other, { "x-hub-signature-256": await githubSign(SECRET, other) })).toMatchObject({ status: 202, body: { disposition: "queued" } });

    t.clock.advance(signedBodyReplayWindowMs); // exactly 24 h after the first: still inside
    expect(await post(id, body, await headers("d-2"))).toEqual({ status: 202, body: { jobId: first.body.jobId, disposition: "duplicate" } });
    t.clock.advance(1);
    const later = await post(id, body, await headers("d-3"));
    expect(later).toMatchObject({ status: 202, body: { disposition: "queued" } });
    expect(later.body.jobId).not.toBe(first.body.jobId);
    expect(await post(id, body, await headers("d-4"))).toEqual({ status: 202, body: { jobId: later.body.jobId, disposition: "duplicate" } });
    const jobs = await jobsOf(id);
    expect(jobs).toHaveLength(3);
    expect(jobs.find((j) => j.id === later.body.jobId)?.idempotencyKey).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("hmac-sha256 and Slack form bodies: a replay is a duplicate, whatever Idempotency-Key says; Slack events dedupe on event_id", async () => {
    const generic = await integration({ webhook: { signing: "hmac-sha256", secret: SECRET } });
    const body = '{"order":17}';
    const a = await post(generic, body, { "x-signature-256": `sha256=${hmacHex(body)}`, "idempotency-key": "k-1" });
    expect(a).toMatchObject({ status: 202, body: { disposition: "queued" } });
    expect(await post(generic, body, { "x-signature-256": `sha256=${hmacHex(body)}`, "idempotency-key": "k-2" })).toEqual({ status: 202, body: { jobId: a.body.jobId, disposition: "duplicate" } });

    const slack = await integration({ webhook: { signing: "slack", secret: SECRET } });
    const slackPost = (raw: string, contentType: string) => {
      const ts = String(Math.floor(t.clock.now() / 1000));
      const sig = `v0=${createHmac("sha256", SECRET).update(`v0:${ts}:${raw}`).digest("hex")}`;
      return post(slack, raw, { "content-type": contentType, "x-slack-request-timestamp": ts, "x-slack-signature": sig });
    };
    const form = "token=x&command=%2Fdeploy&trigger_id=13345224609.738474920.8088930838d88f008e0";
    const c = await slackPost(form, "application/x-www-form-urlencoded");
    expect(c).toMatchObject({ status: 202, body: { disposition: "queued" } });
    t.clock.advance(60_000); // re-signed a minute later, inside Slack's 5-minute tolerance
    expect(await slackPost(form, "application/x-www-form-urlencoded")).toEqual({ status: 202, body: { jobId: c.body.jobId, disposition: "duplicate" } });
    const e1 = await slackPost(JSON.stringify({ type: "event_callback", event_id: "Ev1", event: { text: "a" } }), "application/json");
    expect(e1).toMatchObject({ status: 202, body: { disposition: "queued" } });
    // Slack's retry of an event carries the same event_id.
    expect(await slackPost(JSON.stringify({ type: "event_callback", event_id: "Ev1", event: { text: "a" }, retry: 1 }), "application/json")).toEqual({ status: 202, body: { jobId: e1.body.jobId, disposition: "duplicate" } });
  });
});
