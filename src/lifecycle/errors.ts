/**
 * Factories of the lifecycle's {@link GrantkeeperError}s, so each code is
 * worded one way wherever it is thrown. The HTTP edge renders them as
 * RFC 9457; library users switch on `code` or the kind guards.
 */
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";

/**
 * Stable codes of lifecycle errors (kept for callers of the v1 library surface).
 * @deprecated use {@link ErrorCode}
 */
export const LifecycleErrorCode = {
  connectionNotFound: ErrorCode.connectionNotFound,
  connectionError: ErrorCode.connectionError,
  rateLimited: ErrorCode.refreshRateLimited,
  tokenUnavailable: ErrorCode.tokenUnavailable,
  providerNotFound: ErrorCode.providerNotFound,
  invalidTransition: "invalid_transition",
} as const;

/** `connection_not_found` (kind `not_found`). */
export function connectionNotFound(id: string): GrantkeeperError {
  return new GrantkeeperError(ErrorCode.connectionNotFound, `no connection ${JSON.stringify(id)}`);
}

/** `connection_error` (kind `conflict`): the grant is dead until the user re-authorizes (design.md "Connection state"). */
export function connectionInError(id: string, lastErrorCode: string | undefined): GrantkeeperError {
  return new GrantkeeperError(ErrorCode.connectionError, `connection ${id} is in state error${lastErrorCode ? ` (${lastErrorCode})` : ""}; the user must reconnect`, {
    details: { connectionId: id },
  });
}

/**
 * `refresh_rate_limited` (kind `rate_limited`): a refresh was asked for sooner than
 * `refresh.minIntervalSeconds` after the last token endpoint call (Nango INC-88).
 * @param retryAfterMs milliseconds until a call is allowed
 */
export function refreshRateLimited(id: string, retryAfterMs: number): GrantkeeperError {
  const s = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new GrantkeeperError(ErrorCode.refreshRateLimited, `connection ${id} was refreshed less than the minimum interval ago; retry in ${s} s`, {
    retryAfterMs: s * 1000,
    details: { retryAfterSeconds: s },
  });
}

/**
 * `token_unavailable` (kind `unavailable`): the access token is expired and the
 * provider is unreachable right now. The grant is still usable (design.md "Refresh lifecycle").
 * @param retryAfterMs milliseconds until the next refresh attempt
 */
export function tokenUnavailable(id: string, retryAfterMs: number, reason: string): GrantkeeperError {
  const s = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new GrantkeeperError(ErrorCode.tokenUnavailable, `connection ${id}: the access token is expired and the provider could not refresh it (${reason}); the grant is still usable, retry in ${s} s`, {
    retryAfterMs: s * 1000,
    details: { retryAfterSeconds: s, connectionId: id },
  });
}

/**
 * `token_unavailable` (kind `unavailable`, 503) for an expired access token
 * while the provider's token endpoint breaker is open: no refresh was tried,
 * the grant is still usable. `details.reason` is `token_endpoint_breaker_open`
 * and `Retry-After` the breaker's remaining cooldown (design.md "Breakers and cooldowns").
 * @param retryAfterMs milliseconds until the breaker's cooldown ends and a half-open probe may go out
 */
export function tokenEndpointUnavailable(id: string, providerId: string, retryAfterMs: number): GrantkeeperError {
  const s = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new GrantkeeperError(ErrorCode.tokenUnavailable, `connection ${id}: the access token is expired and the token endpoint of provider ${providerId} is failing (its breaker is open); the grant is still usable, retry in ${s} s`, {
    retryAfterMs: s * 1000,
    details: { retryAfterSeconds: s, connectionId: id, reason: "token_endpoint_breaker_open" },
  });
}

/**
 * `provider_not_found`: kind `not_found` when the provider is the thing asked for,
 * `invalid_input` when it is named inside a body.
 */
export function providerNotFound(id: string, namedIn: "path" | "body" = "path"): GrantkeeperError {
  return new GrantkeeperError(ErrorCode.providerNotFound, `no provider ${JSON.stringify(id)}; define it with PUT /v1/providers/${id}`, {
    ...(namedIn === "body" ? { kind: "invalid_input" as const } : {}),
  });
}
