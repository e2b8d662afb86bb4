/**
 * API-key rotation on a real socket (issue 13 item 3; docs/operations.md
 * "API keys"): `GRANTKEEPER_API_KEY=old,new` accepts both; after the restart
 * with `new` alone, `old` answers 401 and nothing it sends changes anything.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { createApp } from "../../src/http/app.js";
import { listen, type RunningServer } from "../../src/http/server.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";

describe("API-key rotation", () => {
  let db: TestDatabase;
  let gk: Grantkeeper;
  let server: RunningServer | undefined;

  const serve = async (apiKey: string) => {
    await server?.close();
    server = await listen(createApp(gk, { apiKey }), "127.0.0.1", 0);
  };
  const call = (key: string, method = "GET", path = "/v1/providers", body?: unknown) =>
    fetch(`${server!.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });

  beforeAll(async () => {
    db = await testDatabase();
    gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: testKey() });
  });

  afterAll(async () => {
    await server?.close();
    await gk?.close();
    await db?.cleanup();
  });

  it("accepts each of two comma-separated keys, then refuses the one removed", async () => {
    await serve(" key-old-1111 , key-new-2222 ");
    for (const key of ["key-old-1111", "key-new-2222"]) expect((await call(key)).status).toBe(200);
    expect((await call("key-old-1111,key-new-2222")).status).toBe(401);
    const put = await call("key-old-1111", "PUT", "/v1/providers/acme", { authorizationEndpoint: "http://127.0.0.1:9/auth", tokenEndpoint: "http://127.0.0.1:9/token", clientId: "c" });
    expect(put.status).toBeLessThan(300);

    await serve("key-new-2222");
    const refused = await call("key-old-1111");
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await call("key-old-1111", "DELETE", "/v1/providers/acme")).status).toBe(401);
    const listed = await call("key-new-2222");
    expect(listed.status).toBe(200);
    expect(JSON.stringify(await listed.json())).toContain("acme");
  });
});
