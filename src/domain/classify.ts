/**
 * Failure classification (design.md "Failure classification"): one pure
 * function from what a token endpoint call produced to a closed union.
 *
 * It reads the HTTP status and the RFC 6749 §5.2 `error` field only, never
 * free text in a body: the review of the Frigg fix showed what happens when
 * every refresh failure is treated as permanent (healthy integrations were
 * disabled during a provider's 5xx blip), and message matching is how that
 * kind of bug hides.
 */

/** What a refresh attempt produced, reduced to the facts the classifier may use. */
export type RefreshObservation =
  /** The token endpoint answered with a non-2xx status (or 2xx with an `error` body, rewritten by the provider adapter). */
  | {
      kind: "http";
      /** HTTP status code. */
      status: number;
      /** RFC 6749 §5.2 `error` code when the body was JSON with one. */
      error?: string;
      /** false when the body was not JSON (an HTML error page, say). */
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
export type PermanentGrantReason = "invalid_grant" | "not_refreshable" | "provider_override";
/** Reasons for a permanent failure of the provider's configuration (alert ops once per provider). */
export type PermanentProviderReason = "invalid_client" | "unauthorized_client" | "unsupported_grant_type" | "provider_override";
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
  | "provider_override";

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
 * Per-provider overrides, keyed by RFC 6749 §5.2 `error` code. A provider that
 * says `{"error":"bad_refresh_token"}` for a dead grant (GitHub) maps it to
 * `permanent` here. Overrides win over the default table.
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
 * | 400/401 with `error` = `invalid_grant` | permanent (grant) |
 * | `invalid_client`, `unauthorized_client`, `unsupported_grant_type` (any 4xx) | permanent (provider) |
 * | `not_refreshable` | permanent (grant), no provider call |
 * | network error, timeout, 5xx, 408, 429, non-JSON error page | transient |
 * | anything else (other 4xx, unknown `error`) | transient `unexpected_error` — never invalidate on what we do not understand |
 *
 * @param obs what happened
 * @param overrides provider overrides by `error` code (applied to 4xx/5xx JSON answers with an `error`)
 * @returns the verdict; never throws
 * @see RFC 6749 §5.2 (error response), design.md "Failure classification"
 */
export function classifyRefreshFailure(obs: RefreshObservation, overrides: ErrorClassOverrides = {}): Classification {
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
      return classifyHttp(obs, overrides);
  }
}

function classifyHttp(
  obs: Extract<RefreshObservation, { kind: "http" }>,
  overrides: ErrorClassOverrides,
): Classification {
  const { status, error } = obs;
  const retry = obs.retryAfterMs !== undefined ? { retryAfterMs: obs.retryAfterMs } : {};

  if (error !== undefined && obs.json && Object.hasOwn(overrides, error)) {
    switch (overrides[error]) {
      case "permanent":
        return { class: "permanent", scope: "grant", reason: "provider_override", code: error };
      case "provider":
        return { class: "permanent", scope: "provider", reason: "provider_override", code: error };
      default:
        return { class: "transient", reason: "provider_override", code: error, ...retry };
    }
  }
  if (status >= 500) return { class: "transient", reason: "server_error", code: `http_${status}`, ...retry };
  if (status === 429) return { class: "transient", reason: "rate_limited", code: "http_429", ...retry };
  if (status === 408) return { class: "transient", reason: "request_timeout", code: "http_408", ...retry };
  if (!obs.json) return { class: "transient", reason: "non_json_response", code: `http_${status}` };
  if (error === "invalid_grant" && (status === 400 || status === 401)) {
    return { class: "permanent", scope: "grant", reason: "invalid_grant", code: "invalid_grant" };
  }
  if (error !== undefined && status >= 400 && status < 500 && PROVIDER_LEVEL.has(error)) {
    return { class: "permanent", scope: "provider", reason: error as PermanentProviderReason, code: error };
  }
  return { class: "transient", reason: "unexpected_error", code: error ?? `http_${status}` };
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
