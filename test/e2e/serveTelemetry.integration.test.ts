/**
 * `grantkeeper serve` as a process with telemetry: `GET /metrics` without a
 * key (grantkeeper and process metrics), and with `OTEL_EXPORTER_OTLP_ENDPOINT`
 * set, a refresh span exported over OTLP/HTTP and flushed on SIGTERM.
 * (`npm test` builds dist/ first.)
 */
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { freePort } from "../support/gk.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";
import { waitFor } from "../support/wait.js";

const MAIN = join(import.meta.dirname, "../../dist/src/cli/main.js");

describe("grantkeeper serve telemetry", () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let collector: Server;
  const exported: Buffer[] = [];

  beforeAll(async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    collector = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (req.url === "/v1/traces") exported.push(Buffer.concat(chunks));
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
  });

  afterAll(async () => {
    await ep?.close();
    await new Promise((r) => collector?.close(r));
    await db?.cleanup();
  });

  it("serves /metrics unauthenticated and exports spans to the configured OTLP endpoint", async () => {
    const port = await freePort();
    const apiKey = `gk_tel_${Math.random().toString(36).slice(2)}`;
    const env = {
      ...process.env,
      GRANTKEEPER_DATABASE_URL: db.url,
      GRANTKEEPER_API_KEY: apiKey,
      GRANTKEEPER_ENCRYPTION_KEY: testKey(),
      GRANTKEEPER_PORT: String(port),
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as { port: number }).port}`,
      OTEL_SERVICE_NAME: "gk-serve-telemetry",
    };
    delete (env as Record<string, string | undefined>).OTEL_SDK_DISABLED;
    delete (env as Record<string, string | undefined>).OTEL_TRACES_EXPORTER;
    delete (env as Record<string, string | undefined>).OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    let out = "";
    delete (env as Record<string, string | undefined>).GRANTKEEPER_CONFIG;
    // In the test's own directory: no ./grantkeeper.config.yaml there.
    const child = spawn(process.execPath, [MAIN, "serve"], { env, cwd: db.dir, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitFor("serve to become ready", () => fetch(`${url}/readyz`).then((r) => r.ok, () => false)).catch((e: Error) => {
        throw new Error(`${e.message}:\n${out}`);
      });
      const api = (method: string, path: string, body?: unknown) =>
        fetch(url + path, { method, headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
      expect((await api("PUT", "/v1/providers/plain", { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "serve-tel-secret" })).status).toBe(200);
      const conn = (await (await api("POST", "/v1/connections", { providerId: "plain", entityId: "u1", accessToken: "at-0", refreshToken: "rt-0", expiresIn: 3600 })).json()) as { id: string };
      ep.push({ status: 200, body: { access_token: "serve-tel-new-access-token", token_type: "bearer", expires_in: 3600 } });
      expect((await api("POST", `/v1/connections/${conn.id}/refresh`)).status).toBe(200);

      const res = await fetch(`${url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      expect(text).toMatch(/^grantkeeper_refresh_attempts_total\{result="refreshed",class="none",reason="ok"\} 1$/m);
      expect(text).toMatch(/^grantkeeper_connections\{state="ready"\} 1$/m);
      expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    const all = Buffer.concat(exported).toString("latin1");
    expect(all).toContain("gk-serve-telemetry");
    expect(all).toContain("grantkeeper.refresh");
    expect(all).not.toContain("serve-tel-new-access-token");
    expect(all).not.toContain("serve-tel-secret");
    expect(out).toContain("tracing to OTLP/HTTP");
  });
});
