/**
 * `GET /metrics` end to end, on both backends: refreshes that succeed, fail
 * transiently (503, into active recovery and back) and permanently
 * (invalid_grant), a provider API 401, and jobs of every outcome class —
 * then the exposition is scraped over HTTP, parsed with a Prometheus text
 * parser, and read back by name and labels.
 */
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../jobs/errors.js";
import { testDatabase, type TestDatabase } from "../../test/support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../../test/support/gk.js";
import { allLabelValues, histogramOf, parseExposition, valueOf, type PromMetrics } from "../../test/support/prometheus.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../../test/support/scriptedTokenEndpoint.js";

const WEBHOOK_SECRET = "metrics-webhook-secret";
const ok = () => ({ status: 200, body: { access_token: `at-${Math.random()}`, token_type: "bearer", expires_in: 3600 } });

describe("GET /metrics", () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let t: GrantkeeperUnderTest;
  let api: Server;
  let apiOrigin: string;
  let apiCalls = 0;
  const ids: string[] = [];
  let n = 0;

  async function importGrant(expiresIn: number): Promise<string> {
    const res = await t.api("POST", "/v1/connections", { providerId: "plain", entityId: `e${++n}`, accessToken: `old-at-${n}`, refreshToken: `rt-${n}`, expiresIn });
    expect(res.status).toBe(201);
    ids.push(res.body.id);
    return res.body.id;
  }
  async function refresh(id: string, advanceMs: number) {
    t.clock.advance(advanceMs);
    return (await t.api("POST", `/v1/connections/${id}/refresh`)).body;
  }
  async function send(integrationId: string, body: string): Promise<string> {
    const sig = `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`;
    const res = await fetch(`${t.url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "content-type": "application/json", "x-signature-256": sig }, body });
    expect(res.status).toBe(202);
    const jobId = ((await res.json()) as { jobId: string }).jobId;
    ids.push(jobId);
    return jobId;
  }
  async function scrape(): Promise<{ text: string; metrics: PromMetrics; contentType: string | null }> {
    // No Authorization header: the endpoint is public, like /healthz.
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    return { text, metrics: await parseExposition(text), contentType: res.headers.get("content-type") };
  }

  beforeAll(async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    // The provider API: 401 to the first call (the token it got is "revoked"), 200 after.
    api = createServer((_req, res) => {
      res.writeHead(++apiCalls === 1 ? 401 : 200, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
    apiOrigin = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
    t = await startGrantkeeper(db, {
      refresh: { marginMs: 60_000, jitterMs: 0, minIntervalMs: 0, maxRetries: 1, backoffBaseMs: 1_000, timeoutMs: 2_000 },
      extra: { jobs: { maxAttempts: 3, backoffBaseMs: 60_000, backoffMaxMs: 60_000, pollMs: 3_600_000 } },
    });
    const provider = { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "cid", clientSecret: "metrics-client-secret", apiBaseUrl: apiOrigin };
    expect((await t.api("PUT", "/v1/providers/plain", provider)).status).toBe(200);
  });

  afterAll(async () => {
    await t?.close();
    await ep?.close();
    await new Promise((r) => api?.close(r));
    await db?.cleanup();
  });

  it("counts refreshes by result/class/reason, their latency, expiry lead, degraded and recovery time", async () => {
    const good = await importGrant(30);
    ep.push(ok());
    expect(await refresh(good, 1_000)).toMatchObject({ state: "ready" });

    const flaky = await importGrant(30);
    ep.push({ status: 503, body: "<html>down</html>" });
    expect(await refresh(flaky, 1_000)).toMatchObject({ state: "degraded" });
    ep.push({ status: 503, body: "<html>down</html>" });
    await refresh(flaky, 10_000); // second failure: retries (1) exhausted, active recovery
    ep.push(ok());
    expect(await refresh(flaky, 30_000)).toMatchObject({ state: "ready" });

    const dead = await importGrant(30);
    ep.push({ status: 400, body: { error: "invalid_grant" } });
    expect(await refresh(dead, 1_000)).toMatchObject({ state: "error" });

    const { metrics: m, contentType } = await scrape();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(valueOf(m, "grantkeeper_refresh_attempts_total", { result: "refreshed", class: "none", reason: "ok" })).toBe(2);
    expect(valueOf(m, "grantkeeper_refresh_attempts_total", { result: "failed", class: "transient", reason: "server_error" })).toBe(2);
    expect(valueOf(m, "grantkeeper_refresh_attempts_total", { result: "failed", class: "permanent", reason: "invalid_grant" })).toBe(1);
    expect(histogramOf(m, "grantkeeper_refresh_duration_seconds", { class: "none" })?.count).toBe(2);
    expect(histogramOf(m, "grantkeeper_refresh_duration_seconds", { class: "transient" })?.count).toBe(2);
    expect(histogramOf(m, "grantkeeper_refresh_duration_seconds", { class: "permanent" })?.count).toBe(1);
    expect(valueOf(m, "grantkeeper_recovery_activations_total")).toBe(1);
    // Degraded from the first 503 to the success 40 s later; in active recovery for the last 30 s of it.
    expect(histogramOf(m, "grantkeeper_connection_degraded_seconds")).toMatchObject({ count: 1, sum: 40 });
    expect(histogramOf(m, "grantkeeper_recovery_duration_seconds")).toMatchObject({ count: 1, sum: 30 });
    // `good` was refreshed 29 s before its token expired; `flaky` 11 s after it (late: negative lead).
    expect(histogramOf(m, "grantkeeper_refresh_expiry_lead_seconds")).toMatchObject({ count: 2, sum: 18, buckets: { "0": 1, "60": 2 } });
    expect(valueOf(m, "grantkeeper_connections", { state: "ready" })).toBe(2);
    expect(valueOf(m, "grantkeeper_connections", { state: "error" })).toBe(1);
  });

  it("counts jobs by outcome, provider API 401s, and reads queue depth from the store at scrape time", async () => {
    const conn = await importGrant(3600);
    t.gk.handle("metrics-jobs", async (job, ctx) => {
      const { mode } = job.json<{ mode: string }>();
      if (mode === "user") throw new UserError("the record is invalid", "invalid_record");
      if (mode === "boom") throw new Error("database down");
      if (mode === "api") {
        const res = await ctx.fetch(ctx.connectionIds[0]!, "/me");
        if (!res.ok) throw new Error(`api answered ${res.status}`);
      }
    });
    const created = await t.api("POST", "/v1/integrations", { name: "metrics-jobs", entityId: `e${n}`, connectionIds: [conn], webhook: { signing: "hmac-sha256", secret: WEBHOOK_SECRET } });
    expect(created.status).toBe(201);
    ids.push(created.body.id);
    for (const mode of ["ok", "user", "boom", "api"]) await send(created.body.id, JSON.stringify({ mode }));
    ep.push(ok()); // the refresh after the provider API's 401
    await t.gk.worker.runDue();

    const { metrics: m, text } = await scrape();
    expect(valueOf(m, "grantkeeper_job_runs_total", { outcome: "succeeded" })).toBe(2);
    expect(valueOf(m, "grantkeeper_job_runs_total", { outcome: "failed" })).toBe(1);
    expect(valueOf(m, "grantkeeper_job_runs_total", { outcome: "faulted" })).toBe(1);
    expect(valueOf(m, "grantkeeper_api_unauthorized_total", { provider: "plain" })).toBe(1);
    expect(valueOf(m, "grantkeeper_refresh_attempts_total", { result: "refreshed", class: "none", reason: "ok" })).toBe(3);
    // The faulted job waits for its retry (backoff 60 s on a clock that does not move), as `faulted`.
    expect(valueOf(m, "grantkeeper_jobs", { state: "faulted" })).toBe(1);
    expect(valueOf(m, "grantkeeper_jobs", { state: "queued" })).toBe(0);
    expect(valueOf(m, "grantkeeper_jobs", { state: "succeeded" })).toBe(2);
    expect(valueOf(m, "grantkeeper_jobs", { state: "failed" })).toBe(1);
    expect(valueOf(m, "grantkeeper_jobs", { state: "parked" })).toBe(0);
    expect(valueOf(m, "grantkeeper_breakers_open")).toBe(0);

    // Bounded labels: no connection, job or integration id, no token or secret anywhere.
    const labels = allLabelValues(m);
    expect(labels.length).toBeGreaterThan(10);
    expect(ids.length).toBeGreaterThan(5);
    for (const v of labels) expect(v).not.toMatch(/^(conn|job|int)_/);
    for (const id of ids) expect(text).not.toContain(id);
    for (const secret of t.secrets) expect(text).not.toContain(secret);
  });
});
