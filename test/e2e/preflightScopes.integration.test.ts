/**
 * Preflight with scopes (contract v1.1): a usable grant missing a required
 * scope answers `usable: true, action: "reconnect", missingScopes` and a link
 * that asks for them — only the missing ones where the provider supports
 * incremental authorization (Google's `include_granted_scopes`), otherwise
 * everything the grant must end up with. Each link is a fresh connect
 * session. Against oidc-provider's real login and consent pages.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { connectVia, connectWith } from "../support/connect.js";

describe("preflight with scopes", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let t: GrantkeeperUnderTest;
  let base: Record<string, unknown>;

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db);
    as = await startAuthServer({ accessTokenTtlSeconds: 3600, extraScopes: ["read", "write", "admin"], clients: [{ clientId: "scopes", clientSecret: "scopes-secret-123", redirectUris: [`${t.url}/v1/oauth/callback`] }] });
    base = { issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, clientId: "scopes", clientSecret: "scopes-secret-123", scopes: ["openid", "read"] };
    expect((await t.api("PUT", "/v1/providers/acme", base)).status).toBe(200);
    expect((await t.api("PUT", "/v1/providers/goog", { ...base, incrementalAuthorizationParams: { include_granted_scopes: "true" } })).status).toBe(200);
  });

  afterAll(async () => {
    await t?.close();
    await as?.close();
    await db?.cleanup();
  });

  /** The scopes and parameters the link's authorization request asks the provider for. */
  async function authorizationRequestOf(link: string): Promise<URLSearchParams> {
    const res = await fetch(link, { redirect: "manual" });
    expect(res.status).toBe(302);
    return new URL(res.headers.get("location")!).searchParams;
  }

  const preflight = async (entityId: string, providers: unknown[]) => (await t.api("POST", "/v1/preflight", { entityId, providers })).body;

  it("a grant holding every required scope needs nothing; plain ids and {providerId} mix", async () => {
    const conn = await connectWith(t.gk, { providerId: "acme", entityId: "ann" });
    expect(conn.scope.split(" ").sort()).toEqual(["openid", "read"]);
    expect(await preflight("ann", [{ providerId: "acme", scopes: ["read"] }, "acme"])).toEqual({
      ok: true,
      entityId: "ann",
      providers: [{ providerId: "acme", usable: true, connectionId: conn.id, state: "pending", action: "none" }],
    });
  });

  it("a usable grant lacking a scope: reconnect with missingScopes, and a link asking for all the grant must hold", async () => {
    const r = await preflight("ann", [{ providerId: "acme", scopes: ["read", "write"] }]);
    expect(r.ok).toBe(false);
    expect(r.providers[0]).toMatchObject({ providerId: "acme", usable: true, action: "reconnect", missingScopes: ["write"] });
    const asked = await authorizationRequestOf(r.providers[0].connectUrl);
    expect(asked.get("scope")!.split(" ").sort()).toEqual(["openid", "read", "write"]);
    expect(asked.has("include_granted_scopes")).toBe(false);
    // The user follows it: the new grant holds the scope, preflight is satisfied, the connection is the same.
    const conn = await connectVia(r.providers[0].connectUrl, "ann");
    expect(conn.id).toBe(r.providers[0].connectionId);
    expect(conn.scope.split(" ")).toContain("write");
    expect((await preflight("ann", [{ providerId: "acme", scopes: ["read", "write"] }])).ok).toBe(true);
  });

  it("incremental authorization (Google): the link asks for the missing scopes only, with include_granted_scopes", async () => {
    await connectWith(t.gk, { providerId: "goog", entityId: "bob" });
    const r = await preflight("bob", [{ providerId: "goog", scopes: ["admin"] }]);
    expect(r.providers[0]).toMatchObject({ usable: true, action: "reconnect", missingScopes: ["admin"] });
    const asked = await authorizationRequestOf(r.providers[0].connectUrl);
    expect(asked.get("scope")).toBe("admin");
    expect(asked.get("include_granted_scopes")).toBe("true");
  });

  it("a missing connection's link asks for the provider's scopes plus the required ones", async () => {
    const r = await preflight("carol", [{ providerId: "acme", scopes: ["admin"] }]);
    expect(r.providers[0]).toMatchObject({ usable: false, action: "connect" });
    expect(r.providers[0]).not.toHaveProperty("missingScopes");
    const asked = await authorizationRequestOf(r.providers[0].connectUrl);
    expect(asked.get("scope")!.split(" ").sort()).toEqual(["admin", "openid", "read"]);
  });

  it("the scopes are stored in the link's session: a query parameter cannot change them", async () => {
    const r = await preflight("ann", [{ providerId: "acme", scopes: ["admin"] }]);
    const tampered = `${r.providers[0].connectUrl}&scope=openid`;
    const asked = await authorizationRequestOf(tampered);
    expect(asked.get("scope")!.split(" ")).toContain("admin");
  });

  it("a reconnect link carries the connection's settings its endpoints need; a first connect without them gets no link", async () => {
    expect((await t.api("PUT", "/v1/providers/tenanted", { ...base, authorizationEndpoint: "{idp}/auth", tokenEndpoint: "{idp}/token" })).status).toBe(200);
    expect((await preflight("dave", ["tenanted"])).providers[0]).toEqual({ providerId: "tenanted", usable: false, action: "connect" });
    const conn = await connectWith(t.gk, { providerId: "tenanted", entityId: "dave", connectionConfig: { idp: as.issuer, region: "eu" } });
    expect(conn.connectionConfig).toEqual({ idp: as.issuer, region: "eu" });

    const r = await preflight("dave", [{ providerId: "tenanted", scopes: ["write"] }]);
    expect(r.providers[0]).toMatchObject({ usable: true, action: "reconnect", missingScopes: ["write"] });
    const asked = await fetch(r.providers[0].connectUrl, { redirect: "manual" });
    expect(asked.headers.get("location")).toMatch(new RegExp(`^${as.issuer}/auth\\?`));
    // The user follows it: same connection, the scope granted, every setting kept.
    const again = await connectVia(r.providers[0].connectUrl, "dave");
    expect(again).toMatchObject({ id: conn.id, connectionConfig: { idp: as.issuer, region: "eu" } });
    expect(again.scope.split(" ")).toContain("write");
  });

  it("refuses a malformed requirement with 422 and an unknown provider with 422 provider_not_found", async () => {
    const bad = await t.api("POST", "/v1/preflight", { entityId: "ann", providers: [{ providerId: "acme", scopes: "read" }] });
    expect(bad).toMatchObject({ status: 422, body: { code: "validation_failed" } });
    const unknown = await t.api("POST", "/v1/preflight", { entityId: "ann", providers: [{ providerId: "nope", scopes: ["read"] }] });
    expect(unknown).toMatchObject({ status: 422, body: { code: "provider_not_found" } });
  });
});
