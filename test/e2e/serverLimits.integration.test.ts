/**
 * Server limits through the real app (issue 10 item 6), on real sockets with
 * ordinary clients: a webhook or API body 10× the limit is answered 413 and
 * the client reads it (no EPIPE), nothing is stored; clients that go away
 * mid-request are debug lines, never errors with stacks; and `grantkeeper
 * serve` takes its limits from the `server` config block and creates its
 * data directory 0700 and its files 0600 under any umask.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { freePort, startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { waitFor } from "../support/wait.js";

const MAIN = join(import.meta.dirname, "../../dist/src/cli/main.js");
const LIMIT = 256 * 1024;
const SECRET = "limits-webhook-secret";
const run = promisify(execFile);

/** Send headers and part of a body, then drop the connection. */
function abortMidBody(port: number, target: string, headers: string): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => {
      s.write(`POST ${target} HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: 5000\r\n\r\n{"partial":`);
      setTimeout(() => s.destroy(), 30);
    });
    s.on("error", () => undefined);
    s.on("close", () => resolve());
  });
}

describe("server limits through the app", () => {
  let db: TestDatabase;
  let t: GrantkeeperUnderTest;
  let integrationId: string;
  const big = Buffer.alloc(LIMIT * 10, 0x7b);

  beforeAll(async () => {
    db = await testDatabase();
    // As `serve` does: the API body limit is jobs.maxBodyBytes.
    t = await startGrantkeeper(db, { extra: { jobs: { maxBodyBytes: LIMIT, pollMs: 3_600_000 } }, app: { maxBodyBytes: LIMIT } });
    await t.gk.providers.put("acme", { authorizationEndpoint: "https://auth.example.com/authorize", tokenEndpoint: "https://auth.example.com/token", clientId: "c", clientSecret: "s" });
    const { connection } = await t.gk.connections.storeGrant({ providerId: "acme", entityId: "e1", source: "import", tokens: { accessToken: "at-limits", tokenType: "Bearer", expiresInSeconds: 3600 } });
    integrationId = (await t.gk.integrations.create({ name: "limits", entityId: "e1", connectionIds: [connection.id], webhook: { signing: "hmac-sha256", secret: SECRET } })).integration.id;
    writeFileSync(join(db.dir, "big.json"), big);
  });

  afterAll(async () => {
    await t?.close();
    await db?.cleanup();
  });

  it("a webhook 10× jobs.maxBodyBytes: fetch and curl read 413 payload_too_large, every time; nothing is stored; the next webhook is accepted", async () => {
    const sig = `sha256=${createHmac("sha256", SECRET).update(big).digest("hex")}`;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${t.url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "content-type": "application/json", "x-signature-256": sig }, body: big });
      expect({ status: res.status, code: ((await res.json()) as { code: string }).code }).toEqual({ status: 413, code: "payload_too_large" });
    }
    for (const expectHeader of [[], ["-H", "Expect:"]]) {
      const { stdout } = await run("curl", ["-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", ...expectHeader, "-H", `x-signature-256: ${sig}`, "--data-binary", `@${join(db.dir, "big.json")}`, `${t.url}/v1/webhooks/${integrationId}`]);
      expect(stdout).toBe("413");
    }
    expect((await t.api("GET", `/v1/jobs?integrationId=${integrationId}`)).body.items).toEqual([]);
    const small = '{"ok":1}';
    const ok = await fetch(`${t.url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "x-signature-256": `sha256=${createHmac("sha256", SECRET).update(small).digest("hex")}` }, body: small });
    expect(ok.status).toBe(202);
  });

  it("a JSON API body 10× the limit: 413 read by the client, nothing created", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${t.url}/v1/integrations`, { method: "POST", headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" }, body: big });
      expect(res.status).toBe(413);
      await res.body?.cancel();
    }
    expect((await t.api("GET", "/v1/integrations")).body.items).toHaveLength(1);
  });

  it("clients that go away mid-request are debug lines: no error, no stack, however many", async () => {
    const before = t.logText().length;
    for (let i = 0; i < 30; i++) {
      await abortMidBody(t.server.port, `/v1/webhooks/${integrationId}`, "Content-Type: application/json\r\n");
      await abortMidBody(t.server.port, "/v1/integrations", `Authorization: Bearer ${t.apiKey}\r\nContent-Type: application/json\r\n`);
    }
    await waitFor("the aborts to be logged", async () => t.logText().slice(before).includes("client closed the connection"));
    const lines = t.logText().slice(before).split("\n").filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    expect(t.logText().slice(before)).not.toContain("stack");
    expect(lines.filter((l) => l.msg === "client closed the connection before its request was read").every((l) => l.level === 20)).toBe(true);
    expect((await t.api("GET", `/v1/jobs?integrationId=${integrationId}`)).body.items).toHaveLength(1);
  });
});

describe("grantkeeper serve: limits from the config file, private files", () => {
  let db: TestDatabase;
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await db?.cleanup();
  });

  it("cuts a stalled body after server.requestTimeoutSeconds; on SQLite creates data dir 0700 and every file 0600 under umask 000", async () => {
    db = await testDatabase();
    const port = await freePort();
    const config = join(db.dir, "grantkeeper.config.yaml");
    writeFileSync(config, "server:\n  requestTimeoutSeconds: 1\n  lingerSeconds: 1\n");
    const dataDir = join(db.dir, "fresh", "data");
    const env: Record<string, string> =
      db.backend === "sqlite"
        ? { GRANTKEEPER_DATABASE_URL: `sqlite:${join(dataDir, "grantkeeper.db")}` }
        : { GRANTKEEPER_DATABASE_URL: db.url, GRANTKEEPER_API_KEY: "limits-key", GRANTKEEPER_ENCRYPTION_KEY: testKey() };
    let out = "";
    child = spawn("/bin/sh", ["-c", 'umask 000 && exec "$0" "$1" serve', process.execPath, MAIN], { env: { ...process.env, ...env, GRANTKEEPER_CONFIG: config, GRANTKEEPER_PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const url = `http://127.0.0.1:${port}`;
    await waitFor("serve to become ready", () => fetch(`${url}/readyz`).then((r) => r.ok, () => false)).catch((e: Error) => {
      throw new Error(`serve did not become ready:\n${out}`, { cause: e });
    });

    const { text, afterMs } = await new Promise<{ text: string; afterMs: number }>((resolve) => {
      let text = "";
      const t0 = performance.now();
      const s = connect(port, "127.0.0.1", () => s.write("POST /v1/webhooks/int_0123 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab"));
      s.on("data", (d: Buffer) => (text += d.toString("latin1")));
      s.on("error", () => undefined);
      s.on("close", () => resolve({ text, afterMs: performance.now() - t0 }));
    });
    expect(text).toMatch(/^HTTP\/1\.1 408/);
    expect(afterMs).toBeGreaterThanOrEqual(900);
    expect(afterMs).toBeLessThan(10_000);

    if (db.backend === "sqlite") {
      const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
      expect([mode(join(db.dir, "fresh")), mode(dataDir)]).toEqual(["700", "700"]);
      for (const f of ["grantkeeper.db", "grantkeeper.db-wal", "grantkeeper.db-shm", "api-key", "encryption-key"]) {
        const p = join(dataDir, f);
        expect({ f, exists: existsSync(p), mode: existsSync(p) ? mode(p) : undefined }).toEqual({ f, exists: true, mode: "600" });
      }
    }
    child.kill("SIGTERM");
    expect(await new Promise((r) => child!.once("exit", r))).toBe(0);
    expect(out).not.toMatch(/"level":50/);
  });
});
