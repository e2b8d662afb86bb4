/**
 * `grantkeeper serve` as real processes: two of them on one store race for the
 * same due grant and make exactly one token call; each answers the API with
 * the key from its environment; their logs hold no token, secret or key; they
 * stop cleanly on SIGTERM. (`npm test` builds dist/ first.)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { freePort, startGrantkeeper } from "../support/gk.js";
import { connectEntity } from "../support/connect.js";
import { waitFor } from "../support/wait.js";
import { internalsOf } from "../../src/internals.js";

const MAIN = join(import.meta.dirname, "../../dist/src/cli/main.js");

interface Proc {
  child: ChildProcess;
  url: string;
  out: () => string;
  exited: Promise<number | null>;
}

async function serve(env: Record<string, string>): Promise<Proc> {
  const port = await freePort();
  let out = "";
  const child = spawn(process.execPath, [MAIN, "serve"], { env: { ...process.env, ...env, GRANTKEEPER_PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor("serve to become ready", () => fetch(`${url}/readyz`).then((r) => r.ok, () => false));
  } catch (e) {
    child.kill("SIGKILL");
    throw new Error(`serve did not become ready:\n${out}`, { cause: e });
  }
  return { child, url, out: () => out, exited };
}

describe("grantkeeper serve processes", () => {
  let db: TestDatabase;
  let as: AuthServer;
  const procs: Proc[] = [];
  const apiKey = `gk_proc_${testKey().slice(0, 12).replace(/[^A-Za-z0-9]/g, "x")}`;
  const encryptionKey = testKey();
  const secrets = new Set<string>([apiKey, encryptionKey, "proc-client-secret"]);
  let connectionId: string;

  beforeAll(async () => {
    db = await testDatabase();
    // Connect a real grant with an in-process instance on the same store and key, then make it due.
    const setup = await startGrantkeeper(db, { encryptionKey });
    as = await startAuthServer({ accessTokenTtlSeconds: 3600, clients: [{ clientId: "c", clientSecret: "proc-client-secret", redirectUris: [`${setup.url}/v1/oauth/callback`] }] });
    await setup.api("PUT", "/v1/providers/acme", { issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, revocationEndpoint: as.revocationEndpoint, clientId: "c", clientSecret: "proc-client-secret", scopes: ["openid"] });
    connectionId = (await connectEntity(setup.gk, "acme", "proc-user")).body.connection.id;
    for (const s of setup.secrets) secrets.add(s);
    await internalsOf(setup.gk).store.db.updateTable("connections").set({ next_refresh_at: Date.now() - 1000 }).where("id", "=", connectionId).execute();
    await setup.close();
  });

  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await as?.close();
    await db?.cleanup();
  });

  it("two processes racing for one due grant make one token call", async () => {
    const config = join(db.dir, "grantkeeper.config.yaml");
    writeFileSync(config, "refresh:\n  marginSeconds: 60\n  jitterSeconds: 0\nscheduler:\n  maxSleepSeconds: 1\n");
    const env = { GRANTKEEPER_DATABASE_URL: db.url, GRANTKEEPER_API_KEY: apiKey, GRANTKEEPER_ENCRYPTION_KEY: encryptionKey, GRANTKEEPER_CONFIG: config };
    const before = as.refreshRequests();
    procs.push(...(await Promise.all([serve(env), serve(env)])));
    const get = async (p: Proc) => (await fetch(`${p.url}/v1/connections/${connectionId}`, { headers: { authorization: `Bearer ${apiKey}` } })).json() as Promise<any>;
    const c = await waitFor("the due grant to be refreshed", async () => {
      const c = await get(procs[0]!);
      return c.lastRefreshedAt ? c : undefined;
    });
    expect(c.state).toBe("ready");
    // Give the other process more than one scheduler wake-up (1 s) to (wrongly) refresh too.
    await waitFor("1.5 s of the other process serving", async () => (await get(procs[1]!)).state === "ready" && undefined, 30).catch(() => undefined);
    expect(as.refreshRequests() - before).toBe(1);
    const attempts = procs.map((p) => p.out().split("\n").filter((l) => l.includes('"msg":"refresh attempt"') && l.includes('"result":"refreshed"')).length);
    expect(attempts.reduce((x, y) => x + y, 0)).toBe(1);
  });

  it("answers only with its key and hands out a working token", async () => {
    const p = procs[0]!;
    expect((await fetch(`${p.url}/v1/connections/${connectionId}/token`, { method: "POST" })).status).toBe(401);
    const res = await fetch(`${p.url}/v1/connections/${connectionId}/token`, { method: "POST", headers: { authorization: `Bearer ${apiKey}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accessToken: string };
    expect(body.accessToken.length).toBeGreaterThan(10);
    secrets.add(body.accessToken);
  });

  it("a dashboard session signed in on one process works on the other, and a sign-out on either ends it on both", async () => {
    const [a, b] = [procs[0]!, procs[1]!];
    const cookieOf = (res: Response, name: string) => res.headers.getSetCookie().map((c) => c.split(";")[0]!).find((c) => c.startsWith(`${name}=`))!;
    const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
    const form = (fields: Record<string, string>) => ({ "content-type": "application/x-www-form-urlencoded", body: new URLSearchParams(fields).toString() });
    const signIn = await fetch(`${a.url}/dashboard/sign-in`);
    const nonce = cookieOf(signIn, "gk_sign_in");
    const { body, ...type } = form({ _csrf: csrfOf(await signIn.text()), apiKey });
    const signedIn = await fetch(`${a.url}/dashboard/sign-in`, { method: "POST", redirect: "manual", headers: { ...type, cookie: nonce }, body });
    expect(signedIn.status).toBe(303);
    const session = cookieOf(signedIn, "gk_dashboard");
    secrets.add(session.slice("gk_dashboard=".length));
    // The other process derives the same session secret from the shared encryption key.
    const overview = await fetch(`${b.url}/`, { redirect: "manual", headers: { cookie: session } });
    expect(overview.status).toBe(200);
    const page = await overview.text();
    expect(page).toContain("<h1>Overview</h1>");
    const out = form({ _csrf: csrfOf(page) });
    expect((await fetch(`${b.url}/dashboard/sign-out`, { method: "POST", redirect: "manual", headers: { "content-type": out["content-type"], cookie: session }, body: out.body })).status).toBe(303);
    for (const p of [a, b]) expect((await fetch(`${p.url}/`, { redirect: "manual", headers: { cookie: session } })).status).toBe(303);
  });

  it("stops cleanly on SIGTERM and never logged a token, secret or key", async () => {
    for (const p of procs) p.child.kill("SIGTERM");
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0]);
    const logs = procs.map((p) => p.out()).join("\n");
    expect(logs).toContain("grantkeeper serving");
    for (const s of secrets) expect(logs.includes(s), "a secret leaked into a serve log").toBe(false);
  });

  it("warns at start about each API key shorter than 24 characters, by position and length, never the key", async () => {
    const long = `gk_${"L".repeat(21)}${testKey().replace(/[^A-Za-z0-9]/g, "").slice(0, 8)}`;
    const p = await serve({ GRANTKEEPER_DATABASE_URL: db.url, GRANTKEEPER_API_KEY: `${long}, ${apiKey}`, GRANTKEEPER_ENCRYPTION_KEY: encryptionKey });
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    const warnings = p.out().split("\n").filter((l) => l.includes('"keyPosition"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(warnings).toEqual([expect.objectContaining({ level: 40, keyPosition: 2, keys: 2, length: apiKey.length, minimumLength: 24 })]);
    expect(String(warnings[0]!.msg)).toMatch(/^API key 2 of 2 in GRANTKEEPER_API_KEY has 20 characters: .*can be guessed/);
    expect(apiKey).toHaveLength(20);
    for (const key of [apiKey, long]) expect(p.out().includes(key), "an API key reached the log").toBe(false);
  });
});
