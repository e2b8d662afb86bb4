/**
 * A real grant from the test authorization server, obtained the way any
 * OAuth client would (authorization code + PKCE through oidc-provider's login
 * and consent pages, then the code exchange with oauth4webapi) — without
 * grantkeeper's connect flow, so tests of the refresh lifecycle can import
 * real, refreshable grants with `POST /v1/connections`.
 */
import * as oauth from "oauth4webapi";
import type { AuthServer } from "./authServer.js";
import { completeLogin } from "./login.js";

/** The tokens of one grant, as the token endpoint returned them. */
export interface IssuedGrant {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  /** The whole token response (extra fields such as `instance_url` included). */
  response: Record<string, unknown>;
}

/**
 * Log in as `accountId` and exchange the code.
 * @param client a client registered at `as`; `redirectUri` must be one of its redirect URIs
 * @throws Error when the server issues no refresh token
 */
export async function issueGrant(
  as: AuthServer,
  client: { clientId: string; clientSecret: string; redirectUri: string },
  opts: { accountId?: string; scope?: string } = {},
): Promise<IssuedGrant> {
  const server: oauth.AuthorizationServer = { issuer: as.issuer, authorization_endpoint: as.authorizationEndpoint, token_endpoint: as.tokenEndpoint };
  const c: oauth.Client = { client_id: client.clientId };
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorizationEndpoint);
  url.searchParams.set("client_id", client.clientId);
  url.searchParams.set("redirect_uri", client.redirectUri);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", opts.scope ?? "openid");
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set("code_challenge_method", "S256");
  const callback = new URL(await completeLogin(url.toString(), { accountId: opts.accountId ?? "user-1" }));
  const params = oauth.validateAuthResponse(server, c, callback.searchParams, state);
  const options = { [oauth.allowInsecureRequests]: true };
  const res = await oauth.authorizationCodeGrantRequest(server, c, oauth.ClientSecretBasic(client.clientSecret), params, client.redirectUri, verifier, options);
  const body = (await res.clone().json()) as Record<string, unknown>;
  const tokens = await oauth.processAuthorizationCodeResponse(server, c, res);
  if (typeof tokens.refresh_token !== "string") throw new Error("the authorization server issued no refresh token");
  return { accessToken: tokens.access_token, refreshToken: tokens.refresh_token, expiresIn: tokens.expires_in ?? 0, response: body };
}
