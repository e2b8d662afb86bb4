/**
 * The CLI as a user runs it: spawned processes, exit codes and output.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrantkeeper } from "../../src/grantkeeper.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { runCli, type CliRun } from "../support/cli.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";


describe("grantkeeper CLI", async () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let env: Record<string, string>;
  let connectionId: string;
  let flakyId: string;
  let deadIntegration: string;
  let disabledIntegration: string;

  /** Run the CLI without blocking this process (the token endpoint it calls lives here). */
  function run(args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> {
    return runCli(args, { env: { ...env, ...extraEnv }, cwd: db.dir });
  }

  beforeAll(async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    env = { GRANTKEEPER_DATABASE_URL: db.url, GRANTKEEPER_API_KEY: "cli-api-key", GRANTKEEPER_ENCRYPTION_KEY: testKey(), GRANTKEEPER_LOG_LEVEL: "warn" };
    const gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: env.GRANTKEEPER_ENCRYPTION_KEY!, jobs: { maxAttempts: 1 }, providers: { acme: { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "cli-client-secret" } } });
    const { connection } = await gk.connections.storeGrant({ providerId: "acme", entityId: "cli-user", source: "import", tokens: { accessToken: "cli-at", tokenType: "Bearer", refreshToken: "cli-rt", expiresInSeconds: 3600 } });
    connectionId = connection.id;
    flakyId = (await gk.connections.storeGrant({ providerId: "acme", entityId: "flaky-user", source: "import", tokens: { accessToken: "flaky-at", tokenType: "Bearer", refreshToken: "flaky-rt", expiresInSeconds: 3600 } })).connection.id;
    const happy = await gk.connections.storeGrant({ providerId: "acme", entityId: "happy", source: "import", tokens: { accessToken: "happy-at", tokenType: "Bearer", scope: "read write" } });
    // Two jobs that die at once (nothing listens on port 9), and an integration that is DISABLED.
    const dead = await gk.integrations.create({ name: "dead-letters", entityId: "happy", connectionIds: [happy.connection.id], delivery: { url: "http://127.0.0.1:9/hook", timeoutMs: 500 }, webhook: { signing: "none" } });
    deadIntegration = dead.integration.id;
    for (const n of [1, 2]) await gk.ingress.accept(deadIntegration, new TextEncoder().encode(`{"n":${n}}`), new Headers());
    await gk.worker.runDue();
    disabledIntegration = (await gk.integrations.create({ name: "paused", entityId: "happy", connectionIds: [happy.connection.id] })).integration.id;
    await gk.integrations.disable(disabledIntegration);
    await gk.close();
  });

  afterAll(async () => {
    await ep?.close();
    await db?.cleanup();
  });

  it("migrate reports an up-to-date store and exits 0", async () => {
    const r = await run(["migrate"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("store is up to date");
  });

  it("doctor checks config, keys, store and migrations", async () => {
    const r = await run(["doctor"]);
    expect(r.stdout).toMatch(/ok\s+migrations up to date/);
    expect(r.code).toBe(0);
  });

  it("status --json lists connections with state and next refresh, never tokens", async () => {
    const r = await run(["status", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.connections.total).toBe(3);
    expect(j.connections.items.find((c: any) => c.id === connectionId)).toMatchObject({ state: "pending", usable: true });
    expect(j.integrations).toMatchObject({ total: 2 });
    expect(r.stdout).not.toContain("cli-at");
    expect(r.stdout).not.toContain("cli-rt");
  });

  it("connections list prints a table", async () => {
    const r = await run(["connections", "list"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ID\s+PROVIDER\s+ENTITY\s+STATE/);
    expect(r.stdout).toContain(connectionId);
  });

  it("connections refresh calls the provider and prints the outcome; a dead grant exits 3", async () => {
    ep.push({ status: 200, body: { access_token: "cli-at-2", token_type: "Bearer", expires_in: 3600 } });
    const ok = await run(["connections", "refresh", connectionId]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`${connectionId} ready`);
    ep.push({ status: 400, body: { error: "invalid_grant" } });
    writeFileSync(join(db.dir, "no-rate-limit.yaml"), "refresh:\n  minIntervalSeconds: 0\n");
    const dead = await run(["connections", "refresh", connectionId], { GRANTKEEPER_CONFIG: join(db.dir, "no-rate-limit.yaml") });
    expect(dead.stdout).toContain("error (permanent invalid_grant)");
    expect(dead.code).toBe(3);
  });

  it("connections refresh waits for the alert its failure raised before it exits (issue 12 item 5)", async () => {
    ep.push({ status: 503, body: { error: "temporarily_unavailable" } });
    const r = await run(["connections", "refresh", flakyId]);
    expect(r.stdout).toContain(`${flakyId} degraded`);
    expect(r.stdout + r.stderr).not.toContain("alert handling failed");
    // The episode's first-failure alert is in the store, read by another process after the command exited.
    const gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: env.GRANTKEEPER_ENCRYPTION_KEY!, migrate: false });
    try {
      const alerts = await gk.alerts.list(0);
      expect(alerts.filter((a) => a.kind === "refresh_failed" && "connectionId" in a.subject && a.subject.connectionId === flakyId)).toHaveLength(1);
    } finally {
      await gk.close();
    }
  });

  it("preflight exits 0 when every provider is usable and 3 otherwise, with a connect link", async () => {
    const ok = await run(["preflight", "--entity", "happy", "--providers", "acme", "--json"]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, providers: [{ providerId: "acme", usable: true, action: "none" }] });
    const dead = await run(["preflight", "--entity", "cli-user", "--providers", "acme"]);
    expect(dead.code).toBe(3);
    expect(dead.stdout).toMatch(/acme\s+no\s+error\s+reconnect\s+http/);
    const missing = await run(["preflight", "--entity", "someone-else", "--providers", "acme"]);
    expect(missing.code).toBe(3);
    expect(missing.stdout).toMatch(/acme\s+no\s+missing\s+connect\s+http:\/\/127\.0\.0\.1:7420\/v1\/connect\/acme\?connectToken=/);
  });

  it("preflight --providers takes required scopes (provider:scope+scope): a usable grant lacking one exits 3 with a reconnect link", async () => {
    const enough = await run(["preflight", "--entity", "happy", "--providers", "acme:read+write", "--json"]);
    expect(enough.code).toBe(0);
    const lacking = await run(["preflight", "--entity", "happy", "--providers", "acme:read+admin", "--json"]);
    expect(lacking.code).toBe(3);
    expect(JSON.parse(lacking.stdout)).toMatchObject({ ok: false, providers: [{ providerId: "acme", usable: true, action: "reconnect", missingScopes: ["admin"] }] });
    const table = await run(["preflight", "--entity", "happy", "--providers", "acme:admin"]);
    expect(table.stdout).toMatch(/acme\s+yes\s+pending\s+reconnect\s+http\S+\s+admin/);
    const bad = await run(["preflight", "--entity", "happy", "--providers", "acme:"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("provider:scope+scope");
  });

  it("replay re-queues dead jobs with progress; a DISABLED integration is refused with exit 1", async () => {
    const r = await run(["replay", deadIntegration]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("replayed 2 job(s)");
    expect(r.stdout).toContain(`2 job(s) queued again for ${deadIntegration}`);
    const refused = await run(["replay", disabledIntegration]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("is DISABLED");
  });

  it("connections show of an unknown id exits 4 with a clear message", async () => {
    const r = await run(["connections", "show", "conn_nope"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("no connection");
  });

  it("a config file with an unknown key exits 2 naming the key", async () => {
    const bad = join(db.dir, "bad.yaml");
    writeFileSync(bad, "refresh:\n  marginSecs: 10\n");
    const r = await run(["status"], { GRANTKEEPER_CONFIG: bad });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("marginSecs");
  });

  it("PostgreSQL without keys exits 2: instances must share them", async () => {
    const r = await run(["status"], { GRANTKEEPER_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test", GRANTKEEPER_API_KEY: "", GRANTKEEPER_ENCRYPTION_KEY: "" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("required with PostgreSQL");
  });
});
