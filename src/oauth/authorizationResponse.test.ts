import { describe, expect, it } from "vitest";
import { isGrantkeeperError } from "../domain/errors.js";
import { resolveProviderInput } from "../providers/catalogue.js";
import { authorizationErrorCode, callbackState, validateAuthorizationResponse } from "./authorizationResponse.js";

const ISSUER = "https://auth.example.com";
const withIssuer = resolveProviderInput("acme", { issuer: ISSUER, authorizationEndpoint: `${ISSUER}/authorize`, tokenEndpoint: `${ISSUER}/token`, clientId: "c" });
const withoutIssuer = resolveProviderInput("plain", { authorizationEndpoint: `${ISSUER}/authorize`, tokenEndpoint: `${ISSUER}/token`, clientId: "c" });

/** The `invalid_callback` details thrown by `fn` (fails when it does not throw one). */
function refusal(fn: () => unknown): Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    if (isGrantkeeperError(e, "invalid_callback")) {
      expect(e).toMatchObject({ kind: "malformed_request", code: "invalid_callback" });
      return { ...e.details };
    }
    throw e;
  }
  throw new Error("no invalid_callback was thrown");
}

const q = (s: string) => new URLSearchParams(s);

describe("callbackState (checks that need no stored state)", () => {
  it("returns the state of a well-formed callback", () => {
    expect(callbackState(q("code=c&state=s&iss=x"))).toBe("s");
  });

  it.each([
    ["code=a&code=b&state=s", "code"],
    ["code=a&state=s&state=s", "state"],
    ["code=a&state=s&iss=x&iss=x", "iss"],
    ["code=a&state=s&foo=1&foo=2", "foo"],
    ["code=a&state=s&state=", "state"],
  ])("refuses %s: a parameter more than once (RFC 6749 §3.1)", (query, parameter) => {
    expect(refusal(() => callbackState(q(query)))).toEqual({ reason: "repeated_parameter", parameter });
  });

  it.each(["code=a", "code=a&state=", ""])("refuses %j without a state", (query) => {
    expect(refusal(() => callbackState(q(query)))).toEqual({ reason: "missing_state" });
  });
});

describe("validateAuthorizationResponse (oauth4webapi)", () => {
  it("accepts a code with the right state and issuer, or no iss at all", () => {
    expect(validateAuthorizationResponse(withIssuer, q(`code=abc&state=s&iss=${encodeURIComponent(ISSUER)}`), "s").get("code")).toBe("abc");
    expect(validateAuthorizationResponse(withIssuer, q("code=abc&state=s"), "s").get("code")).toBe("abc");
  });

  it("ignores iss for a provider without a configured issuer (nothing to compare it with)", () => {
    expect(validateAuthorizationResponse(withoutIssuer, q("code=abc&state=s&iss=https%3A%2F%2Fanything.example"), "s").get("code")).toBe("abc");
  });

  it("refuses another issuer (RFC 9207), another state, no code", () => {
    expect(refusal(() => validateAuthorizationResponse(withIssuer, q("code=abc&state=s&iss=https%3A%2F%2Fevil.example"), "s"))).toEqual({ reason: "issuer_mismatch" });
    expect(refusal(() => validateAuthorizationResponse(withIssuer, q("code=abc&state=t"), "s"))).toEqual({ reason: "invalid_response" });
    expect(refusal(() => validateAuthorizationResponse(withIssuer, q("state=s"), "s"))).toEqual({ reason: "missing_code" });
  });

  it("refuses implicit and hybrid responses and JARM", () => {
    for (const extra of ["id_token=x", "token=x", "response=x"]) {
      expect(refusal(() => validateAuthorizationResponse(withIssuer, q(`code=abc&state=s&${extra}`), "s"))).toEqual({ reason: "invalid_response" });
    }
  });

  it("refuses an error response (RFC 6749 §4.1.2.1), naming only a registered error code", () => {
    expect(refusal(() => validateAuthorizationResponse(withIssuer, q("error=access_denied&error_description=no&state=s"), "s"))).toEqual({ reason: "authorization_error", providerError: "access_denied" });
    expect(refusal(() => validateAuthorizationResponse(withIssuer, q("error=%3Cscript%3E&state=s"), "s"))).toEqual({ reason: "authorization_error", providerError: "other" });
  });

  it("authorizationErrorCode keeps registered codes and turns anything else into other", () => {
    expect(authorizationErrorCode("invalid_scope")).toBe("invalid_scope");
    expect(authorizationErrorCode("consent_required")).toBe("consent_required");
    expect(authorizationErrorCode("Access Denied")).toBe("other");
    expect(authorizationErrorCode(null)).toBe("other");
  });
});
