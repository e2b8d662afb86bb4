/**
 * Token endpoint calls (RFC 6749 §4.1.3 code exchange, §6 refresh) and
 * revocation (RFC 7009), thin over panva's oauth4webapi. This module turns
 * every outcome into either a {@link TokenSet} or a {@link TokenEndpointError}
 * carrying a {@link RefreshObservation} — the only facts the classifier reads.
 */
import * as oauth from "oauth4webapi";
import { timeout, TimeoutStrategy, TaskCancelledError } from "cockatiel";
import { parseRetryAfter, type ChallengeObservation, type RefreshObservation } from "../domain/classify.js";
import { ErrorCode, GrantkeeperError, isGrantkeeperError } from "../domain/errors.js";
import { configFromTokenResponse } from "../providers/connectionConfig.js";
import { isLoopbackUrl, type ProviderDefinition } from "../providers/definition.js";

/** The parts of a token response grantkeeper keeps. */
export interface TokenSet {
  accessToken: string;
  /** `token_type`, normalized to "Bearer" casing when it is bearer. */
  tokenType: string;
  /** Absent when the provider did not issue (or rotate) one. */
  refreshToken?: string;
  /** `expires_in` in seconds, absent when the provider did not send it. */
  expiresInSeconds?: number;
  scope?: string;
  /** The fields the provider names in `tokenResponseConfig` (Salesforce `instance_url`), for the connection's `connectionConfig`. */
  connectionConfig?: Record<string, string>;
}

/** Everything a call needs besides its own arguments. */
export interface TokenEndpointContext {
  /** The provider with its endpoints resolved for the connection (`forTokenCalls`): no `{placeholder}` left in them. */
  provider: ProviderDefinition;
  /** Decrypted client secret, when the auth method needs one. */
  clientSecret: string | undefined;
  /** The fetch to use (injected; tests and the proxy share one). */
  fetch: typeof fetch;
  /** Per-call timeout in milliseconds (`refresh.timeoutSeconds`). */
  timeoutMs: number;
  /** Current time in milliseconds since the epoch, for `Retry-After` dates. */
  nowMs: number;
}

/**
 * A failed token endpoint call (RFC 6749 §5.2), reduced to its observation: a
 * {@link GrantkeeperError} with code `token_endpoint_error`, kind
 * `upstream_timeout` for a call that timed out and `upstream_failed` otherwise.
 * The refresher and the connect flow classify `observation` and turn it into
 * their own outcome; it reaches a caller only if something forgot to.
 * The message holds the status and the RFC 6749 `error` code, never a body.
 */
export class TokenEndpointError extends GrantkeeperError {
  /**
   * @param observation the facts the classifier reads (src/domain/classify.ts)
   * @param message status and `error` code only
   */
  constructor(
    readonly observation: RefreshObservation,
    message: string,
  ) {
    super(ErrorCode.tokenEndpointError, message, observation.kind === "timeout" ? { kind: "upstream_timeout" } : {});
    this.name = "TokenEndpointError";
  }
}

/** True for a {@link TokenEndpointError}, whichever copy of the module made it. */
export function isTokenEndpointError(e: unknown): e is TokenEndpointError {
  return isGrantkeeperError(e, ErrorCode.tokenEndpointError);
}

/** oauth4webapi's view of a provider's authorization server (also used to validate authorization responses). */
export function authServer(p: ProviderDefinition): oauth.AuthorizationServer {
  return {
    // Without a configured issuer there is no ID token validation to do: grantkeeper
    // manages grants, not identity, so id_tokens are dropped (see stripIdToken).
    issuer: p.issuer ?? new URL(p.tokenEndpoint).origin,
    ...(p.authorizationEndpoint ? { authorization_endpoint: p.authorizationEndpoint } : {}),
    token_endpoint: p.tokenEndpoint,
    ...(p.revocationEndpoint ? { revocation_endpoint: p.revocationEndpoint } : {}),
  };
}

function clientAuth(p: ProviderDefinition, secret: string | undefined): oauth.ClientAuth {
  switch (p.tokenEndpointAuthMethod) {
    case "client_secret_basic":
      return oauth.ClientSecretBasic(secret ?? "");
    case "client_secret_post":
      return oauth.ClientSecretPost(secret ?? "");
    case "none":
      return oauth.None();
  }
}

interface Recorded {
  /** The request itself failed (DNS, refused, reset, aborted): no HTTP answer. */
  transportError?: boolean;
  /** The status as the provider sent it (a 2xx error body keeps its 2xx here). */
  status?: number;
  retryAfter?: string | null;
  contentType?: string | null;
  /**
   * The JSON body of an answer with a `WWW-Authenticate` challenge. oauth4webapi stops at the
   * challenge without reading the body, and the body cannot be read after the call's timeout
   * policy ends (its abort signal tears the stream down), so it is read here, during the call.
   */
  challengeBody?: Record<string, unknown>;
}

/**
 * A fetch wrapper that records the raw status and applies provider quirks
 * before oauth4webapi parses the answer:
 * - `errorsWithStatus200`: a 200 whose JSON has an `error` is handed to oauth4webapi as a 400 so it
 *   parses the error (GitHub, Slack); the recorded status stays 200;
 * - no configured `issuer`: `id_token` is removed from token responses.
 */
function quirkFetch(ctx: TokenEndpointContext, rec: Recorded): typeof fetch {
  return async (input, init) => {
    let res: Response;
    try {
      res = await ctx.fetch(input, { ...init, redirect: "manual" });
    } catch (e) {
      rec.transportError = true;
      throw e;
    }
    rec.status = res.status;
    rec.retryAfter = res.headers.get("retry-after");
    rec.contentType = res.headers.get("content-type");
    const isJson = (rec.contentType ?? "").includes("json");
    if (res.headers.has("www-authenticate") && (res.status < 200 || res.status > 299)) {
      const text = await res.text().catch(() => "");
      rec.challengeBody = isJson ? jsonObjectOf(text) : undefined;
      return new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
    }
    const needsRewrite = isJson && res.status === 200 && (ctx.provider.quirks.errorsWithStatus200 || ctx.provider.issuer === undefined);
    if (!needsRewrite) return res;
    const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (body === undefined || typeof body !== "object" || body === null) {
      return new Response("not json", { status: 200, headers: { "content-type": "text/plain" } });
    }
    let status = 200;
    if (ctx.provider.quirks.errorsWithStatus200 && typeof body.error === "string") status = 400;
    if (ctx.provider.issuer === undefined) delete body.id_token;
    return new Response(JSON.stringify(body), { status, headers: res.headers });
  };
}

function requestOptions(ctx: TokenEndpointContext, rec: Recorded, signal: AbortSignal) {
  return {
    [oauth.customFetch]: quirkFetch(ctx, rec),
    // http is only ever accepted for loopback endpoints (validated in the provider definition).
    [oauth.allowInsecureRequests]: isLoopbackUrl(ctx.provider.tokenEndpoint),
    signal,
  };
}

/** The provider's `tokenRequestParams` (Shopify `expiring=1`), sent with every grant request. */
function grantOptions(ctx: TokenEndpointContext, rec: Recorded, signal: AbortSignal) {
  return { ...requestOptions(ctx, rec, signal), ...(ctx.provider.tokenRequestParams ? { additionalParameters: ctx.provider.tokenRequestParams } : {}) };
}

/** Structured provider codes of an error body (`providerErrorCodes`: Microsoft `error_codes: [70008]` → `AADSTS70008`). */
function providerCodesOf(body: unknown, provider: ProviderDefinition): string[] | undefined {
  const spec = provider.providerErrorCodes;
  if (spec === undefined || typeof body !== "object" || body === null) return undefined;
  const raw = (body as Record<string, unknown>)[spec.field];
  const values = (Array.isArray(raw) ? raw : [raw]).filter((v): v is string | number => (typeof v === "string" && v !== "") || (typeof v === "number" && Number.isFinite(v)));
  // Bounded: a body is the provider's to fill, the verdict's code is ours to keep small.
  const codes = values.slice(0, 10).map((v) => `${spec.prefix ?? ""}${v}`.slice(0, 64));
  return codes.length > 0 ? codes : undefined;
}

/** The challenges oauth4webapi parsed from `WWW-Authenticate`, with their `error` parameter only. */
function challengesOf(e: oauth.WWWAuthenticateChallengeError): ChallengeObservation[] {
  return e.cause.map((c) => ({ scheme: c.scheme.toLowerCase(), ...(typeof c.parameters.error === "string" && c.parameters.error !== "" ? { error: c.parameters.error } : {}) }));
}

/** A JSON object parsed from text, or undefined. */
function jsonObjectOf(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function describe(status: number, error: string | undefined, codes: string[] | undefined, json: boolean): string {
  return `token endpoint answered ${status}${error ? ` ${error}` : ""}${codes ? ` (${codes.join(", ")})` : ""}${json || error ? "" : " (not JSON)"}`;
}

async function toObservation(e: unknown, rec: Recorded, ctx: TokenEndpointContext): Promise<{ obs: RefreshObservation; message: string }> {
  const retryAfterMs = parseRetryAfter(rec.retryAfter, ctx.nowMs);
  const retry = retryAfterMs !== undefined ? { retryAfterMs } : {};
  // The timeout covers the whole call, reading the body included: an answer whose headers came but whose body was
  // still trickling in is a timeout too (its status alone is not the answer), and says so for the operator.
  if (e instanceof TaskCancelledError) {
    const message = rec.status !== undefined ? `token endpoint answered ${rec.status} but its body did not arrive in time` : "token endpoint did not answer in time";
    return { obs: { kind: "timeout" }, message };
  }
  if (e instanceof oauth.WWWAuthenticateChallengeError) {
    const challenges = challengesOf(e);
    const body = rec.challengeBody;
    const error = typeof body?.error === "string" && body.error !== "" ? body.error : undefined;
    const codes = providerCodesOf(body, ctx.provider);
    const status = rec.status ?? e.status;
    return {
      obs: { kind: "http", status, json: body !== undefined, challenges, ...(error ? { error } : {}), ...(codes ? { providerCodes: codes } : {}), ...retry },
      message: describe(status, error ?? challenges.find((c) => c.error)?.error, codes, body !== undefined),
    };
  }
  if (e instanceof oauth.ResponseBodyError) {
    const codes = providerCodesOf(e.cause, ctx.provider);
    const status = rec.status ?? e.status;
    return { obs: { kind: "http", status, error: e.error, json: true, ...(codes ? { providerCodes: codes } : {}), ...retry }, message: describe(status, e.error, codes, true) };
  }
  if (rec.status !== undefined && (rec.status < 200 || rec.status > 299)) {
    const json = (rec.contentType ?? "").includes("json");
    return { obs: { kind: "http", status: rec.status, json, ...retry }, message: describe(rec.status, undefined, undefined, json) };
  }
  if (rec.status !== undefined) return { obs: { kind: "invalid_response" }, message: "token endpoint answered 2xx without a usable token response" };
  const name = (e as { name?: string })?.name;
  if (name === "AbortError" || name === "TimeoutError") return { obs: { kind: "timeout" }, message: "token endpoint call aborted" };
  // Anything that is neither an HTTP answer nor a failed request is a bug of ours: let it surface.
  if (!rec.transportError) throw e;
  return { obs: { kind: "network" }, message: `token endpoint unreachable (${(e as { cause?: { code?: string } })?.cause?.code ?? name ?? "network error"})` };
}

async function call(
  ctx: TokenEndpointContext,
  run: (opts: ReturnType<typeof grantOptions>) => Promise<oauth.TokenEndpointResponse>,
): Promise<TokenSet> {
  const rec: Recorded = {};
  const policy = timeout(ctx.timeoutMs, TimeoutStrategy.Aggressive);
  let res: oauth.TokenEndpointResponse;
  try {
    res = await policy.execute(({ signal }) => run(grantOptions(ctx, rec, signal)));
  } catch (e) {
    const { obs, message } = await toObservation(e, rec, ctx);
    throw new TokenEndpointError(obs, message);
  }
  if (typeof res.access_token !== "string" || res.access_token === "") {
    throw new TokenEndpointError({ kind: "invalid_response" }, "token response without access_token");
  }
  return {
    accessToken: res.access_token,
    tokenType: res.token_type?.toLowerCase() === "bearer" ? "Bearer" : (res.token_type ?? "Bearer"),
    ...(typeof res.refresh_token === "string" && res.refresh_token !== "" ? { refreshToken: res.refresh_token } : {}),
    ...(typeof res.expires_in === "number" && Number.isFinite(res.expires_in) ? { expiresInSeconds: res.expires_in } : {}),
    ...(typeof res.scope === "string" ? { scope: res.scope } : {}),
    ...configOf(res, ctx.provider),
  };
}

function configOf(res: oauth.TokenEndpointResponse, provider: ProviderDefinition): { connectionConfig?: Record<string, string> } {
  const config = configFromTokenResponse(res as Record<string, unknown>, provider.tokenResponseConfig);
  return Object.keys(config).length > 0 ? { connectionConfig: config } : {};
}

/**
 * Refresh an access token (RFC 6749 §6).
 * @throws {@link TokenEndpointError} with the observation to classify
 * @see RFC 6749 §6, §5.2
 */
export async function refreshGrant(ctx: TokenEndpointContext, refreshToken: string): Promise<TokenSet> {
  const as = authServer(ctx.provider);
  const client: oauth.Client = { client_id: ctx.provider.clientId };
  return call(ctx, async (opts) => {
    const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth(ctx.provider, ctx.clientSecret), refreshToken, opts);
    return oauth.processRefreshTokenResponse(as, client, response);
  });
}

/**
 * Obtain a token with the client's own credentials (RFC 6749 §4.4): no user,
 * no refresh token — the same call renews it.
 * @param scopes scopes to ask for; none sends no `scope` (the provider's default)
 * @throws {@link TokenEndpointError} with the observation to classify
 * @see RFC 6749 §4.4.2, §5.2
 */
export async function clientCredentialsGrant(ctx: TokenEndpointContext, scopes: readonly string[]): Promise<TokenSet> {
  const as = authServer(ctx.provider);
  const client: oauth.Client = { client_id: ctx.provider.clientId };
  return call(ctx, async (opts) => {
    const { additionalParameters, ...rest } = opts as typeof opts & { additionalParameters?: Record<string, string> };
    const params = new URLSearchParams(additionalParameters);
    if (scopes.length > 0) params.set("scope", scopes.join(ctx.provider.scopeSeparator));
    const response = await oauth.clientCredentialsGrantRequest(as, client, clientAuth(ctx.provider, ctx.clientSecret), params, rest);
    return oauth.processClientCredentialsResponse(as, client, response);
  });
}

/**
 * Exchange an authorization code with its PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5).
 * @param validated the callback's parameters as `validateAuthorizationResponse` (./authorizationResponse.ts) returned them
 * @throws {@link TokenEndpointError}
 */
export async function exchangeCode(ctx: TokenEndpointContext, validated: URLSearchParams, redirectUri: string, codeVerifier: string): Promise<TokenSet> {
  const as = authServer(ctx.provider);
  const client: oauth.Client = { client_id: ctx.provider.clientId };
  return call(ctx, async (opts) => {
    const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth(ctx.provider, ctx.clientSecret), validated, redirectUri, codeVerifier, opts);
    return oauth.processAuthorizationCodeResponse(as, client, response);
  });
}

/**
 * Revoke a token at the provider's revocation endpoint (RFC 7009 §2.1).
 * A no-op when the provider has none.
 * @returns true when a revocation request was accepted
 * @throws {@link TokenEndpointError} when the endpoint fails
 */
export async function revokeToken(ctx: TokenEndpointContext, token: string, hint: "refresh_token" | "access_token"): Promise<boolean> {
  if (!ctx.provider.revocationEndpoint) return false;
  const as = authServer(ctx.provider);
  const client: oauth.Client = { client_id: ctx.provider.clientId };
  const rec: Recorded = {};
  const policy = timeout(ctx.timeoutMs, TimeoutStrategy.Aggressive);
  try {
    await policy.execute(async ({ signal }) => {
      const response = await oauth.revocationRequest(as, client, clientAuth(ctx.provider, ctx.clientSecret), token, {
        ...requestOptions(ctx, rec, signal),
        additionalParameters: { token_type_hint: hint },
      });
      await oauth.processRevocationResponse(response);
    });
    return true;
  } catch (e) {
    const { obs, message } = await toObservation(e, rec, ctx);
    throw new TokenEndpointError(obs, message);
  }
}
