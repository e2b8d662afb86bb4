/**
 * Authorization request building (RFC 6749 §4.1.1) with PKCE S256 (RFC 7636)
 * and `state` (RFC 9700 §4.7), over oauth4webapi's generators.
 */
import * as oauth from "oauth4webapi";
import type { ProviderDefinition } from "../providers/definition.js";

/** What the caller must keep server-side until the callback. */
export interface AuthorizationRequest {
  /** The URL to send the user's browser to. */
  url: string;
  /** High-entropy, single-use `state` (only its hash is stored). */
  state: string;
  /** PKCE code verifier (stored encrypted). */
  codeVerifier: string;
}

/** Where and what an authorization request asks. */
export interface AuthorizationRequestOptions {
  /** The provider's authorization endpoint, its placeholders already filled for this connection. */
  endpoint: string;
  /** Scopes to request; the provider's default scopes when absent or empty. */
  scopes?: readonly string[];
  /**
   * Ask for `scopes` on top of what the user already granted: adds the provider's
   * `incrementalAuthorizationParams` (Google `include_granted_scopes=true`). Ignored for a
   * provider without them.
   */
  incremental?: boolean;
}

/**
 * Build an authorization URL with `response_type=code`, PKCE S256 and `state`.
 * @param redirectUri the callback, `${publicUrl}/v1/oauth/callback`
 * @see RFC 6749 §4.1.1, RFC 7636 §4.3
 */
export async function buildAuthorizationRequest(provider: ProviderDefinition, redirectUri: string, opts: AuthorizationRequestOptions): Promise<AuthorizationRequest> {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(opts.endpoint);
  const requested = opts.scopes && opts.scopes.length > 0 ? opts.scopes : provider.scopes;
  for (const [k, v] of Object.entries(provider.authorizationParams)) url.searchParams.set(k, v);
  if (opts.incremental) for (const [k, v] of Object.entries(provider.incrementalAuthorizationParams ?? {})) url.searchParams.set(k, v);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", provider.clientId);
  url.searchParams.set("redirect_uri", redirectUri);
  if (requested.length > 0) url.searchParams.set("scope", requested.join(provider.scopeSeparator));
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set("code_challenge_method", "S256");
  return { url: url.toString(), state, codeVerifier };
}
