import { describe, expect, it } from "vitest";
import { classifyRefreshFailure, forClientCredentials, parseRetryAfter, type Classification, type ErrorClassOverrides, type PermanentProviderReason, type RefreshObservation } from "./classify.js";

/** A JSON error answer from the token endpoint. */
const json = (status: number, error?: string, retryAfterMs?: number): RefreshObservation => ({
  kind: "http",
  status,
  json: true,
  ...(error !== undefined ? { error } : {}),
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});
/** A non-JSON (HTML error page) answer. */
const html = (status: number, retryAfterMs?: number): RefreshObservation => ({
  kind: "http",
  status,
  json: false,
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});

interface Row {
  name: string;
  obs: RefreshObservation;
  overrides?: ErrorClassOverrides;
  expected: Classification;
}

const grantDead = { class: "permanent", scope: "grant", reason: "invalid_grant", code: "invalid_grant" } as const;

// design.md "Failure classification", every row, both sides of each threshold.
const defaultTable: Row[] = [
  // invalid_grant: permanent on 400/401 only
  { name: "400 invalid_grant → permanent grant", obs: json(400, "invalid_grant"), expected: grantDead },
  { name: "401 invalid_grant → permanent grant", obs: json(401, "invalid_grant"), expected: grantDead },
  { name: "403 invalid_grant → transient (not 400/401)", obs: json(403, "invalid_grant"), expected: { class: "transient", reason: "unexpected_error", code: "invalid_grant" } },
  { name: "500 invalid_grant → transient server_error", obs: json(500, "invalid_grant"), expected: { class: "transient", reason: "server_error", code: "http_500" } },

  // provider-level configuration errors
  ...(["invalid_client", "unauthorized_client", "unsupported_grant_type"] as const).flatMap((error) =>
    [400, 401].map((status) => ({
      name: `${status} ${error} → permanent provider`,
      obs: json(status, error),
      expected: { class: "permanent", scope: "provider", reason: error, code: error } as const,
    })),
  ),

  // not refreshable: permanent without a provider call
  { name: "not_refreshable → permanent grant", obs: { kind: "not_refreshable" }, expected: { class: "permanent", scope: "grant", reason: "not_refreshable", code: "not_refreshable" } },

  // no HTTP answer
  { name: "network error → transient", obs: { kind: "network" }, expected: { class: "transient", reason: "network", code: "network_error" } },
  { name: "timeout → transient", obs: { kind: "timeout" }, expected: { class: "transient", reason: "timeout", code: "timeout" } },

  // 5xx (both ends of the range) and the status just below it
  ...[500, 502, 503, 599].map((status) => ({
    name: `${status} → transient server_error`,
    obs: json(status),
    expected: { class: "transient", reason: "server_error", code: `http_${status}` } as const,
  })),
  { name: "499 → transient but NOT server_error", obs: json(499), expected: { class: "transient", reason: "unexpected_error", code: "http_499" } },

  // 408 / 429
  { name: "408 → transient request_timeout", obs: json(408), expected: { class: "transient", reason: "request_timeout", code: "http_408" } },
  { name: "429 with Retry-After → transient, retryAfterMs kept", obs: json(429, undefined, 30_000), expected: { class: "transient", reason: "rate_limited", code: "http_429", retryAfterMs: 30_000 } },
  { name: "429 without Retry-After → transient, no retryAfterMs", obs: json(429), expected: { class: "transient", reason: "rate_limited", code: "http_429" } },
  { name: "503 with Retry-After → transient server_error, retryAfterMs kept", obs: json(503, undefined, 120_000), expected: { class: "transient", reason: "server_error", code: "http_503", retryAfterMs: 120_000 } },

  // HTML / non-JSON error pages
  { name: "HTML 400 → transient non_json_response", obs: html(400), expected: { class: "transient", reason: "non_json_response", code: "http_400" } },
  { name: "HTML 401 → transient non_json_response (never invalidate on a page we cannot read)", obs: html(401), expected: { class: "transient", reason: "non_json_response", code: "http_401" } },
  { name: "HTML 500 → transient server_error", obs: html(500), expected: { class: "transient", reason: "server_error", code: "http_500" } },

  // JSON errors we do not understand: never invalidate
  { name: "400 invalid_request → transient unexpected_error", obs: json(400, "invalid_request"), expected: { class: "transient", reason: "unexpected_error", code: "invalid_request" } },
  { name: "400 invalid_scope → transient unexpected_error", obs: json(400, "invalid_scope"), expected: { class: "transient", reason: "unexpected_error", code: "invalid_scope" } },
  { name: "400 unknown error code → transient unexpected_error", obs: json(400, "something_new"), expected: { class: "transient", reason: "unexpected_error", code: "something_new" } },
  { name: "400 JSON without error field → transient unexpected_error", obs: json(400), expected: { class: "transient", reason: "unexpected_error", code: "http_400" } },
  { name: "400 error named like an Object.prototype key → transient unexpected_error", obs: json(400, "constructor"), expected: { class: "transient", reason: "unexpected_error", code: "constructor" } },

  // 2xx that is not a token response
  { name: "invalid_response → transient", obs: { kind: "invalid_response" }, expected: { class: "transient", reason: "invalid_response", code: "invalid_token_response" } },
];

const overrideTable: Row[] = [
  {
    name: "{bad_refresh_token: permanent}: 400 bad_refresh_token → permanent grant",
    obs: json(400, "bad_refresh_token"),
    overrides: { bad_refresh_token: "permanent" },
    expected: { class: "permanent", scope: "grant", reason: "provider_override", code: "bad_refresh_token" },
  },
  {
    name: "without the override, 400 bad_refresh_token stays transient",
    obs: json(400, "bad_refresh_token"),
    overrides: {},
    expected: { class: "transient", reason: "unexpected_error", code: "bad_refresh_token" },
  },
  {
    name: "{incorrect_client_credentials: provider} → permanent provider",
    obs: json(400, "incorrect_client_credentials"),
    overrides: { incorrect_client_credentials: "provider" },
    expected: { class: "permanent", scope: "provider", reason: "provider_override", code: "incorrect_client_credentials" },
  },
  {
    name: "{invalid_grant: transient} overrides the default",
    obs: json(400, "invalid_grant"),
    overrides: { invalid_grant: "transient" },
    expected: { class: "transient", reason: "provider_override", code: "invalid_grant" },
  },
  {
    name: "a transient override keeps Retry-After",
    obs: json(429, "ratelimited", 10_000),
    overrides: { ratelimited: "transient" },
    expected: { class: "transient", reason: "provider_override", code: "ratelimited", retryAfterMs: 10_000 },
  },
  {
    name: "an override for another code does not change the default",
    obs: json(400, "invalid_grant"),
    overrides: { bad_refresh_token: "transient" },
    expected: grantDead,
  },
  {
    name: "an override does not apply to a non-JSON body",
    obs: { kind: "http", status: 400, json: false, error: "bad_refresh_token" },
    overrides: { bad_refresh_token: "permanent" },
    expected: { class: "transient", reason: "non_json_response", code: "http_400" },
  },
];

/** An answer with `WWW-Authenticate` challenges (and a JSON body when `error` is given). */
const challenged = (status: number, challenges: Array<{ scheme: string; error?: string }>, body?: { error?: string }): RefreshObservation => ({
  kind: "http",
  status,
  json: body !== undefined,
  challenges,
  ...(body?.error !== undefined ? { error: body.error } : {}),
});
/** A 2xx JSON body with an `error` (GitHub, Slack). */
const ok200 = (error: string): RefreshObservation => ({ kind: "http", status: 200, json: true, error });

const providerDown = (error: PermanentProviderReason) => ({ class: "permanent", scope: "provider", reason: error, code: error }) as const;

// Shapes with a WWW-Authenticate challenge, a 2xx error body, or structured provider codes.
const challengeTable: Row[] = [
  {
    name: "401 + Basic challenge error=invalid_client + JSON invalid_client (oidc-provider, RFC 6749 §5.2) → permanent provider",
    obs: challenged(401, [{ scheme: "basic", error: "invalid_client" }], { error: "invalid_client" }),
    expected: providerDown("invalid_client"),
  },
  {
    name: "401 + Basic challenge without error, JSON invalid_client → permanent provider",
    obs: challenged(401, [{ scheme: "basic" }], { error: "invalid_client" }),
    expected: providerDown("invalid_client"),
  },
  {
    name: "401 + Basic realm challenge, no body → permanent provider invalid_client (client authentication failed)",
    obs: challenged(401, [{ scheme: "basic" }]),
    expected: providerDown("invalid_client"),
  },
  {
    name: "401 + Basic challenge error=invalid_client, HTML body → permanent provider (the header is structured)",
    obs: { kind: "http", status: 401, json: false, challenges: [{ scheme: "basic", error: "invalid_client" }] },
    expected: providerDown("invalid_client"),
  },
  {
    name: "401 + Bearer challenge error=invalid_grant, no body → permanent grant",
    obs: challenged(401, [{ scheme: "bearer", error: "invalid_grant" }]),
    expected: grantDead,
  },
  {
    name: "401 + Bearer challenge without error, no body → transient (not client authentication)",
    obs: challenged(401, [{ scheme: "bearer" }]),
    expected: { class: "transient", reason: "non_json_response", code: "http_401" },
  },
  {
    name: "401 + Bearer challenge error=invalid_token → transient unexpected_error (a resource-server code at a token endpoint)",
    obs: challenged(401, [{ scheme: "bearer", error: "invalid_token" }]),
    expected: { class: "transient", reason: "unexpected_error", code: "invalid_token" },
  },
  {
    name: "the body's error wins over the challenge's",
    obs: challenged(401, [{ scheme: "basic", error: "invalid_request" }], { error: "invalid_client" }),
    expected: providerDown("invalid_client"),
  },
  {
    name: "503 + Basic challenge → transient server_error (5xx is never permanent)",
    obs: challenged(503, [{ scheme: "basic" }]),
    expected: { class: "transient", reason: "server_error", code: "http_503" },
  },
  {
    name: "403 + Basic challenge, no error → transient (only 401 means client authentication failed)",
    obs: challenged(403, [{ scheme: "basic" }]),
    expected: { class: "transient", reason: "non_json_response", code: "http_403" },
  },
  { name: "200 {error: invalid_grant} → permanent grant", obs: ok200("invalid_grant"), expected: grantDead },
  { name: "200 {error: invalid_client} → permanent provider", obs: ok200("invalid_client"), expected: providerDown("invalid_client") },
  { name: "200 {error: bad_refresh_token} without an override → transient", obs: ok200("bad_refresh_token"), expected: { class: "transient", reason: "unexpected_error", code: "bad_refresh_token" } },
];

const aadsts = (error: string, codes: string[], status = 400): RefreshObservation => ({ kind: "http", status, json: true, error, providerCodes: codes });
const microsoft: ErrorClassOverrides = { AADSTS70008: "permanent", AADSTS50196: "transient", AADSTS7000215: "provider" };

const providerCodeTable: Array<Row & { codeClasses?: ErrorClassOverrides }> = [
  { name: "invalid_grant + AADSTS70008 listed permanent → permanent grant, code AADSTS70008", obs: aadsts("invalid_grant", ["AADSTS70008"]), codeClasses: microsoft, expected: { class: "permanent", scope: "grant", reason: "provider_code", code: "AADSTS70008" } },
  { name: "invalid_grant + AADSTS50196 listed transient → transient, although invalid_grant", obs: aadsts("invalid_grant", ["AADSTS50196"]), codeClasses: microsoft, expected: { class: "transient", reason: "provider_code", code: "AADSTS50196" } },
  { name: "invalid_client + AADSTS7000215 listed provider → permanent provider", obs: aadsts("invalid_client", ["AADSTS7000215"], 401), codeClasses: microsoft, expected: { class: "permanent", scope: "provider", reason: "provider_code", code: "AADSTS7000215" } },
  { name: "an unlisted code falls back to the error: invalid_grant + AADSTS99999 → permanent grant", obs: aadsts("invalid_grant", ["AADSTS99999"]), codeClasses: microsoft, expected: grantDead },
  { name: "the first listed code of several decides", obs: aadsts("invalid_grant", ["AADSTS99999", "AADSTS50196", "AADSTS70008"]), codeClasses: microsoft, expected: { class: "transient", reason: "provider_code", code: "AADSTS50196" } },
  { name: "codes without codeClasses change nothing", obs: aadsts("invalid_grant", ["AADSTS50196"]), expected: grantDead },
  { name: "a code named like an Object.prototype key is not a class", obs: aadsts("invalid_grant", ["constructor"]), codeClasses: microsoft, expected: grantDead },
  { name: "a provider code beats an error override", obs: aadsts("invalid_grant", ["AADSTS50196"]), overrides: { invalid_grant: "provider" }, codeClasses: microsoft, expected: { class: "transient", reason: "provider_code", code: "AADSTS50196" } },
];

describe("classifyRefreshFailure", () => {
  it.each(defaultTable)("$name", ({ obs, overrides, expected }) => {
    expect(classifyRefreshFailure(obs, overrides)).toStrictEqual(expected);
  });

  it.each(overrideTable)("override: $name", ({ obs, overrides, expected }) => {
    expect(classifyRefreshFailure(obs, overrides)).toStrictEqual(expected);
  });

  it.each(challengeTable)("challenge / 2xx body: $name", ({ obs, overrides, expected }) => {
    expect(classifyRefreshFailure(obs, overrides)).toStrictEqual(expected);
  });

  it.each(providerCodeTable)("provider code: $name", ({ obs, overrides, codeClasses, expected }) => {
    expect(classifyRefreshFailure(obs, overrides, codeClasses)).toStrictEqual(expected);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.UTC(2026, 0, 1, 0, 0, 0); // Thu, 01 Jan 2026 00:00:00 GMT

  it("reads delay-seconds as milliseconds", () => {
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(" 120 ", now)).toBe(120_000);
    expect(parseRetryAfter("0", now)).toBe(0);
  });

  it("reads a future HTTP-date as the time left relative to the injected now", () => {
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:02:00 GMT", now)).toBe(120_000);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:02:00 GMT", now + 60_000)).toBe(60_000);
  });

  it("reads a past HTTP-date (or now) as 0", () => {
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:59:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:00 GMT", now)).toBe(0);
  });

  it.each([
    ["empty", ""],
    ["blank", "   "],
    ["null", null],
    ["undefined", undefined],
    ["a word", "soon"],
    ["seconds with a unit", "120s"],
    ["a negative number", "-5"],
    ["a fractional number", "1.5"],
    ["free text that happens to contain a year", "Retry in 2099"],
  ])("is undefined for %s", (_label, value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe("forClientCredentials", () => {
  const verdicts: Array<[string, Classification, Classification]> = [
    ["invalid_grant becomes provider-level", { class: "permanent", scope: "grant", reason: "invalid_grant", code: "invalid_grant" }, { class: "permanent", scope: "provider", reason: "invalid_grant", code: "invalid_grant" }],
    ["an override to permanent becomes provider-level", { class: "permanent", scope: "grant", reason: "provider_override", code: "bad_refresh_token" }, { class: "permanent", scope: "provider", reason: "provider_override", code: "bad_refresh_token" }],
    ["a provider code stays with its code", { class: "permanent", scope: "grant", reason: "provider_code", code: "AADSTS70008" }, { class: "permanent", scope: "provider", reason: "provider_code", code: "AADSTS70008" }],
    ["invalid_client stays as it is", { class: "permanent", scope: "provider", reason: "invalid_client", code: "invalid_client" }, { class: "permanent", scope: "provider", reason: "invalid_client", code: "invalid_client" }],
    ["a transient failure stays transient", { class: "transient", reason: "server_error", code: "http_503", retryAfterMs: 1000 }, { class: "transient", reason: "server_error", code: "http_503", retryAfterMs: 1000 }],
  ];
  it.each(verdicts)("%s", (_label, verdict, expected) => {
    expect(forClientCredentials(verdict)).toEqual(expected);
  });
});
