/**
 * Auth failures during jobs, against a scripted token endpoint on a real
 * socket: what the job becomes (re-run, parked — never retried to death),
 * which connection is refreshed, and how a parked job comes back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthError } from "../../src/jobs/errors.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";

const ok = () => ({ status: 200, body: { access_token: `at-${Math.random()}`, token_type: "bearer", expires_in: 3600 } });
const invalidGrant = { status: 400, body: { error: "invalid_grant" } };

describe("auth failures during jobs", () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let t: GrantkeeperUnderTest;
  let n = 0;

  beforeAll(async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    t = await startGrantkeeper(db, {
      refresh: { marginMs: 60_000, jitterMs: 0, minIntervalMs: 5_000, timeoutMs: 2_000 },
      extra: { jobs: { maxAttempts: 3, backoffBaseMs: 1_000, backoffMaxMs: 1_000, leaseMs: 10_000, pollMs: 3_600_000 } },
    });
    expect((await t.api("PUT", "/v1/providers/p", { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "cid", clientSecret: "job-auth-client-secret", apiBaseUrl: `${ep.origin}/api` })).status).toBe(200);
    // The scheduler is not started: each test runs the worker (and nothing else) by hand.
  });

  afterAll(async () => {
    await t?.close();
    await ep?.close();
    await db?.cleanup();
  });

  async function grant(expiresIn = 3600): Promise<string> {
    const res = await t.api("POST", "/v1/connections", { providerId: "p", entityId: `e${++n}`, accessToken: `at-${n}`, refreshToken: `rt-${n}`, expiresIn });
    expect(res.status).toBe(201);
    return res.body.id;
  }

  async function handledIntegration(name: string, connectionIds: string[]): Promise<string> {
    const res = await t.api("POST", "/v1/integrations", { name, entityId: "e", connectionIds, webhook: { signing: "none" } });
    expect(res.status).toBe(201);
    return res.body.id;
  }

  async function accept(integrationId: string): Promise<string> {
    const r = await t.gk.ingress.accept(integrationId, new TextEncoder().encode("{}"), new Headers());
    expect(r.disposition).toBe("queued");
    return r.jobId;
  }

  const job = async (id: string) => (await t.api("GET", `/v1/jobs/${id}`)).body;

  it("a handler that finds one of its connections dead parks the job for that connection, refreshing no other", async () => {
    const healthy = await grant();
    const dying = await grant(1);
    const integrationId = await handledIntegration("uses-second", [healthy, dying]);
    // The dead connection is not the integration's first one, so falling back to the first would refresh the wrong grant.
    t.gk.handle("uses-second", async (_job, ctx) => {
      await ctx.token(ctx.connectionIds.find((c) => c === dying)!);
    });
    const jobId = await accept(integrationId);
    t.clock.advance(2_000);
    ep.push(invalidGrant);
    const calls = ep.requests.length;
    await t.gk.worker.runDue();
    expect(ep.requests.length - calls).toBe(1);
    expect(ep.requests.at(-1)!.params.get("refresh_token")).toBe(`rt-${n}`);
    expect(await job(jobId)).toMatchObject({ state: "parked" });
    expect((await t.api("GET", `/v1/integrations/${integrationId}`)).body).toMatchObject({ status: "ERROR", statusReason: "credential_invalidated", statusCause: { connectionId: dying }, parkedJobs: 1 });
  });

  it("an AuthError re-runs the job with a freshly refreshed token", async () => {
    const c = await grant();
    const integrationId = await handledIntegration("auth-once", [c]);
    let runs = 0;
    t.gk.handle("auth-once", async () => {
      if (++runs === 1) throw new AuthError("the API rejected the token", c);
    });
    const jobId = await accept(integrationId);
    ep.push(ok());
    await t.gk.worker.runDue();
    expect(runs).toBe(2);
    expect(await job(jobId)).toMatchObject({ state: "succeeded", attempts: 2 });
  });

  it("a token the API keeps rejecting after a refresh parks the job and pauses the integration — never dead, one token call", async () => {
    const c = await grant();
    const integrationId = await handledIntegration("always-401", [c]);
    let rejecting = true;
    let runs = 0;
    t.gk.handle("always-401", async () => {
      runs++;
      if (rejecting) throw new AuthError("the API rejected the token", c);
    });
    const dead: string[] = [];
    t.gk.hooks.on("job.dead", (e) => void dead.push(e.jobId));
    const jobId = await accept(integrationId);
    ep.push(ok());
    const calls = ep.requests.length;
    await t.gk.worker.runDue();
    // Run, refresh, re-run once with the fresh token; the second rejection parks. The re-run's refresh is not made:
    // a fresh token was just rejected, so another one would not help (and would hammer the provider).
    expect(runs).toBe(2);
    expect(ep.requests.length - calls).toBe(1);
    expect(await job(jobId)).toMatchObject({ state: "parked", attempts: 2, lastError: { class: "auth", code: "auth_rejected", connectionId: c } });
    expect(dead).toEqual([]);
    expect((await t.api("GET", `/v1/integrations/${integrationId}`)).body).toMatchObject({ status: "ERROR", statusReason: "auth_rejected", statusCause: { connectionId: c }, parkedJobs: 1 });
    const later = await t.gk.ingress.accept(integrationId, new TextEncoder().encode("{}"), new Headers());
    expect(later.disposition).toBe("parked");

    // The user reconnects: the integration resumes and both jobs run, in arrival order.
    rejecting = false;
    const entity = (await t.api("GET", `/v1/connections/${c}`)).body.entityId;
    expect((await t.api("POST", "/v1/connections", { providerId: "p", entityId: entity, accessToken: "at-new", refreshToken: "rt-new", expiresIn: 3600 })).status).toBe(200);
    expect((await t.api("GET", `/v1/integrations/${integrationId}`)).body).toMatchObject({ status: "ENABLED", parkedJobs: 0 });
    await t.gk.worker.runDue();
    expect(await job(jobId)).toMatchObject({ state: "succeeded" });
    expect(await job(later.jobId)).toMatchObject({ state: "succeeded" });
  });

  it("ctx.fetch's own refresh counts: a 401 after it re-runs the job once (no second refresh), a second one parks", async () => {
    const c = await grant();
    const integrationId = await handledIntegration("api-401", [c]);
    let runs = 0;
    t.gk.handle("api-401", async (_job, ctx) => {
      runs++;
      const res = await ctx.fetch(c, "/records");
      if (!res.ok) throw new Error(`API answered ${res.status}`);
    });
    const unauthorized = { status: 401, body: { error: "invalid_token" } };
    // Run 1: 401, ctx.fetch refreshes (one token call), 401 again. Run 2: 401, the refresh is rate limited, 401.
    ep.push(unauthorized, ok(), unauthorized, unauthorized, unauthorized);
    const calls = ep.requests.length;
    const jobId = await accept(integrationId);
    await t.gk.worker.runDue();
    expect(runs).toBe(2);
    expect(ep.requests.slice(calls).filter((r) => r.params.get("grant_type") === "refresh_token")).toHaveLength(1);
    expect(await job(jobId)).toMatchObject({ state: "parked", attempts: 2, lastError: { class: "auth", code: "auth_rejected", connectionId: c } });
    expect((await t.api("GET", `/v1/integrations/${integrationId}`)).body).toMatchObject({ status: "ERROR", statusReason: "auth_rejected" });
  });

  it("a refresh refused by the rate limit re-runs the job no sooner than its Retry-After", async () => {
    const c = await grant();
    const integrationId = await handledIntegration("rate-limited-401", [c]);
    let runs = 0;
    t.gk.handle("rate-limited-401", async () => {
      if (++runs === 1) throw new AuthError("the API rejected the token", c);
    });
    // A refresh just happened: the next one is refused for minIntervalMs (5 s).
    ep.push(ok());
    expect((await t.api("POST", `/v1/connections/${c}/refresh`)).status).toBe(200);
    const jobId = await accept(integrationId);
    await t.gk.worker.runDue();
    expect(runs).toBe(1);
    expect(await job(jobId)).toMatchObject({ state: "queued", attempts: 1, lastError: { class: "auth", code: "auth_refresh_deferred" } });
    t.clock.advance(4_999);
    await t.gk.worker.runDue();
    expect(runs).toBe(1);
    t.clock.advance(1);
    await t.gk.worker.runDue();
    expect(runs).toBe(2);
    expect(await job(jobId)).toMatchObject({ state: "succeeded", attempts: 2 });
  });
});
