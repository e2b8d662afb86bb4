/**
 * Failure classification (design.md "Failure classification"): one pure
 * function from what a token endpoint call produced to a closed union.
 *
 * It reads structured facts only — the HTTP status, the RFC 6749 §5.2
 * `error` field, the `WWW-Authenticate` challenge's parameters (RFC 6750 §3
 * style `error="…"`) and a provider's structured error codes (Microsoft's
 * `error_codes`) — never free text in a body: the review of the Frigg fix
 * showed what happens when every refresh failure is treated as permanent
 * (healthy integrations were disabled during a provider's 5xx blip), and
 * message matching is how that kind of bug hides. The challenge matters: an
 * authorization server answers a wrong `client_secret_basic` with `401` and
 * `WWW-Authenticate: Basic …` (RFC 6749 §5.2 says MUST), and oauth4webapi
 * raises a `WWWAuthenticateChallengeError` for it instead of a
 * `ResponseBodyError` — read as a bare `http_401` it was transient and alerted
 * once per connection (issue 12).
 */

/**
 * One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1), as
 * oauth4webapi parses it: the scheme (lower-cased) and the RFC 6750 §3 style
 * `error` parameter when it has one.
 */
export interface ChallengeObservation {
  /** Auth scheme, lower-cased (`basic`, `bearer`, `dpop`, …). */
  scheme: string;
  /** The challenge's `error="…"` parameter (RFC 6750 §3; oidc-provider puts RFC 6749 §5.2 codes here too). */
  error?: string;
}

/** What a refresh attempt produced, reduced to the facts the classifier may use. */
export type RefreshObservation =
  /**
   * The token endpoint answered with an error: a non-2xx status, or a 2xx
   * whose JSON body carries an `error` (GitHub, Slack: `status` stays 2xx).
   */
  | {
      kind: "http";
      /** HTTP status code, as sent. */
      status: number;
      /** RFC 6749 §5.2 `error` code when the body was JSON with one. */
      error?: string;
      /**
       * The `WWW-Authenticate` challenges of the answer. RFC 6749 §5.2: a server MUST
       * answer `invalid_client` to `client_secret_basic` with 401 and a challenge.
       */
      challenges?: ChallengeObservation[];
      /**
       * Structured provider error codes from the JSON body, as named by the provider's
       * `providerErrorCodes.field` and prefixed (Microsoft `error_codes: [70008]` → `AADSTS70008`).
       */
      providerCodes?: string[];
      /** false when the body was not JSON (an HTML error page, an empty body). */
      json: boolean;
      /** Parsed `Retry-After`, in milliseconds, when the response had one. */
      retryAfterMs?: number;
    }
  /** No HTTP answer: DNS, refused, reset, TLS. */
  | { kind: "network" }
  /** No answer within `refresh.timeoutSeconds`. */
  | { kind: "timeout" }
  /** The access token is expired and there is no refresh token: nothing can be called. */
  | { kind: "not_refreshable" }
  /** A 2xx answer that is not a usable token response (missing access_token, bad JSON). */
  | { kind: "invalid_response" };

/** Reasons for a permanent failure of one grant. */
export type PermanentGrantReason = "invalid_grant" | "not_refreshable" | "provider_override" | "provider_code";
/**
 * Reasons for a permanent failure of the provider's configuration (alert ops once per provider).
 * A client-credentials connection's grant-level reasons land here too ({@link forClientCredentials}).
 */
export type PermanentProviderReason =
  | "invalid_client"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "provider_override"
  | "provider_code"
  /** A provider URL has a `{placeholder}` the connection's `connectionConfig` has no value for: no call was made. */
  | "connection_config"
  | PermanentGrantReason;
/** Reasons for a transient failure. */
export type TransientReason =
  | "network"
  | "timeout"
  | "server_error"
  | "rate_limited"
  | "request_timeout"
  | "non_json_response"
  | "invalid_response"
  | "unexpected_error"
  | "provider_override"
  | "provider_code";

/**
 * The classifier's verdict.
 * - `permanent` + `scope: "grant"`: the grant is dead until the user re-authorizes.
 * - `permanent` + `scope: "provider"`: the client configuration is wrong; the grant may be fine.
 * - `transient`: try again later (`retryAfterMs` when the provider said when, in milliseconds).
 */
export type Classification =
  | { class: "permanent"; scope: "grant"; reason: PermanentGrantReason; code: string }
  | { class: "permanent"; scope: "provider"; reason: PermanentProviderReason; code: string }
  | { class: "transient"; reason: TransientReason; code: string; retryAfterMs?: number };

/**
 * Per-provider overrides, keyed by RFC 6749 §5.2 `error` code (or, for
 * {@link classifyRefreshFailure}'s `codeClasses`, by provider error code such
 * as `AADSTS70008`). A provider that says `{"error":"bad_refresh_token"}` for a
 * dead grant (GitHub) maps it to `permanent` here. Overrides win over the default table.
 */
export type ErrorClassOverrides = Readonly<Record<string, ErrorClassOverride>>;

/**
 * What an override says an `error` code means: `permanent` (the grant is
 * dead), `provider` (permanent, but the client configuration is wrong — the
 * grant may be fine, so it is not invalidated), or `transient`.
 */
export type ErrorClassOverride = "permanent" | "provider" | "transient";

const PROVIDER_LEVEL: ReadonlySet<string> = new Set(["invalid_client", "unauthorized_client", "unsupported_grant_type"]);

/**
 * Classify one refresh outcome.
 *
 * | observation | class |
 * |---|---|
 * | a provider error code (`providerCodes`) listed in `codeClasses` | as listed (reason `provider_code`, code = the provider code) |
 * | an `error` (body, else the `WWW-Authenticate` challenge's `error`) listed in `overrides` | as listed (reason `provider_override`) |
 * | 5xx, 429, 408 | transient (`Retry-After` kept) |
 * | 400/401 (or a 2xx error body) with `error` = `invalid_grant` | permanent (grant) |
 * | `invalid_client`, `unauthorized_client`, `unsupported_grant_type` (4xx or 2xx error body) | permanent (provider) |
 * | 401 with a `Basic` challenge and no `error` anywhere (RFC 6749 §5.2: client authentication failed) | permanent (provider), `invalid_client` |
 * | `not_refreshable` | permanent (grant), no provider call |
 * | network error, timeout, non-JSON error page without a challenge `error` | transient |
 * | anything else (other 4xx, unknown `error`) | transient `unexpected_error` — never invalidate on what we do not understand |
 *
 * Only structured fields are read — the status, the RFC 6749 §5.2 `error`,
 * the challenge's parameters, a provider's structured codes — never
 * `error_description` or any other free text.
 *
 * @param obs what happened
 * @param overrides provider overrides by `error` code
 * @param codeClasses provider overrides by structured provider code (`providerErrorCodes.classes`, e.g. `{"AADSTS70008": "permanent"}`)
 * @returns the verdict; never throws
 * @see RFC 6749 §5.2 (error response), RFC 6750 §3 (`WWW-Authenticate` error parameter), design.md "Failure classification"
 */
export function classifyRefreshFailure(obs: RefreshObservation, overrides: ErrorClassOverrides = {}, codeClasses: ErrorClassOverrides = {}): Classification {
  switch (obs.kind) {
    case "network":
      return { class: "transient", reason: "network", code: "network_error" };
    case "timeout":
      return { class: "transient", reason: "timeout", code: "timeout" };
    case "not_refreshable":
      return { class: "permanent", scope: "grant", reason: "not_refreshable", code: "not_refreshable" };
    case "invalid_response":
      return { class: "transient", reason: "invalid_response", code: "invalid_token_response" };
    case "http":
      return classifyHttp(obs, overrides, codeClasses);
  }
}

function fromOverride(cls: ErrorClassOverride, reason: "provider_override" | "provider_code", code: string, retry: { retryAfterMs?: number }): Classification {
  switch (cls) {
    case "permanent":
      return { class: "permanent", scope: "grant", reason, code };
    case "provider":
      return { class: "permanent", scope: "provider", reason, code };
    default:
      return { class: "transient", reason, code, ...retry };
  }
}

function classifyHttp(obs: Extract<RefreshObservation, { kind: "http" }>, overrides: ErrorClassOverrides, codeClasses: ErrorClassOverrides): Classification {
  const { status } = obs;
  const retry = obs.retryAfterMs !== undefined ? { retryAfterMs: obs.retryAfterMs } : {};
  const challengeError = obs.challenges?.find((c) => c.error !== undefined)?.error;
  // The body's `error` is read only from JSON; a challenge parameter is a structured header, read whatever the body is.
  const error = (obs.json ? obs.error : undefined) ?? challengeError;

  if (obs.json) {
    const code = obs.providerCodes?.find((c) => Object.hasOwn(codeClasses, c));
    if (code !== undefined) return fromOverride(codeClasses[code]!, "provider_code", code, retry);
  }
  if (error !== undefined && Object.hasOwn(overrides, error)) return fromOverride(overrides[error]!, "provider_override", error, retry);
  if (status >= 500) return { class: "transient", reason: "server_error", code: `http_${status}`, ...retry };
  if (status === 429) return { class: "transient", reason: "rate_limited", code: "http_429", ...retry };
  if (status === 408) return { class: "transient", reason: "request_timeout", code: "http_408", ...retry };
  // RFC 6749 §5.2 says 400 (401 for client authentication); GitHub and Slack send the same codes with a 2xx.
  const errorStatus = status === 400 || status === 401 || (status >= 200 && status < 300);
  if (error === undefined) {
    // A 401 with a Basic challenge is the token endpoint refusing the client's credentials (RFC 6749 §5.2).
    if (status === 401 && obs.challenges?.some((c) => c.scheme === "basic")) {
      return { class: "permanent", scope: "provider", reason: "invalid_client", code: "invalid_client" };
    }
    if (!obs.json) return { class: "transient", reason: "non_json_response", code: `http_${status}` };
    return { class: "transient", reason: "unexpected_error", code: `http_${status}` };
  }
  if (error === "invalid_grant" && errorStatus) return { class: "permanent", scope: "grant", reason: "invalid_grant", code: "invalid_grant" };
  if (PROVIDER_LEVEL.has(error) && (errorStatus || (status >= 400 && status < 500))) {
    return { class: "permanent", scope: "provider", reason: error as PermanentProviderReason, code: error };
  }
  return { class: "transient", reason: "unexpected_error", code: error };
}

/**
 * The verdict for a client-credentials connection (RFC 6749 §4.4). There is
 * no user grant that could die and no user who could reconnect: whatever the
 * token endpoint refuses is the client's configuration (its credentials, its
 * allowed scopes), so a grant-level verdict becomes provider-level — the
 * connection stays usable (`degraded`), ops are alerted once per provider,
 * and it is retried at once when the provider is redefined. It never turns
 * `error` for lack of a refresh token.
 */
export function forClientCredentials(verdict: Classification): Classification {
  if (verdict.class !== "permanent" || verdict.scope !== "grant") return verdict;
  return { class: "permanent", scope: "provider", reason: verdict.reason, code: verdict.code };
}

/**
 * Parse an HTTP `Retry-After` header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date
 * (IMF-fixdate, RFC 9110 §5.6.7).
 * @param value the header value
 * @param nowMs current time, milliseconds since the Unix epoch (for the HTTP-date form)
 * @returns the delay in milliseconds (≥ 0), or undefined when absent or unparseable
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value == null) return undefined;
  const trimmed = value.trim();
  if (/^\d{1,10}$/.test(trimmed)) return Number(trimmed) * 1000;
  // Only the HTTP-date form (IMF-fixdate) is a date: Date.parse reads free text like "Retry in 2099" as a year.
  if (!IMF_FIXDATE.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
