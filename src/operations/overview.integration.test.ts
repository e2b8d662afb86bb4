/**
 * The dashboard's numbers on a real store (SQLite and PostgreSQL): refresh
 * outcomes bucketed per hour from connection events, open alert episodes with
 * their latest alert, counts, and the sign-out list.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase, testKey, type TestDatabase } from "../../test/support/backend.js";
import { ManualClock } from "../domain/clock.js";
import { createGrantkeeper, type Grantkeeper } from "../grantkeeper.js";
import { internalsOf } from "../internals.js";
import { AlertRepository } from "../store/alerts.js";
import { ConnectionRepository } from "../store/connections.js";

const HOUR = 3_600_000;
// 10:30 UTC: the current hour started at 10:00.
const NOW = Date.UTC(2026, 11, 5, 10, 30);

describe("gk.operations on a real store", () => {
  let db: TestDatabase;
  let gk: Grantkeeper;
  const clock = new ManualClock(NOW);
  let connId: string;

  beforeAll(async () => {
    db = await testDatabase();
    gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: testKey(), clock, fetch: async () => new Response("no calls", { status: 599 }) });
    await gk.providers.put("acme", { displayName: "Acme", authorizationEndpoint: "https://a.example/authorize", tokenEndpoint: "https://a.example/token", clientId: "c" });
    connId = (await gk.connections.storeGrant({ providerId: "acme", entityId: "e1", source: "import", tokens: { accessToken: "at", tokenType: "Bearer", refreshToken: "rt", expiresInSeconds: 3600 } })).connection.id;
    const repo = new ConnectionRepository(internalsOf(gk).store.db);
    const ev = (atMs: number, type: string, cls?: "transient" | "permanent") => repo.appendEvent({ connectionId: connId, atMs, type, message: type, ...(cls ? { class: cls, code: "x" } : {}) });
    await ev(NOW - 25 * HOUR, "refreshed"); // before the window
    await ev(NOW - 23 * HOUR - 10 * 60_000, "refreshed"); // 11:20 yesterday: the first hour of the window
    await ev(NOW - 2 * HOUR, "refreshed");
    await ev(NOW - 2 * HOUR + 60_000, "refresh_failed", "transient");
    await ev(NOW - 5 * 60_000, "refresh_failed", "permanent");
    await ev(NOW - 4 * 60_000, "invalidated", "permanent"); // not a refresh outcome
    await ev(NOW - 60_000, "refreshed");
  }, 60_000);

  afterAll(async () => {
    await gk?.close();
    await db?.cleanup();
  });

  it("buckets refresh outcomes per hour over the last 24 hours, the current hour last, empty hours as zeros", async () => {
    const hours = await gk.operations.refreshOutcomes(24);
    expect(hours).toHaveLength(24);
    expect(hours[23]!.hourStartMs).toBe(Date.UTC(2026, 11, 5, 10));
    expect(hours[0]!.hourStartMs).toBe(Date.UTC(2026, 11, 4, 11));
    expect(hours[0]).toMatchObject({ succeeded: 1, transient: 0, permanent: 0 });
    expect(hours[21]).toMatchObject({ succeeded: 1, transient: 1, permanent: 0 });
    expect(hours[23]).toMatchObject({ succeeded: 1, transient: 0, permanent: 1 });
    const total = hours.reduce((a, h) => a + h.succeeded + h.transient + h.permanent, 0);
    expect(total).toBe(5);
    await expect(gk.operations.refreshOutcomes(0)).rejects.toThrow(RangeError);
  });

  it("lists open episodes with the phase and severity of their latest alert; resolved ones are left out", async () => {
    const alerts = new AlertRepository(internalsOf(gk).store.db);
    await alerts.saveEpisode(`connectionId:${connId}`, { status: "open", openedAt: NOW - 10 * 60_000, sent: ["refresh_failed", "grant_invalidated"] }, NOW);
    await alerts.insert({ kind: "refresh_failed", subject_type: "connectionId", subject_id: connId, severity: "warning", message: "first", user_message: null, detail: null, at: NOW - 9 * 60_000 });
    await alerts.insert({ kind: "grant_invalidated", subject_type: "connectionId", subject_id: connId, severity: "critical", message: "dead", user_message: null, detail: null, at: NOW - 8 * 60_000 });
    await alerts.saveEpisode("target:http://127.0.0.1:9/x", { status: "resolved", openedAt: NOW - HOUR, resolvedAt: NOW - 30 * 60_000, sent: ["breaker_opened"] }, NOW);
    const ov = await gk.operations.overview();
    expect(ov.openEpisodes).toEqual([{ subjectType: "connectionId", subjectId: connId, openedAt: new Date(NOW - 10 * 60_000).toISOString(), phase: "grant_invalidated", severity: "critical", message: "dead" }]);
    expect(ov.connectionsByState).toEqual({ pending: 1 });
    expect(ov.providers).toEqual([{ id: "acme", displayName: "Acme", connections: { pending: 1 }, breaker: "closed" }]);
    expect(ov).toMatchObject({ parkedJobs: 0, deadJobs: 0, openTargetBreakers: [], at: new Date(NOW).toISOString() });
  });

  it("remembers a sign-out until the session would have expired, then forgets it", async () => {
    expect(await gk.operations.isSignedOut("session-a")).toBe(false);
    await gk.operations.signOut("session-a", NOW + HOUR);
    await gk.operations.signOut("session-a", NOW + HOUR); // twice is fine
    expect(await gk.operations.isSignedOut("session-a")).toBe(true);
    const rows = await internalsOf(gk).store.db.selectFrom("dashboard_sign_outs").selectAll().execute();
    expect(rows.map((r) => r.session_hash)).not.toContain("session-a"); // only a hash is stored
    clock.advance(HOUR);
    await gk.operations.signOut("session-b", NOW + 2 * HOUR); // sweeps the expired row
    expect(await gk.operations.isSignedOut("session-a")).toBe(false);
    expect(await gk.operations.isSignedOut("session-b")).toBe(true);
  });
});
