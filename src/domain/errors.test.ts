import { describe, expect, it } from "vitest";
import {
  ERROR_DEFINITIONS,
  ERROR_KINDS,
  ErrorCode,
  fieldIssuesOf,
  GrantkeeperError,
  invalidInput,
  isConflictError,
  isGoneError,
  isGrantkeeperError,
  isInvalidInputError,
  isMalformedRequestError,
  isMethodNotAllowedError,
  isMisconfiguredError,
  isNotFoundError,
  isRateLimitedError,
  isTooLargeError,
  isUnauthorizedError,
  isUnavailableError,
  isUpstreamFailedError,
  isUpstreamTimeoutError,
  type ErrorKind,
} from "./errors.js";

const GUARDS: Record<ErrorKind, (e: unknown) => boolean> = {
  not_found: isNotFoundError,
  invalid_input: isInvalidInputError,
  malformed_request: isMalformedRequestError,
  unauthorized: isUnauthorizedError,
  conflict: isConflictError,
  gone: isGoneError,
  too_large: isTooLargeError,
  rate_limited: isRateLimitedError,
  unavailable: isUnavailableError,
  upstream_failed: isUpstreamFailedError,
  upstream_timeout: isUpstreamTimeoutError,
  misconfigured: isMisconfiguredError,
  method_not_allowed: isMethodNotAllowedError,
};

describe("ErrorCode and ERROR_DEFINITIONS", () => {
  it("define every code exactly once, each with a known kind and a title", () => {
    const codes = Object.values(ErrorCode);
    expect(new Set(codes).size).toBe(codes.length);
    expect(Object.keys(ERROR_DEFINITIONS).sort()).toEqual([...codes].sort());
    for (const code of codes) {
      expect(ERROR_KINDS).toContain(ERROR_DEFINITIONS[code].kind);
      expect(ERROR_DEFINITIONS[code].title.length).toBeGreaterThan(0);
    }
  });

  it("codes are snake_case strings clients can switch on", () => {
    for (const code of Object.values(ErrorCode)) expect(code).toMatch(/^[a-z]+(_[a-z0-9]+)*$/);
  });
});

describe("GrantkeeperError", () => {
  it("takes kind and title from the code's definition", () => {
    const e = new GrantkeeperError(ErrorCode.connectionNotFound, 'no connection "c1"');
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ name: "GrantkeeperError", code: "connection_not_found", kind: "not_found", title: "Connection not found", message: 'no connection "c1"' });
    expect(e.details).toEqual({});
    expect(e.fields).toBeUndefined();
    expect(e.retryAfterMs).toBeUndefined();
  });

  it("lets an occurrence override the kind (a provider named in a body is bad input, not a missing resource)", () => {
    const e = new GrantkeeperError(ErrorCode.providerNotFound, "no provider", { kind: "invalid_input" });
    expect(e.kind).toBe("invalid_input");
    expect(isInvalidInputError(e)).toBe(true);
    expect(isNotFoundError(e)).toBe(false);
  });

  it("carries typed fields: retryAfterMs, details, field issues", () => {
    const e = new GrantkeeperError(ErrorCode.refreshRateLimited, "later", { retryAfterMs: 4_000, details: { retryAfterSeconds: 4 }, fields: [{ path: "a", message: "b" }] });
    expect(e.retryAfterMs).toBe(4_000);
    expect(e.details).toEqual({ retryAfterSeconds: 4 });
    expect(e.fields).toEqual([{ path: "a", message: "b" }]);
  });

  it("keeps its cause out of enumeration, so a logged or serialized error never carries the underlying one", () => {
    const cause = Object.assign(new Error("raw provider body with a token"), { body: "access_token=secret" });
    const e = new GrantkeeperError(ErrorCode.codeExchangeFailed, "the provider did not issue a grant", { cause });
    expect(e.cause).toBe(cause);
    expect(Object.keys(e)).not.toContain("cause");
    expect(JSON.stringify(e)).not.toContain("secret");
  });

  it("leaves cause undefined when none is given", () => {
    expect(new GrantkeeperError(ErrorCode.jobNotFound, "x").cause).toBeUndefined();
  });
});

describe("isGrantkeeperError", () => {
  it("is true for a GrantkeeperError and narrows to a code when asked", () => {
    const e = new GrantkeeperError(ErrorCode.invalidSignature, "bad signature");
    expect(isGrantkeeperError(e)).toBe(true);
    expect(isGrantkeeperError(e, ErrorCode.invalidSignature)).toBe(true);
    expect(isGrantkeeperError(e, ErrorCode.payloadTooLarge)).toBe(false);
  });

  it("is true for an error made by another copy of the module (the brand is a global symbol)", () => {
    const foreign = Object.assign(new Error("x"), { code: "job_not_found", kind: "not_found" });
    Object.defineProperty(foreign, Symbol.for("grantkeeper.error"), { value: true });
    expect(isGrantkeeperError(foreign, ErrorCode.jobNotFound)).toBe(true);
    expect(isNotFoundError(foreign)).toBe(true);
  });

  it.each<[string, unknown]>([
    ["undefined", undefined],
    ["null", null],
    ["a string", "connection_not_found"],
    ["a plain Error", new Error("connection_not_found")],
    ["a look-alike without the brand", { name: "GrantkeeperError", code: "connection_not_found", kind: "not_found" }],
  ])("is false for %s", (_label, value) => {
    expect(isGrantkeeperError(value)).toBe(false);
    for (const guard of Object.values(GUARDS)) expect(guard(value)).toBe(false);
  });
});

describe("kind guards", () => {
  it.each(ERROR_KINDS.map((k) => [k] as const))("exactly one guard is true for an error of kind %s", (kind) => {
    const e = new GrantkeeperError(ErrorCode.validationFailed, "x", { kind });
    const trueGuards = Object.entries(GUARDS).filter(([, guard]) => guard(e)).map(([k]) => k);
    expect(trueGuards).toEqual([kind]);
  });

  it("has a guard for every kind", () => {
    expect(Object.keys(GUARDS).sort()).toEqual([...ERROR_KINDS].sort());
  });
});

describe("fieldIssuesOf and invalidInput", () => {
  it("joins paths with dots and names the whole value (root)", () => {
    expect(fieldIssuesOf([{ path: ["delivery", "url"], message: "Invalid URL" }, { path: [], message: "Expected object" }, { path: ["items", 0], message: "Required" }])).toEqual([
      { path: "delivery.url", message: "Invalid URL" },
      { path: "(root)", message: "Expected object" },
      { path: "items.0", message: "Required" },
    ]);
  });

  it("builds an invalid_input error whose message lists every issue", () => {
    const e = invalidInput([
      { path: "a", message: "Required" },
      { path: "b.c", message: "Too long" },
    ]);
    expect(e).toMatchObject({ code: "validation_failed", kind: "invalid_input", message: "a: Required; b.c: Too long" });
    expect(e.fields).toHaveLength(2);
  });

  it("keeps a more specific code when given one", () => {
    expect(invalidInput([{ path: "tokenEndpoint", message: "Invalid URL" }], ErrorCode.invalidProvider)).toMatchObject({ code: "invalid_provider", kind: "invalid_input" });
  });
});
