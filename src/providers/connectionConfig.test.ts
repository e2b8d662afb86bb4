import { describe, expect, it } from "vitest";
import { resolveProviderInput } from "./catalogue.js";
import { apiBaseUrlFor, assertConnectionConfigComplete, authorizationEndpointFor, configFromTokenResponse, connectFlowConfig, connectionConfigSchema, parseConnectionConfig, requiredConfigNames } from "./connectionConfig.js";

const salesforce = resolveProviderInput("sf", { template: "salesforce", clientId: "x", clientSecret: "y" });
const zendesk = resolveProviderInput("zd", { template: "zendesk", clientId: "x", clientSecret: "y" });

describe("apiBaseUrlFor", () => {
  it("resolves per connection: two Salesforce orgs, two hosts", () => {
    expect(apiBaseUrlFor(salesforce, { connectionConfig: { instance_url: "https://acme.my.salesforce.com" } })).toBe("https://acme.my.salesforce.com");
    expect(apiBaseUrlFor(salesforce, { connectionConfig: { instance_url: "https://globex.my.salesforce.com" } })).toBe("https://globex.my.salesforce.com");
  });

  it("a missing value → 422 connection_config_missing, never a literal {name} host", () => {
    expect(() => apiBaseUrlFor(salesforce, { connectionConfig: {} })).toThrow(expect.objectContaining({ code: "connection_config_missing", kind: "invalid_input" }));
  });

  it("a provider without apiBaseUrl → 422 no_api_base_url", () => {
    expect(() => apiBaseUrlFor({ id: "p" }, { connectionConfig: {} })).toThrow(expect.objectContaining({ code: "no_api_base_url", kind: "invalid_input" }));
  });
});

describe("authorizationEndpointFor", () => {
  it("fills the connect session's subdomain", () => {
    expect(authorizationEndpointFor(zendesk, { subdomain: "acme" })).toBe("https://acme.zendesk.com/oauth/authorizations/new");
  });

  it("a client-credentials provider has no connect flow → 422 grant_type_mismatch", () => {
    const paypal = resolveProviderInput("pp", { template: "paypal", clientId: "x", clientSecret: "y" });
    expect(() => authorizationEndpointFor(paypal, {})).toThrow(expect.objectContaining({ code: "grant_type_mismatch" }));
  });
});

describe("requiredConfigNames / assertConnectionConfigComplete", () => {
  it("lists what the token, revocation and API URLs need, minus what the token response brings", () => {
    expect(requiredConfigNames(salesforce)).toEqual(["instance_url"]);
    expect(requiredConfigNames(salesforce, salesforce.tokenResponseConfig)).toEqual([]);
    expect(requiredConfigNames(zendesk)).toEqual(["subdomain"]);
  });

  it("names the missing ones", () => {
    expect(() => assertConnectionConfigComplete(zendesk, {})).toThrow(/connectionConfig\.subdomain/);
    expect(() => assertConnectionConfigComplete(zendesk, { subdomain: "acme" })).not.toThrow();
  });
});

describe("configFromTokenResponse", () => {
  it("takes only the named fields, strings as sent and numbers as text", () => {
    const body = { access_token: "secret", instance_url: "https://acme.my.salesforce.com", id: 42, nested: { a: 1 }, extra: "x" };
    expect(configFromTokenResponse(body, ["instance_url", "id", "nested", "absent"])).toEqual({ instance_url: "https://acme.my.salesforce.com", id: "42" });
    expect(configFromTokenResponse(body, undefined)).toEqual({});
  });

  it("leaves out values over 2048 characters", () => {
    expect(configFromTokenResponse({ x: "a".repeat(2049) }, ["x"])).toEqual({});
  });

  it("reads and keeps only the answer's own fields, whatever their names", () => {
    const body = JSON.parse('{"__proto__":"p","constructor":"c"}') as Record<string, unknown>;
    expect(Object.entries(configFromTokenResponse(body, ["__proto__", "constructor", "toString"]))).toEqual([["__proto__", "p"], ["constructor", "c"]]);
  });
});

describe("connectionConfigSchema (settings a connect session or an import carries to the connection, never secrets)", () => {
  const ok = (v: unknown) => connectionConfigSchema.safeParse(v).success;

  it("accepts plain settings, placeholder names and the host's own", () => {
    expect(ok({ subdomain: "acme", instance_url: "https://acme.my.salesforce.com", region: "eu-1", "sub-domain": "x", "instance.url": "y", _x: "" })).toBe(true);
    expect(ok(Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, "v"])))).toBe(true);
    expect(ok({ k: "v".repeat(2048) })).toBe(true);
  });

  it.each([
    [{ apiToken: "x" }, "a key named like a token"],
    [{ client_secret: "x" }, "a key named like a secret"],
    [{ password: "x" }, "a password"],
    [{ api_key: "x" }, "an API key"],
    [{ privateKey: "x" }, "a private key"],
    [{ "1abc": "x" }, "a name starting with a digit"],
    [{ "a b": "x" }, "a name with a space"],
    [{ ["k".repeat(65)]: "x" }, "a name over 64 characters"],
    [{ k: "v".repeat(2049) }, "a value over 2 048 characters"],
    [{ k: "line\nbreak" }, "a control character"],
    [{ k: 1 }, "a value that is not a string"],
    [Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])), "33 settings"],
  ] as Array<[unknown, string]>)("refuses %j (%s)", (value, _why) => {
    expect(ok(value)).toBe(false);
  });
});

describe("parseConnectionConfig", () => {
  it("reads stored JSON, {} for anything else", () => {
    expect(parseConnectionConfig('{"a":"b","n":1}')).toEqual({ a: "b" });
    expect(parseConnectionConfig(null)).toEqual({});
    expect(parseConnectionConfig("[1]")).toEqual({});
    expect(parseConnectionConfig("not json")).toEqual({});
  });
});

describe("connectFlowConfig", () => {
  it("keeps only what the connect flow's endpoints need", () => {
    expect(connectFlowConfig(zendesk, { subdomain: "acme", locale: "fr" })).toEqual({ subdomain: "acme" });
    expect(connectFlowConfig(salesforce, { instance_url: "https://acme.my.salesforce.com" })).toEqual({});
  });
});
