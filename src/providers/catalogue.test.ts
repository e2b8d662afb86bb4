import { describe, expect, it } from "vitest";
import { GrantkeeperError, type ErrorKind } from "../domain/errors.js";
import { loadCatalogue, resolveProviderInput, type ProviderTemplate } from "./catalogue.js";
import { apiBaseUrlFor, authorizationEndpointFor, forTokenCalls } from "./connectionConfig.js";
import { placeholdersIn } from "./placeholders.js";
import { providerLevelCodes, type ProviderInput } from "./definition.js";

const EXPECTED_TEMPLATES = ["github", "google", "slack", "microsoft", "attio", "hubspot", "salesforce", "notion", "linear", "atlassian", "zoom", "dropbox", "quickbooks", "xero", "zendesk", "shopify"];

/** Sample values for every placeholder a template declares or takes from the token response. */
const SAMPLE_CONFIG: Record<string, string> = { tenant: "common", instance_url: "https://acme.my.salesforce.com", api_domain: "https://acme.pipedrive.com", base_uri: "https://na3.docusign.net", domain: "acme.okta.com" };

function sampleConfig(t: ProviderTemplate): Record<string, string> {
  const names = [...Object.keys(t.placeholders ?? {}), ...(t.tokenResponseConfig ?? [])];
  return Object.fromEntries(names.map((p) => [p, SAMPLE_CONFIG[p] ?? `sample-${p.replaceAll("_", "-")}`]));
}

function expectProblem(fn: () => unknown, kind: ErrorKind, code: string): GrantkeeperError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(GrantkeeperError);
  expect(caught).toMatchObject({ kind, code });
  return caught as GrantkeeperError;
}

describe("loadCatalogue", () => {
  const templates = [...loadCatalogue().values()];

  it("has at least 30 templates, the common providers among them", () => {
    expect(templates.length).toBeGreaterThanOrEqual(30);
    expect([...loadCatalogue().keys()]).toEqual(expect.arrayContaining(EXPECTED_TEMPLATES));
  });

  it("keys each template by its own id", () => {
    for (const [id, t] of loadCatalogue()) expect(t.id).toBe(id);
  });

  it("has client-credentials templates", () => {
    expect(templates.filter((t) => t.grantType === "client_credentials").map((t) => t.id)).toEqual(expect.arrayContaining(["paypal", "spotify-app", "microsoft-app"]));
  });
});

describe.each([...loadCatalogue().values()].map((t) => [t.id, t] as const))("template %s", (id, t) => {
  const urls = [t.authorizationEndpoint, t.tokenEndpoint, t.revocationEndpoint, t.apiBaseUrl].filter((u): u is string => u !== undefined);

  it("cites the provider's own documentation over https", () => {
    const docs = new URL(t.docs);
    expect(docs.protocol).toBe("https:");
    // Facts come from the provider, not from an aggregator's copy of them.
    expect(docs.hostname).not.toMatch(/nango|stackoverflow|medium\.com/);
  });

  it("declares every placeholder its URLs use, and uses every one it declares", () => {
    const used = new Set(urls.flatMap(placeholdersIn));
    const declared = new Set([...Object.keys(t.placeholders ?? {}), ...(t.tokenResponseConfig ?? [])]);
    expect([...used].sort()).toEqual([...declared].sort());
  });

  it("has an authorization endpoint exactly when it is an authorization-code provider", () => {
    expect(t.authorizationEndpoint !== undefined).toBe((t.grantType ?? "authorization_code") === "authorization_code");
  });

  it("resolves into a valid definition; with a connection's config every URL is https without placeholders", () => {
    const def = resolveProviderInput(`my-${id}`, { template: id, clientId: "x", clientSecret: "y" });
    expect(def).toMatchObject({
      id: `my-${id}`,
      template: id,
      displayName: t.displayName,
      clientId: "x",
      tokenEndpointAuthMethod: t.tokenEndpointAuthMethod,
      scopeSeparator: t.scopeSeparator,
      scopes: t.defaultScopes ?? [],
      errorClassOverrides: t.errorClassOverrides ?? {},
      grantType: t.grantType ?? "authorization_code",
    });
    // The client secret is stored apart, never in the definition.
    expect(def).not.toHaveProperty("clientSecret");
    const config = sampleConfig(t);
    const resolved = forTokenCalls(def, config);
    const endpoints = [resolved.tokenEndpoint, resolved.revocationEndpoint, apiBaseUrlFor(def, { connectionConfig: config }), ...(def.authorizationEndpoint ? [authorizationEndpointFor(def, config)] : [])];
    for (const url of endpoints.filter((u): u is string => u !== undefined)) {
      expect(new URL(url).protocol).toBe("https:");
      expect(url).not.toMatch(/[{}]/);
    }
  });

  it("has quirks that mean something: an idle expiry longer than a day", () => {
    if (t.quirks.refreshTokenIdleExpirySeconds !== undefined) expect(t.quirks.refreshTokenIdleExpirySeconds).toBeGreaterThan(86_400);
  });
});

describe("resolveProviderInput from a template", () => {
  it("fills templateParams into the URLs", () => {
    const def = resolveProviderInput("ms", { template: "microsoft", clientId: "x", clientSecret: "y", templateParams: { tenant: "contoso.onmicrosoft.com" } });
    expect(def.tokenEndpoint).toBe("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    expect(def.authorizationEndpoint).toBe("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize");
  });

  it("leaves placeholders without templateParams for each connection's connectionConfig", () => {
    const def = resolveProviderInput("ms", { template: "microsoft", clientId: "x", clientSecret: "y" });
    expect(def.tokenEndpoint).toBe("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token");
    expect(forTokenCalls(def, { tenant: "fabrikam.onmicrosoft.com" }).tokenEndpoint).toBe("https://login.microsoftonline.com/fabrikam.onmicrosoft.com/oauth2/v2.0/token");
    const e = expectProblem(() => forTokenCalls(def, {}), "invalid_input", "connection_config_missing");
    expect(e.message).toContain("connectionConfig.tenant");
  });

  it("a templateParam the template does not have → 422 invalid_provider naming the ones it has", () => {
    const e = expectProblem(() => resolveProviderInput("ms", { template: "microsoft", clientId: "x", clientSecret: "y", templateParams: { tennant: "x" } }), "invalid_input", "invalid_provider");
    expect(e.message).toMatch(/tennant.*tenant/);
  });

  it("an unknown template → 422 unknown_template", () => {
    expectProblem(() => resolveProviderInput("acme", { template: "no-such-provider", clientId: "x", clientSecret: "y" }), "invalid_input", "unknown_template");
  });

  it("a template whose auth method needs a secret, without clientSecret → 422 invalid_provider", () => {
    expectProblem(() => resolveProviderInput("gh", { template: "github", clientId: "x" }), "invalid_input", "invalid_provider");
  });

  it("body fields override template fields; maps are merged", () => {
    const input: ProviderInput = {
      template: "github",
      clientId: "x",
      clientSecret: "y",
      displayName: "GitHub Enterprise",
      authorizationEndpoint: "https://ghe.example.com/login/oauth/authorize",
      tokenEndpoint: "https://ghe.example.com/login/oauth/access_token",
      apiBaseUrl: "https://ghe.example.com/api/v3",
      tokenEndpointAuthMethod: "client_secret_basic",
      scopes: ["repo"],
      authorizationParams: { allow_signup: "false" },
      quirks: { expiresInMissing: false },
      errorClassOverrides: { bad_refresh_token: "transient", some_new_error: "provider" },
    };
    const def = resolveProviderInput("ghe", input);
    expect(def).toMatchObject({
      template: "github",
      displayName: "GitHub Enterprise",
      authorizationEndpoint: "https://ghe.example.com/login/oauth/authorize",
      tokenEndpoint: "https://ghe.example.com/login/oauth/access_token",
      apiBaseUrl: "https://ghe.example.com/api/v3",
      tokenEndpointAuthMethod: "client_secret_basic",
      scopes: ["repo"],
    });
    expect(def.authorizationParams.allow_signup).toBe("false");
    // quirks: the body's value wins, the template's others stay
    expect(def.quirks).toMatchObject({ expiresInMissing: false, errorsWithStatus200: true, rotatesRefreshTokens: true });
    expect(def.errorClassOverrides).toMatchObject({
      bad_refresh_token: "transient",
      some_new_error: "provider",
      incorrect_client_credentials: "provider",
    });
  });

  it("a body that supplies an API base URL replaces the template's per-connection one", () => {
    const def = resolveProviderInput("sf", { template: "salesforce", clientId: "x", clientSecret: "y", apiBaseUrl: "https://acme.my.salesforce.com" });
    expect(def.apiBaseUrl).toBe("https://acme.my.salesforce.com");
  });

  it("a grantType in the body wins over the template's (Twitch app access tokens)", () => {
    expect(resolveProviderInput("tw", { template: "twitch", clientId: "x", clientSecret: "y", grantType: "client_credentials" }).grantType).toBe("client_credentials");
  });
});

describe("resolveProviderInput from a plain definition", () => {
  const plain = (overrides: Partial<ProviderInput>): ProviderInput => ({
    clientId: "x",
    clientSecret: "y",
    authorizationEndpoint: "https://auth.example.com/authorize",
    tokenEndpoint: "https://auth.example.com/token",
    ...overrides,
  });

  it("resolves with defaults for what it does not say", () => {
    expect(resolveProviderInput("acme", plain({}))).toMatchObject({
      id: "acme",
      displayName: "acme",
      tokenEndpointAuthMethod: "client_secret_basic",
      scopes: [],
      scopeSeparator: " ",
      authorizationParams: {},
      quirks: {},
      errorClassOverrides: {},
    });
  });

  it("a public client (no secret) defaults to auth method none", () => {
    const { clientSecret: _unused, ...noSecret } = plain({});
    expect(resolveProviderInput("acme", noSecret).tokenEndpointAuthMethod).toBe("none");
  });

  it("refuses an http token endpoint on a non-loopback host → 422 invalid_provider naming the field", () => {
    const e = expectProblem(() => resolveProviderInput("acme", plain({ tokenEndpoint: "http://example.com/token" })), "invalid_input", "invalid_provider");
    expect(e.fields?.map((x) => x.path)).toContain("tokenEndpoint");
  });

  it("accepts http on loopback", () => {
    const def = resolveProviderInput("local", plain({ authorizationEndpoint: "http://127.0.0.1:9/authorize", tokenEndpoint: "http://127.0.0.1:9/token" }));
    expect(def.tokenEndpoint).toBe("http://127.0.0.1:9/token");
  });

  it("client_secret_basic without clientSecret → 422 invalid_provider", () => {
    const { clientSecret: _unused, ...noSecret } = plain({ tokenEndpointAuthMethod: "client_secret_basic" });
    expectProblem(() => resolveProviderInput("acme", noSecret), "invalid_input", "invalid_provider");
  });

  it("without a token endpoint → 422 invalid_provider", () => {
    const { tokenEndpoint: _unused, ...noToken } = plain({});
    expectProblem(() => resolveProviderInput("acme", noToken), "invalid_input", "invalid_provider");
  });

  it("an id that is not lowercase letters, digits, '-' and '_' → 422 invalid_provider", () => {
    expectProblem(() => resolveProviderInput("Acme Corp", plain({})), "invalid_input", "invalid_provider");
  });
});

describe("providerLevelCodes", () => {
  it("lists the RFC 6749 client errors, missing settings and the provider's own provider-level codes", () => {
    const ms = resolveProviderInput("ms", { template: "microsoft", clientId: "x", clientSecret: "y" });
    expect(providerLevelCodes(ms)).toEqual(expect.arrayContaining(["invalid_client", "unauthorized_client", "unsupported_grant_type", "connection_config_missing", "AADSTS7000215", "invalid_resource"]));
    expect(providerLevelCodes(ms)).not.toContain("invalid_grant");
    expect(providerLevelCodes(ms)).not.toContain("AADSTS70008");
  });

  it("for a client-credentials provider, its permanent codes too (no grant can die)", () => {
    const pp = resolveProviderInput("pp", { template: "paypal", clientId: "x", clientSecret: "y", errorClassOverrides: { bad_thing: "permanent" } });
    expect(providerLevelCodes(pp)).toEqual(expect.arrayContaining(["invalid_grant", "bad_thing"]));
  });
});
