/**
 * `resetOnReauth` policy: the default resets only ERROR caused by the
 * re-authorized connection; `["ERROR","DISABLED"]` (Frigg's behaviour) also
 * re-enables DISABLED dependents. A re-import for the same entity is a
 * re-authorization too.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createGrantkeeper, type Grantkeeper } from "../../src/grantkeeper.js";
import { ManualClock } from "../../src/domain/clock.js";
import { testDatabase, testKey, type TestDatabase } from "../support/backend.js";
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "../support/scriptedTokenEndpoint.js";

describe("resetOnReauth policy", () => {
  let db: TestDatabase;
  let ep: ScriptedTokenEndpoint;
  let gk: Grantkeeper;

  afterEach(async () => {
    await gk?.close();
    await ep?.close();
    await db?.cleanup();
  });

  async function scenario(resetOnReauth: Array<"ERROR" | "DISABLED">) {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    gk = await createGrantkeeper({
      databaseUrl: db.url,
      encryptionKey: testKey(),
      clock: new ManualClock(),
      integrations: { resetOnReauth },
      providers: { p: { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "s" } },
    });
    const grant = (at: string) => gk.connections.storeGrant({ providerId: "p", entityId: "e", source: "import", tokens: { accessToken: at, tokenType: "Bearer", refreshToken: `rt-${at}`, expiresInSeconds: 3600 } });
    const { connection } = await grant("one");
    const enabled = (await gk.integrations.create({ name: "on", entityId: "e", connectionIds: [connection.id] })).integration;
    const disabled = (await gk.integrations.create({ name: "off", entityId: "e", connectionIds: [connection.id] })).integration;
    await gk.integrations.disable(disabled.id);
    ep.push({ status: 400, body: { error: "invalid_grant" } });
    await gk.connections.refresh(connection.id);
    expect((await gk.integrations.get(enabled.id)).status).toBe("ERROR");
    expect((await gk.integrations.get(disabled.id)).status).toBe("DISABLED");
    await grant("two");
    return { on: await gk.integrations.get(enabled.id), off: await gk.integrations.get(disabled.id) };
  }

  it("default [ERROR]: the ERROR integration is re-enabled, the DISABLED one stays off", async () => {
    const { on, off } = await scenario(["ERROR"]);
    expect(on.status).toBe("ENABLED");
    expect(off.status).toBe("DISABLED");
  });

  it("[ERROR, DISABLED]: both come back ENABLED", async () => {
    const { on, off } = await scenario(["ERROR", "DISABLED"]);
    expect(on.status).toBe("ENABLED");
    expect(off.status).toBe("ENABLED");
    const history = (await gk.integrations.events(off.id)).items;
    expect(history[0]).toMatchObject({ actor: "reauthorization", from: "DISABLED", to: "ENABLED" });
  });

  it("a new integration on an already dead connection starts in ERROR, naming it", async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: testKey(), clock: new ManualClock(), providers: { p: { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "s" } } });
    const { connection } = await gk.connections.storeGrant({ providerId: "p", entityId: "e", source: "import", tokens: { accessToken: "a", tokenType: "Bearer", refreshToken: "r", expiresInSeconds: 3600 } });
    ep.push({ status: 401, body: { error: "invalid_grant" } });
    await gk.connections.refresh(connection.id);
    const { integration } = await gk.integrations.create({ name: "late", entityId: "e", connectionIds: [connection.id] });
    expect(integration).toMatchObject({ status: "ERROR", statusReason: "credential_invalidated", statusCause: { connectionId: connection.id } });
  });

  it("a failing connection.invalidated subscriber never changes the refresh result or the propagation", async () => {
    db = await testDatabase();
    ep = await startScriptedTokenEndpoint();
    gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: testKey(), clock: new ManualClock(), providers: { p: { authorizationEndpoint: `${ep.origin}/auth`, tokenEndpoint: ep.tokenEndpoint, clientId: "c", clientSecret: "s" } } });
    let called = 0;
    gk.hooks.on("connection.invalidated", () => {
      called++;
      throw new Error("alert sink is down");
    });
    const { connection } = await gk.connections.storeGrant({ providerId: "p", entityId: "e", source: "import", tokens: { accessToken: "a", tokenType: "Bearer", refreshToken: "r", expiresInSeconds: 3600 } });
    const { integration } = await gk.integrations.create({ name: "i", entityId: "e", connectionIds: [connection.id] });
    ep.push({ status: 400, body: { error: "invalid_grant" } });
    const after = await gk.connections.refresh(connection.id);
    expect(called).toBe(1);
    expect(after).toMatchObject({ state: "error", lastError: { code: "invalid_grant" } });
    expect((await gk.integrations.get(integration.id)).status).toBe("ERROR");
  });
});
