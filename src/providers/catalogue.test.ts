import { describe, expect, it } from "vitest";
import { GrantkeeperError, type ErrorKind } from "../domain/errors.js";
import { loadCatalogue, resolveProviderInput } from "./catalogue.js";
import type { ProviderDefinition, ProviderInput } from "./definition.js";

const EXPECTED_TEMPLATES = ["github", "google", "slack", "microsoft", "attio", "hubspot", "salesforce", "notion", "linear", "atlassian", "zoom", "dropbox"];

/** Sample values for every placeholder a template declares. */
const SAMPLE_PARAMS: Record<string, string> = { tenant: "common", instance: "acme" };

function paramsFor(placeholders: readonly string[] | undefined): Record<string, string> {
  return Object.fromEntries((placeholders ?? []).map((p) => [p, SAMPLE_PARAMS[p] ?? `sample-${p}`]));
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

const endpointsOf = (d: ProviderDefinition) =>
  [d.authorizationEndpoint, d.tokenEndpoint, d.revocationEndpoint, d.apiBaseUrl, d.issuer].filter((u): u is string => u !== undefined);

describe("loadCatalogue", () => {
  it("has the common providers", () => {
    const ids = [...loadCatalogue().keys()];
    expect(ids).toEqual(expect.arrayContaining(EXPECTED_TEMPLATES));
  });

  it("keys each template by its own id", () => {
    for (const [id, t] of loadCatalogue()) expect(t.id).toBe(id);
  });
});

describe("resolveProviderInput from a template", () => {
  const templates = [...loadCatalogue().values()];

  it.each(templates.map((t) => [t.id, t] as const))("%s resolves (placeholders filled) into a valid https definition", (id, t) => {
    const def = resolveProviderInput(`my-${id}`, { template: id, clientId: "x", clientSecret: "y", templateParams: paramsFor(t.placeholders) });
    expect(def).toMatchObject({
      id: `my-${id}`,
      template: id,
      displayName: t.displayName,
      clientId: "x",
      tokenEndpointAuthMethod: t.tokenEndpointAuthMethod,
      scopeSeparator: t.scopeSeparator,
      scopes: t.defaultScopes ?? [],
      errorClassOverrides: t.errorClassOverrides ?? {},
    });
    const urls = endpointsOf(def);
    expect(urls.length).toBeGreaterThanOrEqual(3); // authorization, token, API base
    for (const url of urls) {
      expect(new URL(url).protocol).toBe("https:");
      expect(url).not.toMatch(/[{}]/);
    }
    // The client secret is stored apart, never in the definition.
    expect(def).not.toHaveProperty("clientSecret");
  });

  it("fills placeholders into the URLs", () => {
    const def = resolveProviderInput("ms", { template: "microsoft", clientId: "x", clientSecret: "y", templateParams: { tenant: "contoso.onmicrosoft.com" } });
    expect(def.tokenEndpoint).toBe("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    expect(def.authorizationEndpoint).toBe("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize");
  });

  const withPlaceholders = templates.filter((t) => (t.placeholders ?? []).length > 0);

  it("has at least one template with placeholders (microsoft's tenant)", () => {
    expect(withPlaceholders.map((t) => t.id)).toContain("microsoft");
  });

  it.each(withPlaceholders.map((t) => [t.id] as const))("%s without templateParams → 422 template_param_missing", (id) => {
    const e = expectProblem(() => resolveProviderInput(id, { template: id, clientId: "x", clientSecret: "y" }), "invalid_input", "template_param_missing");
    expect(e.message).toMatch(/templateParams\./);
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

  it("a body that supplies an API base URL does not need the template's placeholder for it", () => {
    const def = resolveProviderInput("sf", { template: "salesforce", clientId: "x", clientSecret: "y", apiBaseUrl: "https://acme.my.salesforce.com" });
    expect(def.apiBaseUrl).toBe("https://acme.my.salesforce.com");
  });

  it("a body that supplies every templated endpoint does not need templateParams", () => {
    const def = resolveProviderInput("ms", {
      template: "microsoft",
      clientId: "x",
      clientSecret: "y",
      authorizationEndpoint: "https://login.microsoftonline.com/contoso/oauth2/v2.0/authorize",
      tokenEndpoint: "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
    });
    expect(def.tokenEndpoint).toBe("https://login.microsoftonline.com/contoso/oauth2/v2.0/token");
    expect(def.authorizationEndpoint).toBe("https://login.microsoftonline.com/contoso/oauth2/v2.0/authorize");
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
