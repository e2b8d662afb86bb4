/**
 * The connect flow's own purge of expired OAuth states and connect sessions
 * (for library users without a retention sweep): bounded per purge, at most
 * once per ten minutes, with the sweep's cutoffs — a session expired less
 * than a day ago stays, so its late click still hears "expired".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../domain/clock.js";
import { CONNECT_SESSION_GRACE_MS } from "../domain/retention.js";
import { createGrantkeeper, type Grantkeeper } from "../grantkeeper.js";
import { createApp } from "../http/app.js";
import { internalsOf } from "../internals.js";
import { testDatabase, testKey, type TestDatabase } from "../../test/support/backend.js";

const NOW = Date.UTC(2026, 11, 5);
const OLD = 600;
const IN_GRACE = 3;

let db: TestDatabase;
let gk: Grantkeeper;
const clock = new ManualClock(NOW);

beforeAll(async () => {
  db = await testDatabase();
  gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: testKey(), clock, publicUrl: "http://127.0.0.1:7420" });
  await gk.providers.put("acme", { authorizationEndpoint: "https://auth.example.com/authorize", tokenEndpoint: "https://auth.example.com/token", clientId: "c", clientSecret: "s" });
  const { db: store } = internalsOf(gk).store;
  const expiredAt = NOW - CONNECT_SESSION_GRACE_MS - 60_000;
  const states = Array.from({ length: OLD }, (_, i) => ({ state_hash: `old-${i}`, provider_id: "acme", entity_id: "e", code_verifier_ct: "x", return_to: null, created_at: expiredAt - 600_000, expires_at: NOW - 1 - i, used_at: null, session_id: null, binding_hash: null }));
  const session = (id: string, expiresAt: number) => ({ id, token_hash: `hash-${id}`, provider_id: "acme", entity_id: "e", scopes: null, return_to: null, connection_config: null, created_at: expiresAt - 3_600_000, expires_at: expiresAt, completed_at: null, connection_id: null });
  const sessions = [...Array.from({ length: OLD }, (_, i) => session(`old-${i}`, expiredAt - i)), ...Array.from({ length: IN_GRACE }, (_, i) => session(`grace-${i}`, NOW - 60_000 - i))];
  for (let i = 0; i < OLD; i += 100) await store.insertInto("oauth_states").values(states.slice(i, i + 100)).execute();
  for (let i = 0; i < sessions.length; i += 100) await store.insertInto("connect_sessions").values(sessions.slice(i, i + 100)).execute();
});

afterAll(async () => {
  await gk?.close();
  await db?.cleanup();
});

async function openLink(): Promise<void> {
  const app = createApp(gk, { apiKey: "purge-test-key" });
  const { connectUrl } = await gk.connectSessions.create({ providerId: "acme", entityId: "someone" });
  const url = new URL(connectUrl);
  const res = await app.request(url.pathname + url.search);
  // The flow began: off to the authorization server.
  expect(res.status).toBe(302);
  expect(res.headers.get("location")).toMatch(/^https:\/\/auth\.example\.com\/authorize\?/);
}

async function left(): Promise<{ oldStates: number; oldSessions: number; graceSessions: number }> {
  const { db: store } = internalsOf(gk).store;
  const count = async (table: "oauth_states" | "connect_sessions", prefix: string) =>
    Number((await store.selectFrom(table).select((eb) => eb.fn.countAll().as("n")).where(table === "oauth_states" ? "state_hash" : "id", "like", `${prefix}%`).executeTakeFirstOrThrow()).n);
  return { oldStates: await count("oauth_states", "old-"), oldSessions: await count("connect_sessions", "old-"), graceSessions: await count("connect_sessions", "grace-") };
}

describe("the connect flow's purge of expired states and sessions", () => {
  it("deletes at most 500 of each per purge, oldest first, once per ten minutes, and keeps sessions within their grace", async () => {
    await openLink();
    expect(await left()).toEqual({ oldStates: OLD - 500, oldSessions: OLD - 500, graceSessions: IN_GRACE });
    // Within ten minutes: no second purge.
    clock.advance(5 * 60_000);
    await openLink();
    expect(await left()).toEqual({ oldStates: OLD - 500, oldSessions: OLD - 500, graceSessions: IN_GRACE });
    clock.advance(5 * 60_000 + 1);
    await openLink();
    expect(await left()).toEqual({ oldStates: 0, oldSessions: 0, graceSessions: IN_GRACE });
  });
});
