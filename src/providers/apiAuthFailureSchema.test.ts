import { describe, expect, it } from "vitest";
import { isInvalidInputError } from "../domain/errors.js";
import { resolveProviderInput } from "./catalogue.js";
import { apiAuthFailureSchema } from "./definition.js";

const base = { authorizationEndpoint: "https://x.example/auth", tokenEndpoint: "https://x.example/token", clientId: "c", clientSecret: "s", apiBaseUrl: "https://api.x.example/v2" };
const slack = { json: [{ path: "error", in: ["token_expired", "invalid_auth"] }] };

describe("apiAuthFailure in a provider definition", () => {
  it("is kept on the resolved definition", () => {
    expect(resolveProviderInput("x", { ...base, apiAuthFailure: slack }).apiAuthFailure).toEqual(slack);
    expect(resolveProviderInput("x", base).apiAuthFailure).toBeUndefined();
  });

  it.each([
    ["statuses only", { statuses: [403] }],
    ["json only", slack],
    ["both", { statuses: [403], json: [{ path: "code", equals: "expired" }] }],
    ["an array index and a boolean", { json: [{ path: "errors.0.ok", equals: false }] }],
    ["null", { json: [{ path: "token", equals: null }] }],
  ])("accepts %s", (_name, rule) => {
    expect(apiAuthFailureSchema.safeParse(rule).success).toBe(true);
  });

  it.each([
    ["an empty rule", {}],
    ["a json rule without equals or in", { json: [{ path: "error" }] }],
    ["an empty statuses list", { statuses: [] }],
    ["a status below 200", { statuses: [101] }],
    ["401, which always counts", { statuses: [401] }],
    ["an unknown key", { json: [{ path: "error", equals: "x", matches: ".*" }] }],
    ["a path with spaces", { json: [{ path: "a b", equals: "x" }] }],
    ["an empty path segment", { json: [{ path: "a..b", equals: "x" }] }],
    ["a path deeper than 16", { json: [{ path: Array(17).fill("a").join("."), equals: "x" }] }],
    ["an empty in list", { json: [{ path: "error", in: [] }] }],
  ])("refuses %s with invalid_provider naming the field", (_name, rule) => {
    let thrown: unknown;
    try {
      resolveProviderInput("x", { ...base, apiAuthFailure: rule as never });
    } catch (e) {
      thrown = e;
    }
    expect(isInvalidInputError(thrown)).toBe(true);
    expect(thrown).toMatchObject({ code: "invalid_provider" });
    expect((thrown as { fields: Array<{ path: string }> }).fields[0]!.path).toMatch(/^apiAuthFailure/);
  });
});
