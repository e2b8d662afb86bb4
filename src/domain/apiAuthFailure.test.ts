import { describe, expect, it } from "vitest";
import { isApiAuthFailure, needsJsonBody, valueAtPath, type ApiAuthFailureRule } from "./apiAuthFailure.js";

/** Slack's Web API: HTTP 200 and `ok:false` with an error code (https://api.slack.com/web#evaluating_responses). */
const slack: ApiAuthFailureRule = { json: [{ path: "error", in: ["token_expired", "invalid_auth", "token_revoked", "not_authed"] }] };
/** A GraphQL API: errors in a 200 body. */
const graphql: ApiAuthFailureRule = { json: [{ path: "errors.0.extensions.code", equals: "UNAUTHENTICATED" }] };
/** An API whose 403 means an expired token only with a given code. */
const both: ApiAuthFailureRule = { statuses: [403], json: [{ path: "code", equals: "token_expired" }] };

describe("isApiAuthFailure", () => {
  it.each<[string, number, unknown, ApiAuthFailureRule | undefined, boolean]>([
    ["a 401 without a rule", 401, undefined, undefined, true],
    ["a 401 whatever the rule", 401, { ok: true }, slack, true],
    ["a 200 without a rule", 200, { ok: false, error: "token_expired" }, undefined, false],
    ["a 403 without a rule", 403, undefined, undefined, false],
    ["Slack 200 ok:false token_expired", 200, { ok: false, error: "token_expired" }, slack, true],
    ["Slack 200 ok:false invalid_auth", 200, { ok: false, error: "invalid_auth" }, slack, true],
    ["Slack 200 ok:false channel_not_found (not about the token)", 200, { ok: false, error: "channel_not_found" }, slack, false],
    ["Slack 200 ok:true", 200, { ok: true }, slack, false],
    ["Slack with the body not read", 200, undefined, slack, false],
    ["Slack: a non-string error is not in a string list", 200, { error: ["token_expired"] }, slack, false],
    ["GraphQL UNAUTHENTICATED in errors[0]", 200, { errors: [{ extensions: { code: "UNAUTHENTICATED" } }] }, graphql, true],
    ["GraphQL another code", 200, { errors: [{ extensions: { code: "FORBIDDEN" } }] }, graphql, false],
    ["GraphQL no errors", 200, { data: {} }, graphql, false],
    ["statuses only: listed", 403, undefined, { statuses: [403] }, true],
    ["statuses only: not listed", 404, undefined, { statuses: [403] }, false],
    ["both: status and json", 403, { code: "token_expired" }, both, true],
    ["both: status without json match", 403, { code: "insufficient_scope" }, both, false],
    ["both: json match on another status", 200, { code: "token_expired" }, both, false],
    ["equals false (a JSON boolean)", 200, { ok: false }, { json: [{ path: "ok", equals: false }] }, true],
    ["equals null", 200, { token: null }, { json: [{ path: "token", equals: null }] }, true],
    ["a missing path is never null", 200, {}, { json: [{ path: "token", equals: null }] }, false],
    ["equals and in must both hold", 200, { e: "a" }, { json: [{ path: "e", equals: "a", in: ["b"] }] }, false],
    ["any rule of several", 200, { b: "x" }, { json: [{ path: "a", equals: "x" }, { path: "b", equals: "x" }] }, true],
  ])("%s", (_name, status, json, rule, expected) => {
    expect(isApiAuthFailure(status, json, rule)).toBe(expected);
  });
});

describe("needsJsonBody", () => {
  it.each<[number, ApiAuthFailureRule | undefined, boolean]>([
    [401, slack, false],
    [200, undefined, false],
    [200, { statuses: [403] }, false],
    [200, slack, true],
    [500, slack, true],
    [403, both, true],
    [200, both, false],
  ])("status %i → %s", (status, rule, expected) => {
    expect(needsJsonBody(status, rule)).toBe(expected);
  });
});

describe("valueAtPath", () => {
  it("walks objects and arrays, and never a prototype", () => {
    expect(valueAtPath({ a: { b: [1, { c: "x" }] } }, "a.b.1.c")).toBe("x");
    expect(valueAtPath({ a: [1] }, "a.01")).toBeUndefined();
    expect(valueAtPath({ a: [1] }, "a.length")).toBeUndefined();
    expect(valueAtPath({}, "constructor")).toBeUndefined();
    expect(valueAtPath({}, "__proto__")).toBeUndefined();
    expect(valueAtPath("text", "length")).toBeUndefined();
    expect(valueAtPath({ a: 1 }, Array(17).fill("a").join("."))).toBeUndefined();
  });
});
