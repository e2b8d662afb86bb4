/**
 * Errors the lifecycle throws to callers (library and HTTP alike). Each is a
 * {@link ProblemError} with a stable `code`, so the HTTP layer renders it as
 * RFC 9457 and library users switch on `code`.
 */
import { ProblemError } from "../http/problem.js";

/** Stable codes of lifecycle errors. */
export const LifecycleErrorCode = {
  connectionNotFound: "connection_not_found",
  connectionError: "connection_error",
  rateLimited: "refresh_rate_limited",
  tokenUnavailable: "token_unavailable",
  providerNotFound: "provider_not_found",
  invalidTransition: "invalid_transition",
} as const;

/** 404 `connection_not_found`. */
export function connectionNotFound(id: string): ProblemError {
  return new ProblemError(404, LifecycleErrorCode.connectionNotFound, "Connection not found", `no connection ${JSON.stringify(id)}`);
}

/** 409 `connection_error`: the grant is dead until the user re-authorizes (design.md "Connection state"). */
export function connectionInError(id: string, lastErrorCode: string | undefined): ProblemError {
  return new ProblemError(409, LifecycleErrorCode.connectionError, "Connection needs re-authorization", `connection ${id} is in state error${lastErrorCode ? ` (${lastErrorCode})` : ""}; the user must reconnect`, {
    members: { connectionId: id },
  });
}

/**
 * 429 `refresh_rate_limited`: a refresh was asked for sooner than
 * `refresh.minIntervalSeconds` after the last token endpoint call (Nango INC-88).
 * @param retryAfterMs milliseconds until a call is allowed
 */
export function refreshRateLimited(id: string, retryAfterMs: number): ProblemError {
  const s = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new ProblemError(429, LifecycleErrorCode.rateLimited, "Refresh rate limited", `connection ${id} was refreshed less than the minimum interval ago; retry in ${s} s`, {
    headers: { "retry-after": String(s) },
    members: { retryAfterSeconds: s },
  });
}

/**
 * 503 `token_unavailable`: the access token is expired and the provider is
 * unreachable right now. The grant is still usable (design.md "Refresh lifecycle").
 * @param retryAfterMs milliseconds until the next refresh attempt
 */
export function tokenUnavailable(id: string, retryAfterMs: number, reason: string): ProblemError {
  const s = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new ProblemError(503, LifecycleErrorCode.tokenUnavailable, "Access token temporarily unavailable", `connection ${id}: the access token is expired and the provider could not refresh it (${reason}); the grant is still usable, retry in ${s} s`, {
    headers: { "retry-after": String(s) },
    members: { retryAfterSeconds: s, connectionId: id },
  });
}

/** 404 `provider_not_found` (or 422 when the provider is named inside a body). */
export function providerNotFound(id: string, status: 404 | 422 = 404): ProblemError {
  return new ProblemError(status, LifecycleErrorCode.providerNotFound, "Provider not found", `no provider ${JSON.stringify(id)}; define it with PUT /v1/providers/${id}`);
}
