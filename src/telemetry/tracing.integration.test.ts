/**
 * Spans of real work, on both backends, exported to memory through a
 * NodeTracerProvider registered globally for this file (what
 * `startTracing` does with an OTLP exporter): refresh attempts, job runs,
 * deliveries and provider API calls, with the status rules of tracing.ts.
 */
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import { context, propagation, SpanStatusCode, trace } from "@opentelemetry/api";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contextOf } from "../jobs/context.js";
import { UserError } from "../jobs/errors.js";
import { testDatabase, type TestDatabase } from "../../test/support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../../test/support/gk.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../../test/support/scriptedTokenEndpoint.js";
import { SpanNames } from "./tracing.js";

const WEBHOOK_SECRET = "tracing-webhook-secret";

describe("tracing", () => {
  const exporter = new InMemorySpanExporter();
  let provider: NodeTracerProvider;
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let t: GrantkeeperUnderTest;
  let upstream: Server;
  let upstreamOrigin: string;
  let n = 0;

  const spans = (name: string, attrs: Record<string, unknown> = {}) => exporter.getFinishedSpans().filter((s) => s.name === name && Object.entries(attrs).every(([k, v]) => s.attributes[k] === v));
  const exceptions = (s: ReadableSpan) => s.events.filter((e) => e.name === "exception");
  /** Every string an exporter would send for a span: attributes and event attributes. */
  const strings = (s: ReadableSpan) => [...Object.values(s.attributes), ...s.events.flatMap((e) => Object.values(e.attributes ?? {}))].map(String);

  async function importGrant(): Promise<string> {
    const res = await t.api("POST", "/v1/connections", { providerId: "plain", entityId: `e${++n}`, accessToken: `old-at-secret-${n}`, refreshToken: `old-rt-secret-${n}`, expiresIn: 30 });
    expect(res.status).toBe(201);
    t.secrets.add(`old-at-secret-${n}`).add(`old-rt-secret-${n}`);
    return res.body.id;
  }
  async function send(integrationId: string, body: string): Promise<string> {
    const sig = `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`;
    const res = await fetch(`${t.url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "content-type": "application/json", "x-signature-256": sig }, body });
    expect(res.status).toBe(202);
    return ((await res.json()) as { jobId: string }).jobId;
  }

  beforeAll(async () => {
    provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    provider.register();
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    // Consumer and provider API in one: answers the status named in the path (/status/400), 200 otherwise.
    upstream = createServer((req, res) => {
      const status = Number(/\/status\/(\d{3})/.exec(req.url ?? "")?.[1] ?? 200);
      res.writeHead(status, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    upstreamOrigin = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
    t = await startGrantkeeper(db, {
      refresh: { marginMs: 60_000, jitterMs: 0, minIntervalMs: 0, timeoutMs: 2_000 },
      extra: { jobs: { maxAttempts: 3, backoffBaseMs: 60_000, backoffMaxMs: 60_000, pollMs: 3_600_000 } },
    });
    const def = { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "cid", clientSecret: "tracing-client-secret", apiBaseUrl: upstreamOrigin };
    expect((await t.api("PUT", "/v1/providers/plain", def)).status).toBe(200);
    t.secrets.add("tracing-client-secret");
  });

  afterAll(async () => {
    await t?.close();
    await ep?.close();
    await new Promise((r) => upstream?.close(r));
    await db?.cleanup();
    await provider?.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it("a refresh span carries ids and the result, never a token; a dead grant is not an ERROR, an outage is", async () => {
    const good = await importGrant();
    ep.push({ status: 200, body: { access_token: "new-at-secret", refresh_token: "new-rt-secret", token_type: "bearer", expires_in: 3600 } });
    await t.api("POST", `/v1/connections/${good}/refresh`);
    const [ok] = spans(SpanNames.refresh, { "grantkeeper.connection.id": good });
    expect(ok!.attributes).toMatchObject({ "grantkeeper.provider.id": "plain", "grantkeeper.refresh.mode": "forced", "grantkeeper.refresh.result": "refreshed", "grantkeeper.refresh.class": "none" });
    expect(ok!.status.code).toBe(SpanStatusCode.UNSET);

    const dead = await importGrant();
    ep.push({ status: 400, body: { error: "invalid_grant" } });
    await t.api("POST", `/v1/connections/${dead}/refresh`);
    const [revoked] = spans(SpanNames.refresh, { "grantkeeper.connection.id": dead });
    expect(revoked!.attributes).toMatchObject({ "grantkeeper.refresh.result": "failed", "grantkeeper.refresh.class": "permanent", "grantkeeper.refresh.reason": "invalid_grant" });
    expect(revoked!.status.code).toBe(SpanStatusCode.UNSET);
    expect(exceptions(revoked!)).toHaveLength(1);

    const flaky = await importGrant();
    ep.push({ status: 503, body: "<html>down</html>" });
    await t.api("POST", `/v1/connections/${flaky}/refresh`);
    const [outage] = spans(SpanNames.refresh, { "grantkeeper.connection.id": flaky });
    expect(outage!.status.code).toBe(SpanStatusCode.ERROR);

    expect(t.secrets.has("new-at-secret")).toBe(true);
    for (const s of spans(SpanNames.refresh)) for (const v of strings(s)) for (const secret of t.secrets) expect(v).not.toContain(secret);
  });

  it("job runs: a UserError is an exception event with status UNSET, a fault is ERROR; API calls nest under the run", async () => {
    const conn = await importGrant();
    t.gk.handle("traced", async (job, ctx) => {
      const { mode } = job.json<{ mode: string }>();
      if (mode === "user") throw new UserError("the record is invalid", "invalid_record");
      if (mode === "boom") throw new Error("database down");
      await ctx.fetch(ctx.connectionIds[0]!, mode === "api-500" ? "/status/500" : "/me");
    });
    ep.push({ status: 200, body: { access_token: "job-at-secret", token_type: "bearer", expires_in: 3600 } }); // the first ctx.fetch finds the token due
    const created = await t.api("POST", "/v1/integrations", { name: "traced", entityId: `e${n}`, connectionIds: [conn], webhook: { signing: "hmac-sha256", secret: WEBHOOK_SECRET } });
    expect(created.status).toBe(201);
    const api = await send(created.body.id, '{"mode":"api"}');
    const user = await send(created.body.id, '{"mode":"user"}');
    const boom = await send(created.body.id, '{"mode":"boom"}');
    await t.gk.worker.runDue();

    const [userRun] = spans(SpanNames.jobRun, { "grantkeeper.job.id": user });
    expect(userRun!.status.code).toBe(SpanStatusCode.UNSET);
    expect(userRun!.attributes).toMatchObject({ "grantkeeper.job.outcome": "failed", "grantkeeper.job.code": "invalid_record", "grantkeeper.integration.name": "traced" });
    expect(exceptions(userRun!).map((e) => e.attributes?.["exception.type"])).toEqual(["UserError"]);

    const [boomRun] = spans(SpanNames.jobRun, { "grantkeeper.job.id": boom });
    expect(boomRun!.status).toMatchObject({ code: SpanStatusCode.ERROR, message: "database down" });
    expect(boomRun!.attributes["grantkeeper.job.outcome"]).toBe("faulted");
    expect(exceptions(boomRun!)).toHaveLength(1);

    const [apiRun] = spans(SpanNames.jobRun, { "grantkeeper.job.id": api });
    expect(apiRun!.status.code).toBe(SpanStatusCode.UNSET);
    const [call] = spans(SpanNames.apiCall, { "grantkeeper.connection.id": conn });
    expect(call!.attributes).toMatchObject({ "grantkeeper.provider.id": "plain", "http.request.method": "GET", "http.response.status_code": 200 });
    expect(call!.parentSpanContext?.spanId).toBe(apiRun!.spanContext().spanId);
    // The token the handler asked for was due: its refresh is a child of the API call.
    const [nested] = spans(SpanNames.refresh, { "grantkeeper.connection.id": conn });
    expect(nested!.parentSpanContext?.spanId).toBe(call!.spanContext().spanId);
    for (const s of exporter.getFinishedSpans()) for (const v of strings(s)) for (const secret of t.secrets) expect(v).not.toContain(secret);
  });

  it("deliveries: a consumer's 4xx is a user error (UNSET), its 5xx a fault (ERROR); the span names the host only", async () => {
    const conn = await importGrant();
    const ids: Record<string, string> = {};
    for (const status of [400, 503]) {
      const created = await t.api("POST", "/v1/integrations", {
        name: `deliver-${status}`,
        entityId: `e${n}`,
        connectionIds: [conn],
        delivery: { url: `${upstreamOrigin}/status/${status}?token=delivery-url-secret`, timeoutMs: 2_000 },
        webhook: { signing: "hmac-sha256", secret: WEBHOOK_SECRET },
      });
      expect(created.status).toBe(201);
      ids[status] = await send(created.body.id, "{}");
    }
    await t.gk.worker.runDue();
    const [bad] = spans(SpanNames.jobDeliver, { "grantkeeper.job.id": ids[400] });
    expect(bad!.attributes).toMatchObject({ "server.address": "127.0.0.1", "http.response.status_code": 400, "grantkeeper.job.outcome": "failed" });
    expect(bad!.status.code).toBe(SpanStatusCode.UNSET);
    expect(exceptions(bad!)).toHaveLength(1);
    const [down] = spans(SpanNames.jobDeliver, { "grantkeeper.job.id": ids[503] });
    expect(down!.status.code).toBe(SpanStatusCode.ERROR);
    expect(spans(SpanNames.jobRun, { "grantkeeper.job.id": ids[503] })[0]!.status.code).toBe(SpanStatusCode.ERROR);
    for (const s of spans(SpanNames.jobDeliver)) for (const v of strings(s)) expect(v).not.toContain("delivery-url-secret");
  });
  it("API calls: the proxy and ctx.fetch make the same span (one authorizedFetch), a provider's 5xx is ERROR for both", async () => {
    const conn = await importGrant();
    ep.push({ status: 200, body: { access_token: "api-span-at-secret", token_type: "bearer", expires_in: 3600 } }); // the imported token is due
    const proxied = await fetch(`${t.url}/v1/proxy/${conn}/status/200`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(proxied.status).toBe(200);
    const ctx = contextOf(t.gk, [conn]);
    expect((await ctx.fetch(conn, "/status/200")).status).toBe(200);
    const [viaProxy] = spans(SpanNames.apiCall, { "grantkeeper.connection.id": conn, "grantkeeper.api.caller": "proxy" });
    const [viaHandler] = spans(SpanNames.apiCall, { "grantkeeper.connection.id": conn, "grantkeeper.api.caller": "handler" });
    expect(Object.keys(viaProxy!.attributes).sort()).toEqual(Object.keys(viaHandler!.attributes).sort());
    for (const s of [viaProxy!, viaHandler!]) {
      expect(s.attributes).toMatchObject({ "grantkeeper.provider.id": "plain", "http.request.method": "GET", "server.address": "127.0.0.1", "http.response.status_code": 200, "grantkeeper.api.auth": "accepted" });
      expect(s.status.code).toBe(SpanStatusCode.UNSET);
    }
    expect((await fetch(`${t.url}/v1/proxy/${conn}/status/503`, { headers: { authorization: `Bearer ${t.apiKey}` } })).status).toBe(503);
    expect((await ctx.fetch(conn, "/status/503")).status).toBe(503);
    expect(spans(SpanNames.apiCall, { "grantkeeper.connection.id": conn, "http.response.status_code": 503 }).map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.ERROR]);
    for (const s of spans(SpanNames.apiCall)) for (const v of strings(s)) for (const secret of t.secrets) expect(v).not.toContain(secret);
  });
});
