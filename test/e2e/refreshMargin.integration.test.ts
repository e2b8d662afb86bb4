/**
 * A provider's own `refreshMarginSeconds` applies everywhere a token's
 * freshness is judged — when a grant is stored, in `ensureFresh` (`POST
 * /v1/connections/{id}/token`) and after a refresh — on both sides of the
 * margin, against a scripted token endpoint on a real socket. Before, only
 * the refresh engine read it: a provider needing 20 minutes of margin got
 * tokens handed out 6 minutes before expiry.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";

describe("per-provider refresh margin", () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let t: GrantkeeperUnderTest;
  let n = 0;

  beforeAll(async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    // Global margin 300 s; "wide" wants 1200 s, "narrow" 60 s.
    t = await startGrantkeeper(db, { refresh: { marginMs: 300_000, jitterMs: 0, minIntervalMs: 0, timeoutMs: 2_000 } });
    for (const [id, refreshMarginSeconds] of [["wide", 1200], ["narrow", 60]] as const) {
      expect((await t.api("PUT", `/v1/providers/${id}`, { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "cid", clientSecret: "margin-client-secret", refreshMarginSeconds })).status).toBe(200);
    }
  });

  afterAll(async () => {
    await t?.close();
    await ep?.close();
    await db?.cleanup();
  });

  async function grant(providerId: string, expiresIn: number): Promise<{ id: string; nextRefreshAt: string | null }> {
    const res = await t.api("POST", "/v1/connections", { providerId, entityId: `e${++n}`, accessToken: `imported-${n}`, refreshToken: `rt-${n}`, expiresIn });
    expect(res.status).toBe(201);
    return res.body;
  }
  const inSeconds = (s: number) => new Date(t.clock.now() + s * 1000).toISOString();

  it.each<[string, number, number]>([
    ["wide", 1200, 0], // exactly at the provider's margin: due now
    ["wide", 1201, 1], // 1 s outside it
    ["wide", 900, 0], // inside it (the global 300 s would wait 600 s)
    ["narrow", 240, 180], // the global 300 s would refresh now
    ["narrow", 60, 0],
    ["narrow", 61, 1],
  ])("storing a grant at %s expiring in %i s schedules its refresh in %i s", async (providerId, expiresIn, dueIn) => {
    expect((await grant(providerId, expiresIn)).nextRefreshAt).toBe(inSeconds(dueIn));
  });

  it.each<[string, number, boolean]>([
    ["wide", 1200, true],
    ["wide", 1201, false],
    ["narrow", 60, true],
    ["narrow", 61, false],
    ["narrow", 240, false], // the global margin alone would have refreshed
  ])("ensureFresh at %s with %i s left refreshes first: %s", async (providerId, expiresIn, refreshes) => {
    const c = await grant(providerId, expiresIn);
    // Answered only when a refresh is expected: an unexpected call gets the endpoint's 500 and still counts.
    if (refreshes) ep.push({ status: 200, body: { access_token: `fresh-${n}`, token_type: "bearer", expires_in: 3600 } });
    const calls = ep.requests.length;
    const res = await t.api("POST", `/v1/connections/${c.id}/token`);
    expect(res.status).toBe(200);
    expect(ep.requests.length - calls).toBe(refreshes ? 1 : 0);
    expect(res.body.accessToken).toBe(refreshes ? `fresh-${n}` : `imported-${n}`);
  });

  it("after a refresh, the next one is scheduled by the provider's margin", async () => {
    const c = await grant("wide", 4000);
    ep.push({ status: 200, body: { access_token: "after-refresh", token_type: "bearer", expires_in: 3600 } });
    const res = await t.api("POST", `/v1/connections/${c.id}/refresh`);
    expect(res.status).toBe(200);
    expect(res.body.nextRefreshAt).toBe(inSeconds(3600 - 1200));
  });
});
