import { describe, expect, it } from "vitest";
import { isGrantkeeperError } from "../domain/errors.js";
import { fillTemplate, opensWithOrigin, placeholdersIn, templateProblem } from "./placeholders.js";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isGrantkeeperError(e) ? e.code : "not a GrantkeeperError";
  }
  return undefined;
}

describe("placeholdersIn / opensWithOrigin", () => {
  it("lists names once, in order", () => {
    expect(placeholdersIn("https://{sub}.example.com/{tenant}/{sub}")).toEqual(["sub", "tenant"]);
    expect(placeholdersIn("https://example.com")).toEqual([]);
  });

  it("tells an origin placeholder from one inside the URL", () => {
    expect(opensWithOrigin("{instance_url}/services")).toBe(true);
    expect(opensWithOrigin("https://{subdomain}.zendesk.com")).toBe(false);
  });
});

describe("templateProblem", () => {
  it.each([
    ["a plain https URL", "https://api.example.com/v2"],
    ["a subdomain placeholder", "https://{subdomain}.zendesk.com/api/v2"],
    ["a path placeholder", "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"],
    ["an origin placeholder", "{instance_url}"],
    ["an origin placeholder with a path", "{api_domain}/api"],
    ["http on loopback", "http://127.0.0.1:9/{x}/token"],
  ])("accepts %s", (_label, url) => {
    expect(templateProblem(url)).toBeUndefined();
  });

  it.each([
    ["plain http elsewhere", "http://api.example.com"],
    ["a placeholder that is not an identifier", "https://{sub-domain}.example.com"],
    ["an unpaired brace", "https://{sub.example.com"],
    ["an origin placeholder glued to text", "{instance}.salesforce.com"],
    ["not a URL once filled", "{instance_url"],
  ])("refuses %s", (_label, url) => {
    expect(templateProblem(url)).toBeDefined();
  });
});

describe("fillTemplate", () => {
  it("fills a value inside a URL", () => {
    expect(fillTemplate("https://{subdomain}.zendesk.com/api/v2", { subdomain: "acme" }, "apiBaseUrl", "connectionConfig")).toBe("https://acme.zendesk.com/api/v2");
  });

  it("fills an origin, dropping its trailing slash", () => {
    expect(fillTemplate("{instance_url}/services/data", { instance_url: "https://acme.my.salesforce.com/" }, "apiBaseUrl", "connectionConfig")).toBe("https://acme.my.salesforce.com/services/data");
  });

  it("names every missing value → connection_config_missing", () => {
    let caught: unknown;
    try {
      fillTemplate("https://{a}.example.com/{b}", {}, "tokenEndpoint", "connectionConfig");
    } catch (e) {
      caught = e;
    }
    expect(caught).toMatchObject({ code: "connection_config_missing", kind: "invalid_input", message: "tokenEndpoint needs connectionConfig.a, connectionConfig.b" });
  });

  it("keeps missing placeholders in place when asked to", () => {
    expect(fillTemplate("https://{a}.example.com/{b}", { b: "x" }, "f", "templateParams", true)).toBe("https://{a}.example.com/x");
  });

  it.each([
    ["a slash that would change the host", "https://{subdomain}.zendesk.com", { subdomain: "evil.com/x" }],
    ["credentials", "https://{subdomain}.zendesk.com", { subdomain: "a@evil.com" }],
    ["a port", "https://{subdomain}.zendesk.com", { subdomain: "evil.com:443" }],
    ["a query", "https://{subdomain}.zendesk.com", { subdomain: "x?y" }],
    ["an empty value", "https://{subdomain}.zendesk.com", { subdomain: "" }],
    ["an origin that is not a URL", "{instance_url}", { instance_url: "acme.my.salesforce.com" }],
    ["an origin over plain http", "{instance_url}", { instance_url: "http://acme.my.salesforce.com" }],
    ["an origin with credentials", "{instance_url}", { instance_url: "https://user:pw@acme.my.salesforce.com" }],
    ["an origin with a query", "{instance_url}", { instance_url: "https://acme.my.salesforce.com?x=1" }],
  ])("refuses %s → invalid_connection_config", (_label, template, values) => {
    expect(codeOf(() => fillTemplate(template, values, "apiBaseUrl", "connectionConfig"))).toBe("invalid_connection_config");
  });

  it("accepts a loopback http origin (tests, local development)", () => {
    expect(fillTemplate("{instance_url}", { instance_url: "http://127.0.0.1:8080" }, "apiBaseUrl", "connectionConfig")).toBe("http://127.0.0.1:8080");
  });
});
