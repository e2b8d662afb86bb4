import { describe, expect, it } from "vitest";
import { connectionConfigSchema, scopeSchema } from "./connectSessions.js";

const ok = (v: unknown) => connectionConfigSchema.safeParse(v).success;

describe("connectionConfig (settings a connect session carries to the grant, never secrets)", () => {
  it("accepts plain settings", () => {
    expect(ok({ subdomain: "acme", region: "eu-1", "instance.url": "https://acme.my.salesforce.com", _x: "" })).toBe(true);
    expect(ok(Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, "v"])))).toBe(true);
    expect(ok({ k: "v".repeat(1024) })).toBe(true);
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
    [{ k: "v".repeat(1025) }, "a value over 1 024 characters"],
    [{ k: "line\nbreak" }, "a control character"],
    [{ k: 1 }, "a value that is not a string"],
    [Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])), "33 settings"],
  ])("refuses %j (%s)", (value) => {
    expect(ok(value)).toBe(false);
  });
});

describe("scopes (RFC 6749 §3.3 scope-token)", () => {
  it.each(["openid", "https://www.googleapis.com/auth/drive.readonly", "repo:status", "read_api"])("accepts %s", (s) => expect(scopeSchema.safeParse(s).success).toBe(true));
  it.each(["", "two words", 'quo"te', "back\\slash", "tab\there", "é"])("refuses %j", (s) => expect(scopeSchema.safeParse(s).success).toBe(false));
});
