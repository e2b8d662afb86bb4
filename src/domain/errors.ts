/**
 * The errors grantkeeper's core throws to its callers — library users and the
 * HTTP edge alike. One class, {@link GrantkeeperError}, with a stable `code`
 * from {@link ErrorCode}, the `kind` of failure (what a caller can do about
 * it) and typed, log-safe fields. The HTTP edge (`src/http/problem.ts`) maps
 * kinds to RFC 9457 statuses in one place; nothing here knows about HTTP.
 *
 * Modelled on cockatiel's `errors/Errors.ts` (a guard per kind, so code does
 * not depend on `instanceof` across module copies) and oauth4webapi's
 * `ResponseBodyError` (typed fields; nothing secret in the message).
 */

/**
 * What kind of failure an error is, i.e. what the caller can do about it.
 * - `not_found`: the named thing does not exist;
 * - `invalid_input`: the request is well-formed but not acceptable (fix it and retry);
 * - `malformed_request`: the request cannot be read at all;
 * - `unauthorized`: a credential (API key, connect link, signature) is missing or wrong;
 * - `conflict`: the current state does not allow it (e.g. the grant is dead);
 * - `gone`: it existed and can never be used again (a consumed connect link);
 * - `too_large`: a body over a configured limit;
 * - `rate_limited`: allowed later (`retryAfterMs`);
 * - `unavailable`: temporarily impossible (`retryAfterMs`), nothing is wrong with the request;
 * - `upstream_failed`: a provider or consumer answered with a failure;
 * - `upstream_timeout`: a provider or consumer did not answer in time;
 * - `misconfigured`: grantkeeper's own configuration is wrong (an operator must fix it);
 * - `method_not_allowed`: the method is not accepted there (`details.allow` lists the ones that are).
 */
export const ERROR_KINDS = [
  "not_found",
  "invalid_input",
  "malformed_request",
  "unauthorized",
  "conflict",
  "gone",
  "too_large",
  "rate_limited",
  "unavailable",
  "upstream_failed",
  "upstream_timeout",
  "misconfigured",
  "method_not_allowed",
] as const;

/** One of {@link ERROR_KINDS}. */
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Stable codes of {@link GrantkeeperError}. Clients switch on these, never on messages. */
export const ErrorCode = {
  connectionNotFound: "connection_not_found",
  connectionError: "connection_error",
  connectionDegraded: "connection_degraded",
  refreshRateLimited: "refresh_rate_limited",
  tokenUnavailable: "token_unavailable",
  providerNotFound: "provider_not_found",
  invalidProvider: "invalid_provider",
  unknownTemplate: "unknown_template",
  connectionConfigMissing: "connection_config_missing",
  invalidConnectionConfig: "invalid_connection_config",
  grantTypeMismatch: "grant_type_mismatch",
  tokenRequestFailed: "token_request_failed",
  integrationNotFound: "integration_not_found",
  integrationNotEnabled: "integration_not_enabled",
  jobNotFound: "job_not_found",
  validationFailed: "validation_failed",
  invalidReturnTo: "invalid_return_to",
  invalidState: "invalid_state",
  invalidCallback: "invalid_callback",
  codeExchangeFailed: "code_exchange_failed",
  invalidConnectToken: "invalid_connect_token",
  connectLinkUsed: "connect_link_used",
  connectLinkExpired: "connect_link_expired",
  stateNotBound: "state_not_bound",
  payloadTooLarge: "payload_too_large",
  invalidSignature: "invalid_signature",
  signingMisconfigured: "signing_misconfigured",
  invalidIdempotencyKey: "invalid_idempotency_key",
  webhookSigningNotConfigured: "webhook_signing_not_configured",
  integrationOutboundOnly: "integration_outbound_only",
  invalidConfig: "invalid_config",
  invalidDatabaseUrl: "invalid_database_url",
  invalidEncryptionKey: "invalid_encryption_key",
  decryptionFailed: "decryption_failed",
  tokenEndpointError: "token_endpoint_error",
  invalidProxyPath: "invalid_proxy_path",
  noApiBaseUrl: "no_api_base_url",
  methodNotAllowed: "method_not_allowed",
  upstreamTimeout: "upstream_timeout",
  upstreamUnreachable: "upstream_unreachable",
  storeUnavailable: "store_unavailable",
} as const;

/** One of the values of {@link ErrorCode}. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The default kind and the human title (the same for every occurrence) of each code. */
export const ERROR_DEFINITIONS: Readonly<Record<ErrorCodeValue, { kind: ErrorKind; title: string }>> = Object.freeze({
  connection_not_found: { kind: "not_found", title: "Connection not found" },
  connection_error: { kind: "conflict", title: "Connection needs re-authorization" },
  connection_degraded: { kind: "conflict", title: "State owned by grantkeeper" },
  refresh_rate_limited: { kind: "rate_limited", title: "Refresh rate limited" },
  token_unavailable: { kind: "unavailable", title: "Access token temporarily unavailable" },
  provider_not_found: { kind: "not_found", title: "Provider not found" },
  invalid_provider: { kind: "invalid_input", title: "Invalid provider definition" },
  unknown_template: { kind: "invalid_input", title: "Unknown provider template" },
  connection_config_missing: { kind: "invalid_input", title: "Connection setting missing" },
  invalid_connection_config: { kind: "invalid_input", title: "Invalid connection setting" },
  grant_type_mismatch: { kind: "invalid_input", title: "Not possible with this provider's grant type" },
  token_request_failed: { kind: "upstream_failed", title: "The provider did not issue a token" },
  integration_not_found: { kind: "not_found", title: "Integration not found" },
  integration_not_enabled: { kind: "conflict", title: "Integration is not enabled" },
  job_not_found: { kind: "not_found", title: "Job not found" },
  validation_failed: { kind: "invalid_input", title: "Request validation failed" },
  invalid_return_to: { kind: "invalid_input", title: "returnTo is not allowed" },
  invalid_state: { kind: "malformed_request", title: "Invalid state" },
  invalid_callback: { kind: "malformed_request", title: "Invalid callback" },
  code_exchange_failed: { kind: "upstream_failed", title: "The provider did not issue a grant" },
  invalid_connect_token: { kind: "unauthorized", title: "Invalid connect link" },
  connect_link_used: { kind: "gone", title: "Connect link already used" },
  connect_link_expired: { kind: "gone", title: "Connect link expired" },
  state_not_bound: { kind: "malformed_request", title: "State not bound to this browser" },
  payload_too_large: { kind: "too_large", title: "Payload too large" },
  invalid_signature: { kind: "unauthorized", title: "Invalid webhook signature" },
  signing_misconfigured: { kind: "misconfigured", title: "Webhook signing is misconfigured" },
  invalid_idempotency_key: { kind: "malformed_request", title: "Invalid idempotency key" },
  webhook_signing_not_configured: { kind: "unauthorized", title: "Webhook signing not configured" },
  integration_outbound_only: { kind: "conflict", title: "Integration is outbound only" },
  invalid_config: { kind: "misconfigured", title: "Invalid configuration" },
  invalid_database_url: { kind: "misconfigured", title: "Invalid database URL" },
  invalid_encryption_key: { kind: "misconfigured", title: "Invalid encryption key" },
  decryption_failed: { kind: "misconfigured", title: "A stored secret cannot be decrypted" },
  token_endpoint_error: { kind: "upstream_failed", title: "The token endpoint call failed" },
  invalid_proxy_path: { kind: "malformed_request", title: "Invalid proxy path" },
  no_api_base_url: { kind: "invalid_input", title: "Provider has no API base URL" },
  method_not_allowed: { kind: "method_not_allowed", title: "Method not allowed" },
  upstream_timeout: { kind: "upstream_timeout", title: "The provider's API did not answer in time" },
  upstream_unreachable: { kind: "upstream_failed", title: "The provider's API is unreachable" },
  store_unavailable: { kind: "unavailable", title: "The store is unavailable" },
});

/** A field-level problem of an input (`path` is dotted, `(root)` for the whole value). */
export interface FieldIssue {
  path: string;
  message: string;
}

/** Extension fields an error may carry: ids and reasons, never tokens, secrets or raw provider bodies. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | string[] | undefined>>;

/** Options of {@link GrantkeeperError}. */
export interface GrantkeeperErrorOptions {
  /** Overrides the code's default kind (e.g. `provider_not_found` named inside a body is `invalid_input`, not `not_found`). */
  kind?: ErrorKind;
  /** Field-level issues of an input. */
  fields?: FieldIssue[];
  /** For `rate_limited` and `unavailable`: when to try again, in milliseconds from now. */
  retryAfterMs?: number;
  /** Log-safe extension fields (ids, reasons). */
  details?: ErrorDetails;
  /** The underlying error, kept non-enumerable so it never lands in a log by accident. */
  cause?: unknown;
}

const BRAND = Symbol.for("grantkeeper.error");

/**
 * An error of grantkeeper's core, with a stable {@link ErrorCode} `code`, a
 * {@link ErrorKind} `kind` and typed fields. `message` is for operators and
 * never contains tokens, secrets or raw provider bodies.
 */
export class GrantkeeperError extends Error {
  readonly code: ErrorCodeValue;
  readonly kind: ErrorKind;
  /** Human summary, the same for every occurrence of `code`. */
  readonly title: string;
  readonly fields: FieldIssue[] | undefined;
  /** Milliseconds until a retry may succeed (`rate_limited`, `unavailable`). */
  readonly retryAfterMs: number | undefined;
  readonly details: ErrorDetails;
  declare readonly [BRAND]: true;

  /**
   * @param code a value of {@link ErrorCode}
   * @param message this occurrence, for operators
   */
  constructor(code: ErrorCodeValue, message: string, options: GrantkeeperErrorOptions = {}) {
    super(message);
    const def = ERROR_DEFINITIONS[code];
    this.name = "GrantkeeperError";
    this.code = code;
    this.kind = options.kind ?? def.kind;
    this.title = def.title;
    this.fields = options.fields;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details ?? {};
    Object.defineProperty(this, BRAND, { value: true, enumerable: false });
    if (options.cause !== undefined) Object.defineProperty(this, "cause", { value: options.cause, enumerable: false, writable: true, configurable: true });
  }
}

/**
 * True for a {@link GrantkeeperError} (of `code`, when given), whichever copy of the module made it.
 * @param code narrow to one code
 */
export function isGrantkeeperError(e: unknown, code?: ErrorCodeValue): e is GrantkeeperError {
  return typeof e === "object" && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true && (code === undefined || (e as GrantkeeperError).code === code);
}

const kindGuard =
  (kind: ErrorKind) =>
  (e: unknown): e is GrantkeeperError =>
    isGrantkeeperError(e) && e.kind === kind;

/** The named connection, provider, integration or job does not exist. */
export const isNotFoundError = kindGuard("not_found");
/** The input was read but is not acceptable; see `fields`. */
export const isInvalidInputError = kindGuard("invalid_input");
/** The request could not be read (a callback without state, a malformed key). */
export const isMalformedRequestError = kindGuard("malformed_request");
/** A credential was missing or wrong (connect link, webhook signature). */
export const isUnauthorizedError = kindGuard("unauthorized");
/** The current state does not allow it (a dead grant, an integration not enabled). */
export const isConflictError = kindGuard("conflict");
/** It can never be used again (a consumed or expired connect link). */
export const isGoneError = kindGuard("gone");
/** A body over a limit. */
export const isTooLargeError = kindGuard("too_large");
/** Allowed later: see `retryAfterMs`. */
export const isRateLimitedError = kindGuard("rate_limited");
/** Temporarily impossible: see `retryAfterMs` (e.g. an expired token while the provider is down). */
export const isUnavailableError = kindGuard("unavailable");
/** A provider or consumer answered with a failure. */
export const isUpstreamFailedError = kindGuard("upstream_failed");
/** A provider or consumer did not answer in time. */
export const isUpstreamTimeoutError = kindGuard("upstream_timeout");
/** grantkeeper's configuration is wrong. */
export const isMisconfiguredError = kindGuard("misconfigured");
/** The method is not accepted there; `details.allow` lists the ones that are. */
export const isMethodNotAllowedError = kindGuard("method_not_allowed");

/**
 * Field issues from a schema validator's issue list (zod's `error.issues` shape:
 * a path of keys and a message), with dotted paths.
 */
export function fieldIssuesOf(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): FieldIssue[] {
  return issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
}

/**
 * An `invalid_input`-kind error listing field issues; its message joins them (`path: message; …`).
 * @param code `validation_failed` unless the caller has a more specific one (`invalid_provider`)
 */
export function invalidInput(fields: FieldIssue[], code: ErrorCodeValue = ErrorCode.validationFailed): GrantkeeperError {
  return new GrantkeeperError(code, fields.map((f) => `${f.path}: ${f.message}`).join("; "), { kind: "invalid_input", fields });
}
