/**
 * Every shape of token-endpoint failure a real authorization server sends,
 * through the real adapter (oauth4webapi + our customFetch quirks) and the
 * classifier: status, headers and body as the server writes them, not as an
 * observation we would find convenient. Live oidc-provider shapes are checked
 * again in test/e2e/classification.integration.test.ts.
 */
import { describe, expect, it } from "vitest";
import { classifyRefreshFailure, type Classification, type PermanentProviderReason } from "../domain/classify.js";
import { resolveProviderInput } from "../providers/catalogue.js";
import type { ProviderDefinition, ProviderInput } from "../providers/definition.js";
import { clientCredentialsGrant, isTokenEndpointError, refreshGrant } from "./tokenEndpoint.js";

interface Shape {
  name: string;
  status: number;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string as it is (with its own content-type header, if any). */
  body?: unknown;
  provider?: Partial<ProviderInput>;
  expected: Classification;
}

const base: ProviderInput = { clientId: "client", clientSecret: "secret", authorizationEndpoint: "https://as.example.com/authorize", tokenEndpoint: "https://as.example.com/token" };

function providerOf(extra: Partial<ProviderInput> = {}): ProviderDefinition {
  return resolveProviderInput("p", { ...base, ...extra });
}

function answer(s: Shape): Response {
  const json = typeof s.body === "object" && s.body !== null;
  const headers = new Headers(s.headers);
  if (json && !headers.has("content-type")) headers.set("content-type", "application/json;charset=utf-8");
  return new Response(s.body === undefined ? null : json ? JSON.stringify(s.body) : (s.body as string), { status: s.status, headers });
}

async function classify(s: Shape): Promise<Classification> {
  const provider = providerOf(s.provider);
  try {
    await refreshGrant({ provider, clientSecret: "secret", fetch: async () => answer(s), timeoutMs: 5_000, nowMs: Date.UTC(2026, 0, 1) }, "rt");
  } catch (e) {
    if (!isTokenEndpointError(e)) throw e;
    return classifyRefreshFailure(e.observation, provider.errorClassOverrides, provider.providerErrorCodes?.classes);
  }
  throw new Error("the token endpoint call succeeded");
}

const provider = (code: PermanentProviderReason) => ({ class: "permanent", scope: "provider", reason: code, code }) as const;
const grantDead = { class: "permanent", scope: "grant", reason: "invalid_grant", code: "invalid_grant" } as const;

const microsoftCodes = { field: "error_codes", prefix: "AADSTS", classes: { AADSTS70008: "permanent", AADSTS50196: "transient", AADSTS7000215: "provider" } } as const;

const shapes: Shape[] = [
  {
    name: "oidc-provider, wrong client_secret_basic: 401 + Basic challenge + JSON invalid_client",
    status: 401,
    headers: { "www-authenticate": 'Basic realm="http://127.0.0.1:4000", error="invalid_client", error_description="client authentication failed"' },
    body: { error: "invalid_client", error_description: "client authentication failed" },
    expected: provider("invalid_client"),
  },
  {
    name: "RFC 6749 §5.2 minimal: 401 + WWW-Authenticate: Basic realm, no body",
    status: 401,
    headers: { "www-authenticate": 'Basic realm="token"' },
    expected: provider("invalid_client"),
  },
  {
    name: "401 + Basic challenge, HTML body (a gateway's login page)",
    status: 401,
    headers: { "www-authenticate": 'Basic realm="gateway"', "content-type": "text/html" },
    body: "<html><body>Unauthorized</body></html>",
    expected: provider("invalid_client"),
  },
  {
    name: "401 JSON invalid_client without a challenge (client_secret_post, Google)",
    status: 401,
    body: { error: "invalid_client", error_description: "Unauthorized" },
    expected: provider("invalid_client"),
  },
  {
    name: "client_secret_post, wrong secret: 400 JSON invalid_client (Salesforce, Keycloak: no challenge, 400 not 401)",
    status: 400,
    body: { error: "invalid_client", error_description: "invalid client credentials" },
    expected: provider("invalid_client"),
  },
  {
    name: "401 + Basic challenge + JSON unauthorized_client (the client may not use refresh tokens)",
    status: 401,
    headers: { "www-authenticate": 'Basic realm="token"' },
    body: { error: "unauthorized_client" },
    expected: provider("unauthorized_client"),
  },
  {
    name: "401 + Basic challenge error=invalid_client, text/plain body",
    status: 401,
    headers: { "www-authenticate": 'Basic realm="token", error="invalid_client"', "content-type": "text/plain" },
    body: "Unauthorized",
    expected: provider("invalid_client"),
  },
  {
    name: "Keycloak: 401 JSON unauthorized_client",
    status: 401,
    body: { error: "unauthorized_client", error_description: "Invalid client or Invalid client credentials" },
    expected: provider("unauthorized_client"),
  },
  {
    name: "400 unsupported_grant_type",
    status: 400,
    body: { error: "unsupported_grant_type" },
    expected: provider("unsupported_grant_type"),
  },
  {
    name: "oidc-provider, consumed or revoked refresh token: 400 invalid_grant",
    status: 400,
    body: { error: "invalid_grant", error_description: "grant request is invalid" },
    expected: grantDead,
  },
  {
    name: "Google: 400 invalid_grant 'Token has been expired or revoked.'",
    status: 400,
    body: { error: "invalid_grant", error_description: "Token has been expired or revoked." },
    expected: grantDead,
  },
  {
    name: "401 + Bearer challenge error=invalid_grant, no body",
    status: 401,
    headers: { "www-authenticate": 'Bearer error="invalid_grant"' },
    expected: grantDead,
  },
  {
    name: "GitHub: 200 bad_refresh_token (errorsWithStatus200, override permanent)",
    status: 200,
    body: { error: "bad_refresh_token", error_description: "The refresh token passed is incorrect or expired.", error_uri: "https://docs.github.com" },
    provider: { quirks: { errorsWithStatus200: true }, errorClassOverrides: { bad_refresh_token: "permanent", incorrect_client_credentials: "provider" } },
    expected: { class: "permanent", scope: "grant", reason: "provider_override", code: "bad_refresh_token" },
  },
  {
    name: "GitHub: 200 incorrect_client_credentials (override provider)",
    status: 200,
    body: { error: "incorrect_client_credentials", error_description: "The client_id and/or client_secret passed are incorrect." },
    provider: { quirks: { errorsWithStatus200: true }, errorClassOverrides: { incorrect_client_credentials: "provider" } },
    expected: { class: "permanent", scope: "provider", reason: "provider_override", code: "incorrect_client_credentials" },
  },
  {
    name: "Slack: 200 {ok:false, error:invalid_refresh_token}",
    status: 200,
    body: { ok: false, error: "invalid_refresh_token" },
    provider: { quirks: { errorsWithStatus200: true }, errorClassOverrides: { invalid_refresh_token: "permanent" } },
    expected: { class: "permanent", scope: "grant", reason: "provider_override", code: "invalid_refresh_token" },
  },
  {
    name: "a 200 error body at a provider not known to send them: not a token response, transient",
    status: 200,
    body: { error: "invalid_grant" },
    expected: { class: "transient", reason: "invalid_response", code: "invalid_token_response" },
  },
  {
    name: "Microsoft: 400 invalid_grant with error_codes [70008] (refresh token expired)",
    status: 400,
    body: { error: "invalid_grant", error_description: "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.", error_codes: [70008], trace_id: "t", correlation_id: "c" },
    provider: { providerErrorCodes: microsoftCodes },
    expected: { class: "permanent", scope: "grant", reason: "provider_code", code: "AADSTS70008" },
  },
  {
    name: "Microsoft: 400 invalid_grant with error_codes [50196] (request loop) → transient",
    status: 400,
    body: { error: "invalid_grant", error_description: "AADSTS50196: The server terminated an operation because it encountered a client request loop.", error_codes: [50196] },
    provider: { providerErrorCodes: microsoftCodes },
    expected: { class: "transient", reason: "provider_code", code: "AADSTS50196" },
  },
  {
    name: "Microsoft: 401 invalid_client with error_codes [7000215] (wrong secret)",
    status: 401,
    body: { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret provided.", error_codes: [7000215] },
    provider: { providerErrorCodes: microsoftCodes },
    expected: { class: "permanent", scope: "provider", reason: "provider_code", code: "AADSTS7000215" },
  },
  {
    name: "Microsoft: an AADSTS number only in error_description is never read",
    status: 400,
    body: { error: "invalid_request", error_description: "AADSTS70008: looks permanent, but only the text says so" },
    provider: { providerErrorCodes: microsoftCodes },
    expected: { class: "transient", reason: "unexpected_error", code: "invalid_request" },
  },
  {
    name: "nginx: 502 HTML",
    status: 502,
    headers: { "content-type": "text/html" },
    body: "<html><head><title>502 Bad Gateway</title></head></html>",
    expected: { class: "transient", reason: "server_error", code: "http_502" },
  },
  {
    name: "503 JSON temporarily_unavailable with Retry-After",
    status: 503,
    headers: { "retry-after": "120" },
    body: { error: "temporarily_unavailable" },
    expected: { class: "transient", reason: "server_error", code: "http_503", retryAfterMs: 120_000 },
  },
  {
    name: "429 with Retry-After, text body",
    status: 429,
    headers: { "retry-after": "30", "content-type": "text/plain" },
    body: "slow down",
    expected: { class: "transient", reason: "rate_limited", code: "http_429", retryAfterMs: 30_000 },
  },
  {
    name: "401 + Bearer challenge error=invalid_token (an API gateway in front)",
    status: 401,
    headers: { "www-authenticate": 'Bearer realm="api", error="invalid_token"' },
    expected: { class: "transient", reason: "unexpected_error", code: "invalid_token" },
  },
  {
    name: "400 with no body and no content type",
    status: 400,
    expected: { class: "transient", reason: "non_json_response", code: "http_400" },
  },
  {
    name: "400 JSON without error",
    status: 400,
    body: { message: "bad" },
    expected: { class: "transient", reason: "unexpected_error", code: "http_400" },
  },
  {
    name: "400 invalid_scope (the grant may be fine)",
    status: 400,
    body: { error: "invalid_scope" },
    expected: { class: "transient", reason: "unexpected_error", code: "invalid_scope" },
  },
];

describe("token endpoint failure shapes → classification", () => {
  it.each(shapes)("$name", async (s) => {
    expect(await classify(s)).toStrictEqual(s.expected);
  });

  it("keeps the status as sent for a 2xx error body, and names the challenge and codes in the message", async () => {
    const provider = providerOf({ quirks: { errorsWithStatus200: true }, providerErrorCodes: microsoftCodes });
    const run = (s: Shape) => refreshGrant({ provider, clientSecret: "secret", fetch: async () => answer(s), timeoutMs: 5_000, nowMs: 0 }, "rt").catch((e: unknown) => e);
    const gh = (await run({ name: "", status: 200, body: { error: "bad_refresh_token" }, expected: grantDead })) as { observation: unknown; message: string };
    expect(gh.observation).toMatchObject({ kind: "http", status: 200, error: "bad_refresh_token", json: true });
    const basic = (await run({ name: "", status: 401, headers: { "www-authenticate": 'Basic realm="x", error="invalid_client"' }, expected: grantDead })) as { observation: unknown; message: string };
    expect(basic.observation).toStrictEqual({ kind: "http", status: 401, json: false, challenges: [{ scheme: "basic", error: "invalid_client" }] });
    expect(basic.message).toBe("token endpoint answered 401 invalid_client");
    const ms = (await run({ name: "", status: 400, body: { error: "invalid_grant", error_codes: [70008, 9002313] }, expected: grantDead })) as { message: string };
    expect(ms.message).toBe("token endpoint answered 400 invalid_grant (AADSTS70008, AADSTS9002313)");
  });
});

describe("what a grant request sends and keeps", () => {
  async function capture(provider: ProviderDefinition, call: (fetchImpl: typeof fetch) => Promise<unknown>, reply: Record<string, unknown>) {
    const seen: Array<{ url: string; body: URLSearchParams; authorization: string | null }> = [];
    const fetchImpl: typeof fetch = async (input, init) => {
      seen.push({ url: String(input instanceof Request ? input.url : input), body: new URLSearchParams(String(init?.body ?? "")), authorization: new Headers(init?.headers).get("authorization") });
      return new Response(JSON.stringify(reply), { status: 200, headers: { "content-type": "application/json" } });
    };
    const result = await call(fetchImpl);
    return { seen, result, provider };
  }

  it("a client-credentials request sends grant_type, the scopes and the provider's tokenRequestParams, with client authentication", async () => {
    const provider = providerOf({ grantType: "client_credentials", authorizationEndpoint: undefined, scopes: ["a", "b"], tokenRequestParams: { audience: "https://api.example.com" } });
    const { seen, result } = await capture(provider, (f) => clientCredentialsGrant({ provider, clientSecret: "secret", fetch: f, timeoutMs: 5_000, nowMs: 0 }, ["a", "b"]), { access_token: "cc-at", token_type: "bearer", expires_in: 3600 });
    expect(seen[0]!.body.get("grant_type")).toBe("client_credentials");
    expect(seen[0]!.body.get("scope")).toBe("a b");
    expect(seen[0]!.body.get("audience")).toBe("https://api.example.com");
    expect(seen[0]!.authorization).toMatch(/^Basic /);
    expect(result).toEqual({ accessToken: "cc-at", tokenType: "Bearer", expiresInSeconds: 3600 });
  });

  it("a refresh sends the tokenRequestParams too, and keeps the tokenResponseConfig fields (never tokens)", async () => {
    const provider = providerOf({ tokenRequestParams: { expires_in: "1800" }, tokenResponseConfig: ["instance_url", "id"] });
    const reply = { access_token: "at", token_type: "Bearer", refresh_token: "rt2", instance_url: "https://acme.my.salesforce.com", id: "https://login.example.com/id/1", signature: "x" };
    const { seen, result } = await capture(provider, (f) => refreshGrant({ provider, clientSecret: "secret", fetch: f, timeoutMs: 5_000, nowMs: 0 }, "rt"), reply);
    expect(seen[0]!.body.get("grant_type")).toBe("refresh_token");
    expect(seen[0]!.body.get("expires_in")).toBe("1800");
    expect(result).toMatchObject({ accessToken: "at", refreshToken: "rt2", connectionConfig: { instance_url: "https://acme.my.salesforce.com", id: "https://login.example.com/id/1" } });
  });

  it("refuses tokenRequestParams that would set credentials or the grant", () => {
    expect(() => providerOf({ tokenRequestParams: { client_secret: "x" } })).toThrow();
    expect(() => providerOf({ tokenRequestParams: { grant_type: "password" } })).toThrow();
  });

  it("refuses a tokenResponseConfig naming a token", () => {
    expect(() => providerOf({ tokenResponseConfig: ["refresh_token"] })).toThrow();
  });
});
