/**
 * Alerts end to end: provider failures (an HTML error page, a JSON body that
 * echoes the refresh token) become one alert per episode phase, routed to a
 * log, a Slack receiver (ops), a Slack receiver for users, and a signed
 * generic webhook carried by the job queue — which survives its receiver
 * being down for a while. User-facing text never carries codes, JSON, HTML
 * or tokens; operator text never carries tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyDeliverySignature } from "../../src/jobs/signatures.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";

const RT = "rt-SECRET-refresh-9f8e7d";
const AT = "at-SECRET-access-1a2b3c";
const SINK_SECRET = "alert-sink-signing-secret";
const RECONNECT = "https://app.example.com/reconnect?provider={providerId}&entity={entityId}&connection={connectionId}";
/** What a live connect link looks like: none may appear in any alert or log. */
const LIVE_LINK = /connectToken|gkcs_|\/v1\/connect\//;

describe("episode alerts and sinks", () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let opsSlack: Receiver;
  let userSlack: Receiver;
  let hook: Receiver;
  let t: GrantkeeperUnderTest;
  let id: string;

  const kinds = () => t.gk.alerts.list(0).then((a) => a.map((x) => x.kind));
  async function refresh() {
    t.clock.advance(1_000);
    await t.api("POST", `/v1/connections/${id}/refresh`);
    await t.gk.alerts.idle();
  }

  beforeAll(async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    [opsSlack, userSlack, hook] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
    t = await startGrantkeeper(db, {
      refresh: { minIntervalMs: 1_000, maxRetries: 3 },
      extra: {
        alerts: {
          reconnectUrl: RECONNECT,
          sinks: [
            { type: "log", audience: "ops", minSeverity: "info" },
            { type: "slack", name: "ops-slack", url: `${opsSlack.url}/services/ops`, audience: "ops", minSeverity: "info" },
            { type: "slack", name: "user-slack", url: `${userSlack.url}/services/users`, audience: "user", minSeverity: "info" },
            { type: "webhook", name: "pager", url: `${hook.url}/alerts`, secret: SINK_SECRET, audience: "ops", minSeverity: "warning" },
          ],
        },
        jobs: { backoffBaseMs: 1_000, backoffMaxMs: 1_000, maxAttempts: 10, pollMs: 3_600_000 },
        breaker: { maxConsecutiveFailures: 100, cooldownMs: 1_000 },
      },
    });
    t.secrets.add(RT);
    t.secrets.add(AT);
    await t.api("PUT", "/v1/providers/attio", { displayName: "Attio", authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "attio-client-secret" });
    id = (await t.api("POST", "/v1/connections", { providerId: "attio", entityId: "acct-7", accessToken: AT, refreshToken: RT, expiresIn: 3600 })).body.id;
  });

  afterAll(async () => {
    await t?.close();
    await Promise.all([ep?.close(), opsSlack?.close(), userSlack?.close(), hook?.close()]);
    await db?.cleanup();
  });

  it("a failing streak is one episode: first failure, escalation at 3, recovery mode, then one all-clear", async () => {
    const html = { status: 503, body: `<html><body><h1>Service Unavailable</h1><p>${RT}</p></body></html>` };
    ep.push(html, html, html, html);
    for (let i = 0; i < 4; i++) await refresh();
    expect(await kinds()).toEqual(["refresh_failed", "refresh_escalated", "recovery_entered"]);
    ep.push({ status: 200, body: { access_token: "at-new-1", token_type: "Bearer", expires_in: 3600 } });
    await refresh();
    expect(await kinds()).toEqual(["refresh_failed", "refresh_escalated", "recovery_entered", "recovered"]);
    const recovered = (await t.gk.alerts.list(0)).at(-1)!;
    expect(recovered.message).toMatch(/All clear: connection conn_\w+ \(attio, entity acct-7\) works again after \d+ s/);
  });

  it("flapping (fail, succeed, fail, succeed…) adds no alerts within the flap window", async () => {
    for (let i = 0; i < 3; i++) {
      ep.push({ status: 502, body: "<html>bad gateway</html>" }, { status: 200, body: { access_token: `at-flap-${i}`, token_type: "Bearer", expires_in: 3600 } });
      await refresh();
      await refresh();
    }
    expect((await kinds()).length).toBe(4);
  });

  it("a revoked grant alerts once, with the host app's reconnect page for the user and operator detail for ops", async () => {
    t.clock.advance(3_600_000); // past the flap window: a new episode
    const echo = { status: 400, body: { error: "invalid_grant", error_description: `refresh token ${RT} was revoked`, refresh_token: RT } };
    ep.push(echo);
    await refresh();
    await t.api("POST", `/v1/connections/${id}/refresh`).catch(() => undefined);
    await t.gk.alerts.idle();
    const all = await t.gk.alerts.list(0);
    const invalidated = all.filter((a) => a.kind === "grant_invalidated");
    expect(invalidated).toHaveLength(1);
    expect(invalidated[0]!.severity).toBe("critical");
    const page = `https://app.example.com/reconnect?provider=attio&entity=acct-7&connection=${id}`;
    expect(invalidated[0]!.detail?.reconnectUrl).toBe(page);
    expect(invalidated[0]!.userMessage).toBe(`Your Attio connection has stopped working. Please reconnect your Attio account: ${page}`);
    expect(invalidated[0]!.message).toContain(`Reconnect page: ${page}`);
  });

  it("user-facing sinks get only user text: no codes, JSON, HTML, stack or token", async () => {
    expect(userSlack.requests).toHaveLength(1);
    const text = JSON.parse(userSlack.requests[0]!.body).text as string;
    expect(text).toContain("Please reconnect your Attio account: http");
    for (const bad of ["invalid_grant", "{", "<html", "http_5", "Error", RT, AT]) expect(text).not.toContain(bad);
  });

  it("ops Slack gets every alert with codes, in Block Kit, never a token", async () => {
    const bodies = opsSlack.requests.map((r) => JSON.parse(r.body) as { text: string; blocks: unknown[] });
    expect(bodies.length).toBe((await kinds()).length);
    expect(bodies.every((b) => Array.isArray(b.blocks) && b.blocks.length === 2)).toBe(true);
    const joined = opsSlack.requests.map((r) => r.body).join("\n");
    expect(joined).toContain("invalid_grant");
    expect(joined).toContain("http_503");
    expect(joined).not.toContain(RT);
    expect(joined).not.toContain(AT);
  });

  it("the generic webhook is signed, carried by the job queue, and survives its receiver being down", async () => {
    hook.answer(503, 503, 503);
    await t.gk.worker.runDue();
    for (let i = 0; i < 10 && hook.requests.filter((r) => r.headers["grantkeeper-signature"] && true).length < 6; i++) {
      t.clock.advance(2_000);
      await t.gk.worker.runDue();
    }
    const delivered = new Map<number, string>();
    for (const r of hook.requests) {
      expect(verifyDeliverySignature(SINK_SECRET, String(r.headers["grantkeeper-signature"]), r.body, t.clock.now(), 3_600_000 * 24)).toBe(true);
      const alert = JSON.parse(JSON.parse(r.body).body) as { id: number; kind: string; severity: string };
      delivered.set(alert.id, alert.kind);
    }
    const expected = (await t.gk.alerts.list(0)).filter((a) => a.severity !== "info");
    expect([...delivered.keys()].sort()).toEqual(expected.map((a) => a.id).sort());
    expect(hook.requests.length).toBeGreaterThan(expected.length); // the down period was retried
    expect(hook.requests.map((r) => r.body).join("")).not.toContain(RT);
  });

  it("GET /v1/alerts lists the episode alerts; logs never hold a token", async () => {
    const res = await t.api("GET", "/v1/alerts?since=1970-01-01T00:00:00Z");
    expect(res.status).toBe(200);
    expect(res.body.items.map((a: any) => a.kind)).toEqual(await kinds());
    expect(res.body.items[0]).toMatchObject({ subject: { connectionId: id }, severity: "info" });
    const logs = t.logText();
    for (const s of t.secrets) expect(logs.includes(s)).toBe(false);
  });

  it("no alert, sink or log line carries a live connect link", async () => {
    const everywhere = [
      JSON.stringify(await t.gk.alerts.list(0)),
      ...opsSlack.requests.map((r) => r.body),
      ...userSlack.requests.map((r) => r.body),
      ...hook.requests.map((r) => r.body),
      t.logText(),
    ];
    expect(everywhere.join("\n")).toContain("grant_invalidated");
    for (const text of everywhere) expect(text).not.toMatch(LIVE_LINK);
  });

  it("counts alerts sent per kind and sink in /metrics", async () => {
    const text = await (await fetch(`${t.url}/metrics`)).text();
    const invalidated = (await t.gk.alerts.list(0)).filter((a) => a.kind === "grant_invalidated").length;
    expect(text).toContain(`grantkeeper_alerts_sent_total{kind="grant_invalidated",sink="user-slack"} ${invalidated}`);
    expect(text).toMatch(/grantkeeper_alerts_sent_total\{kind="refresh_failed",sink="ops-slack"\} [1-9]/);
  });
});
