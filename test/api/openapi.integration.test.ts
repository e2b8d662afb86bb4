/**
 * The API reference (issue 15 item 8): `GET /openapi.json` describes every
 * route the app registers, with the right security, answers and request
 * schemas the routes really validate with; `redocly lint` finds nothing;
 * `GET /reference` renders it without any script or external resource.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { createApp } from "../../src/http/app.js";
import { isPublicHandler } from "../../src/http/auth.js";
import { ManualClock } from "../../src/domain/clock.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";

const API_KEY = "openapi-test-key";
const ROOT = join(import.meta.dirname, "../..");
let db: TestDatabase;
let gk: Grantkeeper;
let app: Hono;
let doc: { paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } };
const tmp = mkdtempSync(join(tmpdir(), "gk-openapi-"));

const PROXY_METHODS = ["get", "head", "post", "put", "patch", "delete", "options"];
/** hono's `/v1/jobs/:id` and `/v1/proxy/:connectionId/*` in OpenAPI's form. */
const openApiPath = (p: string) => p.replace(/:([A-Za-z]+)/g, "{$1}").replace(/\/\*$/, "/{path}");

function registered(): Array<{ method: string; path: string; isPublic: boolean }> {
  const seen = new Map<string, { method: string; path: string; isPublic: boolean }>();
  for (const r of app.routes) {
    if (r.path === "*" || r.path === "/*" || r.path === "/v1/*") continue; // middleware (canonical path, log, body limit, gate)
    if (r.path === "/" || r.path === "/dashboard" || r.path.startsWith("/dashboard/")) continue; // the operator dashboard: HTML for browsers, not the API (docs/dashboard.md)
    for (const method of r.method === "ALL" ? PROXY_METHODS : [r.method.toLowerCase()]) seen.set(`${method} ${r.path}`, { method, path: openApiPath(r.path), isPublic: isPublicHandler(r.handler) });
  }
  return [...seen.values()];
}

const operations = () => Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));

beforeAll(async () => {
  db = await testDatabase();
  gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: testKey(), clock: new ManualClock(Date.UTC(2026, 11, 5)), fetch: async () => new Response("no outbound calls", { status: 599 }) });
  app = createApp(gk, { apiKey: API_KEY });
  const res = await app.request("/openapi.json");
  expect(res.status).toBe(200);
  doc = (await res.json()) as typeof doc;
});

afterAll(async () => {
  await gk?.close();
  await db?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

describe("GET /openapi.json", () => {
  it("describes every route the app registers, every method of the proxy, and nothing else", () => {
    const routes = registered();
    expect(routes.length).toBeGreaterThan(40);
    const inApp = routes.map((r) => `${r.method} ${r.path}`).sort();
    const inDoc = operations().map((o) => `${o.method} ${o.path}`).sort();
    expect(inDoc).toEqual(inApp);
    for (const m of PROXY_METHODS) expect(doc.paths["/v1/proxy/{connectionId}/{path}"]![m], m).toBeDefined();
  });

  it("marks exactly the public routes public (security [] or optional), every other one needs the key and answers 401", () => {
    for (const r of registered()) {
      const op = doc.paths[r.path]![r.method];
      const isPublic = (op.security as object[]).length === 0 || (op.security as object[]).some((s) => Object.keys(s).length === 0);
      expect(isPublic, `${r.method} ${r.path}`).toBe(r.isPublic);
      if (!isPublic) {
        expect(op.security, `${r.method} ${r.path}`).toEqual([{ apiKey: [] }]);
        expect(op.responses["401"]?.content["application/problem+json"], `${r.method} ${r.path}`).toBeDefined();
      }
    }
  });

  it("gives each operation a unique operationId, a success answer with a schema, and problems for 404/409/422 where they happen", () => {
    const ids = operations().map((o) => o.op.operationId as string);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, op } of operations()) {
      const where = `${method} ${path}`;
      const success = Object.keys(op.responses).filter((s) => /^[23]/.test(s));
      expect(success.length, where).toBeGreaterThan(0);
      for (const s of success.filter((x) => x.startsWith("2"))) expect(Object.values(op.responses[s].content ?? {}).length, `${where} ${s}`).toBeGreaterThan(0);
      // A named thing that may not exist answers 404 (PUT of a provider creates it; a webhook for an unknown integration is 404 too, listed).
      if (path.includes("{") && op.operationId !== "putProvider") expect(op.responses["404"], where).toBeDefined();
      // Validated input answers 422; the OAuth callback's query is the provider's (RFC 6749 §4.1.2), refused as 400 invalid_callback.
      if (op.requestBody?.content["application/json"] || (op.operationId !== "oauthCallback" && op.parameters?.some((p: { in: string }) => p.in === "query"))) expect(op.responses["422"], where).toBeDefined();
      for (const [status, r] of Object.entries(op.responses as Record<string, any>)) {
        if (status.startsWith("4") || (status.startsWith("5") && path !== "/readyz")) expect(r.content?.["application/problem+json"]?.schema, `${where} ${status}`).toEqual({ $ref: "#/components/schemas/Problem" });
      }
    }
    // Lists and objects are described, not "{items: …}" prose.
    expect(doc.paths["/v1/connections"]!.get.responses["200"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/ConnectionPage" });
    expect(doc.components.schemas.ConnectionPage.properties.items.items.properties.state.enum).toEqual(["pending", "syncing", "ready", "degraded", "error"]);
    expect(doc.paths["/v1/integrations/{id}/enable"]!.post.responses["409"]).toBeDefined();
  });

  it("request schemas are the ones the routes validate with: an empty body's 422 names fields the document lists as required", async () => {
    const withBody = operations().filter((o) => o.op.requestBody?.content["application/json"] && !o.path.includes("{"));
    expect(withBody.map((o) => o.op.operationId).sort()).toEqual(["createConnectSession", "createIntegration", "importConnection", "preflight"]);
    for (const { path, method, op } of withBody) {
      const res = await app.request(path, { method: method.toUpperCase(), headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" }, body: "{}" });
      expect(res.status, path).toBe(422);
      const problem = (await res.json()) as { errors: Array<{ path: string }> };
      const required = op.requestBody.content["application/json"].schema.required as string[];
      expect(problem.errors.map((e) => e.path.split(".")[0]).sort(), path).toEqual([...required].sort());
    }
    // A query the document says is an enum is refused outside it.
    const states = doc.paths["/v1/jobs"]!.get.parameters.find((p: { name: string }) => p.name === "state").schema.enum as string[];
    expect(states).toContain("dead");
    expect((await app.request("/v1/jobs?state=dead", { headers: { authorization: `Bearer ${API_KEY}` } })).status).toBe(200);
    expect((await app.request("/v1/jobs?state=zombie", { headers: { authorization: `Bearer ${API_KEY}` } })).status).toBe(422);
  });

  it("passes `redocly lint` (recommended rules, redocly.yaml) without an error or a warning", async () => {
    const file = join(tmp, "openapi.json");
    writeFileSync(file, JSON.stringify(doc));
    const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn(join(ROOT, "node_modules/.bin/redocly"), ["lint", file, "--config", join(ROOT, "redocly.yaml"), "--format", "summary"], {
        cwd: ROOT,
        env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" },
      });
      let text = "";
      child.stdout.on("data", (d) => (text += d));
      child.stderr.on("data", (d) => (text += d));
      child.on("close", (code) => resolve({ code, text }));
    });
    expect(out.text).toContain("Your API description is valid");
    expect(out.text).not.toMatch(/^(error|warning)\s/m);
    expect(out.text).not.toContain("warnings");
    expect(out.code).toBe(0);
  }, 120_000);
});

describe("GET /reference", () => {
  it("needs the key, and renders every operation and schema as HTML without any script or external resource", async () => {
    expect((await app.request("/reference")).status).toBe(401);
    const res = await app.request("/reference", { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await res.text();
    for (const { op } of operations()) expect(html).toContain(`id="${op.operationId}"`);
    for (const name of Object.keys(doc.components.schemas)) expect(html).toContain(`id="schema-${name}"`);
    expect(html).toContain("<code>/v1/proxy/{connectionId}/{path}</code>");
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
  });
});
