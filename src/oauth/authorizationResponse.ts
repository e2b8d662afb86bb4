/**
 * Validation of an authorization response — the query of the callback
 * (RFC 6749 §4.1.2), over oauth4webapi's `validateAuthResponse`. Everything
 * it refuses becomes one {@link GrantkeeperError} `invalid_callback` with a
 * closed `reason`, so the callback answers 400 and stores nothing (today's
 * bug: a repeated `code` escaped as a 500).
 */
import * as oauth from "oauth4webapi";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import type { ProviderDefinition } from "../providers/definition.js";
import { authServer } from "./tokenEndpoint.js";

/** Why a callback was refused, in `details.reason` of the `invalid_callback` error. */
export type CallbackRejectionReason = "repeated_parameter" | "missing_state" | "missing_code" | "issuer_mismatch" | "authorization_error" | "invalid_response";

/**
 * `error` values of RFC 6749 §4.1.2.1 and OpenID Connect Core §3.1.2.6 —
 * the only provider-chosen text grantkeeper repeats (anything else is `other`).
 */
export const AUTHORIZATION_ERRORS = [
  "invalid_request",
  "unauthorized_client",
  "access_denied",
  "unsupported_response_type",
  "invalid_scope",
  "server_error",
  "temporarily_unavailable",
  "interaction_required",
  "login_required",
  "account_selection_required",
  "consent_required",
] as const;

/** One of {@link AUTHORIZATION_ERRORS}, or `other`. */
export type AuthorizationErrorCode = (typeof AUTHORIZATION_ERRORS)[number] | "other";

function rejected(reason: CallbackRejectionReason, message: string, extra: { parameter?: string; providerError?: AuthorizationErrorCode } = {}): GrantkeeperError {
  return new GrantkeeperError(ErrorCode.invalidCallback, message, { details: { reason, ...extra } });
}

/** The provider's `error` reduced to a known code, so no provider text is repeated. */
export function authorizationErrorCode(error: string | undefined | null): AuthorizationErrorCode {
  return (AUTHORIZATION_ERRORS as readonly string[]).includes(error ?? "") ? (error as AuthorizationErrorCode) : "other";
}

/**
 * The callback's `state`, after the checks that need no stored state:
 * no parameter more than once (RFC 6749 §3.1), a `state` present.
 * @throws {@link GrantkeeperError} 400 `invalid_callback` (`repeated_parameter`, `missing_state`)
 */
export function callbackState(params: URLSearchParams): string {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) throw rejected("repeated_parameter", `the callback carries the parameter "${name.slice(0, 64)}" more than once (RFC 6749 §3.1)`, { parameter: name.slice(0, 64) });
    seen.add(name);
  }
  const state = params.get("state");
  if (!state) throw rejected("missing_state", "the callback has no state parameter");
  return state;
}

/**
 * Validate the whole authorization response against the provider and the
 * expected `state` with oauth4webapi: `iss` (RFC 9207, when the provider has
 * an issuer), `state`, an `error` response (RFC 6749 §4.1.2.1), implicit or
 * JARM responses, then a `code`.
 * @param expectedState the state this flow stored
 * @returns the parameters in the form `exchangeCode` takes
 * @throws {@link GrantkeeperError} 400 `invalid_callback` with `details.reason` (and `providerError` for an `error` response)
 */
export function validateAuthorizationResponse(provider: ProviderDefinition, params: URLSearchParams, expectedState: string): URLSearchParams {
  callbackState(params);
  const copy = new URLSearchParams(params);
  const iss = copy.get("iss");
  if (provider.issuer === undefined) {
    // Without a configured issuer there is nothing to compare `iss` with (RFC 9207 §2.4 leaves it to configuration).
    copy.delete("iss");
  } else if (iss !== null && iss !== provider.issuer) {
    throw rejected("issuer_mismatch", "the authorization response names another issuer (RFC 9207)");
  }
  let validated: URLSearchParams;
  try {
    validated = oauth.validateAuthResponse(authServer(provider), { client_id: provider.clientId }, copy, expectedState);
  } catch (e) {
    if (e instanceof oauth.AuthorizationResponseError) {
      const providerError = authorizationErrorCode(e.error);
      throw rejected("authorization_error", `the provider answered the authorization request with error ${providerError}`, { providerError });
    }
    if (e instanceof oauth.OperationProcessingError || e instanceof oauth.UnsupportedOperationError) throw rejected("invalid_response", "the authorization response is not valid");
    throw e;
  }
  if (!validated.get("code")) throw rejected("missing_code", "the callback has no code parameter");
  return validated;
}
