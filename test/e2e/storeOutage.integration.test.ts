/**
 * The store goes away under load (issue 12 item 1): `grantkeeper serve` as a
 * real process on a private PostgreSQL cluster that the test stops with
 * `pg_ctl stop -m fast` during a webhook burst and starts again. The process
 * must survive (it used to die of an unhandled pg `'error'` event), answer
 * webhooks `503 store_unavailable` + `Retry-After` (never a 202 it cannot
 * keep), answer `/readyz` 503 while the store is down and 200 again within
 * 10 s after it is back, and deliver every webhook it accepted.
 *
 * The same for SQLite on a full disk (SQLITE_FULL): the store lives on a
 * 4 MB tmpfs the test mounts (we run as root in CI); the test is skipped
 * only where that mount is impossible.
 *
 * Each case runs in its own project (postgres / sqlite): each brings its own
 * store, so running it twice would prove nothing more.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, closeSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { createGrantkeeper } from "../../src/grantkeeper.js";
import { testKey } from "../support/backend.js";
import { freePort } from "../support/gk.js";
import { privatePostgresAvailable, startPrivatePostgres, type PrivatePostgres } from "../support/privatePostgres.js";
import { startReceiver, type Receiver } from "../support/receiver.js";
import { startScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";
import { waitFor } from "../support/wait.js";

const MAIN = join(import.meta.dirname, "../../dist/src/cli/main.js");
const onPostgres = process.env.GK_TEST_BACKEND === "postgres";

/** A grantkeeper with one integration taking unsigned webhooks and delivering them to `receiver`; returns the integration id. */
async function setUpIntegration(databaseUrl: string, encryptionKey: string, receiver: Receiver): Promise<string> {
  const setup = await createGrantkeeper({ databaseUrl, encryptionKey });
  try {
    await setup.providers.put("acme", { authorizationEndpoint: "https://auth.example.com/authorize", tokenEndpoint: "https://auth.example.com/token", clientId: "c", clientSecret: "s" });
    const { connection } = await setup.connections.storeGrant({ providerId: "acme", entityId: "e1", source: "import", tokens: { accessToken: "at-outage", tokenType: "Bearer" } });
    return (await setup.integrations.create({ name: "burst", entityId: "e1", connectionIds: [connection.id], delivery: { url: `${receiver.url}/hook` }, webhook: { signing: "none" } })).integration.id;
  } finally {
    await setup.close();
  }
}

/** `grantkeeper serve` on `databaseUrl`, ready. */
async function serveOn(databaseUrl: string, encryptionKey: string): Promise<{ child: ChildProcess; url: string; out: () => string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let out = "";
  const child = spawn(process.execPath, [MAIN, "serve"], {
    env: { ...process.env, GRANTKEEPER_DATABASE_URL: databaseUrl, GRANTKEEPER_API_KEY: "outage-api-key", GRANTKEEPER_ENCRYPTION_KEY: encryptionKey, GRANTKEEPER_PORT: String(port), GRANTKEEPER_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  await waitFor("serve to become ready", () => fetch(`${url}/readyz`).then((r) => r.ok, () => false));
  return { child, url, out: () => out };
}

/** The ids (our own `{"id"}` bodies) the receiver got, out of grantkeeper's delivery envelopes. */
function deliveredIds(receiver: Receiver): Set<string> {
  return new Set(receiver.requests.map((r) => (JSON.parse((JSON.parse(r.body) as { body: string }).body) as { id: string }).id));
}

/** Mount a tmpfs of `sizeMb` at a fresh directory; undefined when this machine does not allow it. */
function mountTmpfs(sizeMb: number): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), "gk-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m,mode=0700`, "tmpfs", dir], { stdio: "ignore" });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

describe.runIf(onPostgres && (await privatePostgresAvailable()))("PostgreSQL stopped during a webhook burst", () => {
  let pgc: PrivatePostgres;
  let receiver: Receiver;
  let child: ChildProcess;
  let out = "";
  let url: string;
  let integrationId: string;
  const encryptionKey = testKey();

  beforeAll(async () => {
    pgc = await startPrivatePostgres();
    receiver = await startReceiver();
    const setup = await createGrantkeeper({ databaseUrl: pgc.url, encryptionKey });
    await setup.providers.put("acme", { authorizationEndpoint: "https://auth.example.com/authorize", tokenEndpoint: "https://auth.example.com/token", clientId: "c", clientSecret: "s" });
    const { connection } = await setup.connections.storeGrant({ providerId: "acme", entityId: "e1", source: "import", tokens: { accessToken: "at-outage", tokenType: "Bearer" } });
    integrationId = (await setup.integrations.create({ name: "burst", entityId: "e1", connectionIds: [connection.id], delivery: { url: `${receiver.url}/hook` }, webhook: { signing: "none" } })).integration.id;
    await setup.close();
    const p = await serveOn(pgc.url, encryptionKey);
    child = p.child;
    url = p.url;
    out = "";
    p.child.stdout!.on("data", (d) => (out += d));
    p.child.stderr!.on("data", (d) => (out += d));
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await receiver?.close();
    await pgc?.destroy();
  });

  it("survives, answers 503 while the store is down, is ready again within 10 s, and delivers every 202", async () => {
    // When it fails, the server's own words say why (a crash, a closed listener).
    onTestFailed(() => console.error(`serve exit code ${String(child.exitCode)}, signal ${String(child.signalCode)}; log tail:\n${out.slice(-4000)}`));
    const statuses = new Map<number, number>();
    const accepted: string[] = [];
    let downAnswers = 0;
    let missingRetryAfter = 0;
    let stopped = false;
    let n = 0;
    // Four senders keep the burst going through the whole drill.
    const sender = async () => {
      while (!stopped) {
        const id = `m${n++}`;
        const res = await fetch(`${url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id }) });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const body = (await res.json()) as { code?: string };
        if (res.status === 202) accepted.push(id);
        if (res.status === 503) {
          downAnswers++;
          expect(body.code).toBe("store_unavailable");
          if (!res.headers.get("retry-after")) missingRetryAfter++;
        }
        if (res.status === 503) await sleep(20);
      }
    };
    const senders = Array.from({ length: 4 }, sender);
    await waitFor("some webhooks accepted", async () => accepted.length >= 50);

    await pgc.stop();
    // While it is down: /readyz says so, webhooks get 503.
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { store: string }).store).toBe("unreachable");
    const acceptedWhileDown = accepted.length;
    await waitFor("webhooks answered 503 while the store is down", async () => downAnswers >= 20);
    expect(accepted.length).toBe(acceptedWhileDown);

    await pgc.start();
    const backAt = performance.now();
    await waitFor("/readyz 200 again", () => fetch(`${url}/readyz`).then((r) => r.status === 200, () => false), 400, 25);
    const readyAfterMs = performance.now() - backAt;
    expect(readyAfterMs).toBeLessThan(10_000);
    await waitFor("webhooks accepted again", async () => accepted.length >= acceptedWhileDown + 50);
    stopped = true;
    await Promise.all(senders);

    expect(child.exitCode).toBeNull();
    expect([...statuses.keys()].sort()).toEqual([202, 503]);
    expect(missingRetryAfter).toBe(0);
    // Every 202 reaches the consumer: nothing accepted was lost in the outage.
    await waitFor(
      "every accepted webhook delivered",
      async () => {
        const delivered = deliveredIds(receiver);
        return accepted.every((id) => delivered.has(id));
      },
      // A job whose outcome could not be recorded while the store was down runs again when its lease (jobs.leaseSeconds, 60) expires.
      1_800,
    ).catch((e) => {
      const delivered = deliveredIds(receiver);
      throw new Error(`${accepted.filter((id) => !delivered.has(id)).length} of ${accepted.length} accepted webhooks not delivered; log:\n${out.slice(-3000)}`, { cause: e });
    });
    expect(out).not.toContain("Unhandled");
    expect(out).toContain("store connection lost");
  }, 180_000);

  it("a refresh whose commit meets the outage keeps the rotated tokens: they are written once the store is back", async () => {
    const ep = await startScriptedTokenEndpoint();
    let stopDuringCall = false;
    const gk = await createGrantkeeper({
      databaseUrl: pgc.url,
      encryptionKey,
      refresh: { minIntervalMs: 0 },
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (stopDuringCall) {
          // The provider has answered (and consumed the refresh token we sent); now the database goes away.
          stopDuringCall = false;
          await pgc.stop();
          void sleep(1_500).then(() => pgc.start());
        }
        return res;
      },
      providers: { rot: { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "s", quirks: { rotatesRefreshTokens: true } } },
    });
    try {
      const { connection } = await gk.connections.storeGrant({ providerId: "rot", entityId: "mid-refresh", source: "import", tokens: { accessToken: "at-old", tokenType: "Bearer", refreshToken: "rt-old", expiresInSeconds: 3600 } });
      ep.push({ status: 200, body: { access_token: "at-new", token_type: "Bearer", refresh_token: "rt-new", expires_in: 3600 } });
      stopDuringCall = true;
      const c = await gk.connections.refresh(connection.id);
      expect(c.state).toBe("ready");
      // What the store holds now is the rotated pair: the next refresh sends rt-new.
      ep.push({ status: 200, body: { access_token: "at-newer", token_type: "Bearer", refresh_token: "rt-newer", expires_in: 3600 } });
      await gk.connections.refresh(connection.id);
      expect(ep.requests.map((r) => r.params.get("refresh_token"))).toEqual(["rt-old", "rt-new"]);
    } finally {
      await gk.close();
      await ep.close();
    }
  }, 60_000);
});

const tmpfs = onPostgres ? undefined : mountTmpfs(4);
if (!onPostgres && !tmpfs) console.warn("[storeOutage] cannot mount a tmpfs here (not root?): the SQLite full-disk case is skipped");

describe.runIf(tmpfs !== undefined)("SQLite on a full disk", () => {
  let receiver: Receiver;
  let served: Awaited<ReturnType<typeof serveOn>>;
  let integrationId: string;
  const encryptionKey = testKey();
  const filler = join(tmpfs ?? "", "filler");

  beforeAll(async () => {
    receiver = await startReceiver();
    const url = `sqlite:${join(tmpfs!, "data", "grantkeeper.db")}`;
    integrationId = await setUpIntegration(url, encryptionKey, receiver);
    served = await serveOn(url, encryptionKey);
  }, 120_000);

  afterAll(async () => {
    if (served && served.child.exitCode === null) {
      served.child.kill("SIGKILL");
      await new Promise((r) => served.child.once("exit", r));
    }
    await receiver?.close();
    if (tmpfs) {
      execFileSync("umount", [tmpfs]);
      rmSync(tmpfs, { recursive: true, force: true });
    }
  });

  it("answers 503 store_unavailable while the disk is full, never crashes, and delivers every 202 once space is back", async () => {
    const accepted: string[] = [];
    const statuses = new Map<number, number>();
    let full = 0;
    let n = 0;
    let stopped = false;
    const pad = "x".repeat(4096);
    const sender = async () => {
      while (!stopped) {
        const id = `f${n++}`;
        const res = await fetch(`${served.url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, pad }) });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const body = (await res.json()) as { code?: string };
        if (res.status === 202) accepted.push(id);
        if (res.status === 503) {
          expect(body.code).toBe("store_unavailable");
          expect(res.headers.get("retry-after")).toBe("5");
          full++;
          await sleep(20);
        }
      }
    };
    const senders = Array.from({ length: 4 }, sender);
    await waitFor("some webhooks accepted", async () => accepted.length >= 20);
    // Fill the disk: write until ENOSPC.
    const fd = openSync(filler, "w");
    try {
      for (;;) writeSync(fd, Buffer.alloc(64 * 1024));
    } catch (e) {
      expect((e as { code?: string }).code).toBe("ENOSPC");
    } finally {
      closeSync(fd);
    }
    await waitFor("webhooks answered 503 on the full disk", async () => full >= 10, 600).catch((e) => {
      stopped = true;
      throw new Error(`statuses ${JSON.stringify([...statuses])}, accepted ${accepted.length}; log:\n${served.out().slice(-3000)}`, { cause: e });
    });
    const acceptedWhenFull = accepted.length;
    // Space back: accepted again, no restart.
    rmSync(filler);
    await waitFor("webhooks accepted again", async () => accepted.length >= acceptedWhenFull + 20, 600);
    stopped = true;
    await Promise.all(senders);

    expect(served.child.exitCode).toBeNull();
    expect([...statuses.keys()].sort()).toEqual([202, 503]);
    await waitFor("every accepted webhook delivered", async () => {
      const delivered = deliveredIds(receiver);
      return accepted.every((id) => delivered.has(id));
    }, 600).catch((e) => {
      const delivered = deliveredIds(receiver);
      throw new Error(`${accepted.filter((id) => !delivered.has(id)).length} of ${accepted.length} accepted webhooks not delivered; log:\n${served.out().slice(-3000)}`, { cause: e });
    });
    expect(served.out()).not.toContain("Unhandled");
  }, 120_000);
});
