/**
 * End-to-end proof that the test harness (auth server, headless login, fault
 * proxy) works, using only oauth4webapi as the client — no grantkeeper code.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from './authServer.js';
import { startFaultProxy, type FaultProxy } from './faultProxy.js';
import { completeLogin } from './login.js';

const CLIENT_ID = 'harness-client';
const CLIENT_SECRET = 'harness-secret';
const REDIRECT_URI = 'http://127.0.0.1:9/cb'; // nothing listens there; never fetched
const TTL = 120;
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let auth: AuthServer;
let proxy: FaultProxy;
let as: oauth.AuthorizationServer;
let asViaProxy: oauth.AuthorizationServer;
const client: oauth.Client = { client_id: CLIENT_ID };
const clientAuth = oauth.ClientSecretBasic(CLIENT_SECRET);

beforeAll(async () => {
  auth = await startAuthServer({
    accessTokenTtlSeconds: TTL,
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI] }],
  });
  proxy = await startFaultProxy(auth.issuer);
  as = {
    issuer: auth.issuer,
    authorization_endpoint: auth.authorizationEndpoint,
    token_endpoint: auth.tokenEndpoint,
    revocation_endpoint: auth.revocationEndpoint,
    jwks_uri: `${auth.issuer}/jwks`,
  };
  asViaProxy = { ...as, token_endpoint: `${proxy.url}/token` };
});

afterAll(async () => {
  await proxy?.close();
  await auth?.close();
});

async function authorizationUrl(): Promise<{ url: URL; verifier: string; state: string }> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(auth.authorizationEndpoint);
  url.searchParams.set('client_id', CLIENT_ID);
  url.searchParams.set('redirect_uri', REDIRECT_URI);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', 'openid');
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', state);
  return { url, verifier, state };
}

async function loginAndExchange(startUrl?: (authorizeUrl: URL) => string): Promise<oauth.TokenEndpointResponse> {
  const { url, verifier, state } = await authorizationUrl();
  const location = await completeLogin(startUrl ? startUrl(url) : url.href);
  expect(location.startsWith(`${REDIRECT_URI}?`)).toBe(true);
  const params = oauth.validateAuthResponse(as, client, new URL(location), state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, REDIRECT_URI, verifier, insecure);
  return oauth.processAuthorizationCodeResponse(as, client, response);
}

describe('test harness', () => {
  it('runs login, code exchange, rotation, faults and server-side revocation', async () => {
    expect(auth.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(auth.tokenEndpoint).toBe(`${auth.issuer}/token`);

    const tokens = await loginAndExchange();
    expect(typeof tokens.access_token).toBe('string');
    expect(tokens.access_token.split('.')).toHaveLength(1); // opaque, not a JWT
    expect(typeof tokens.refresh_token).toBe('string');
    expect(tokens.expires_in).toBe(TTL);
    expect(typeof tokens.id_token).toBe('string');
    expect(auth.tokenRequests()).toBe(1);
    expect(auth.refreshRequests()).toBe(0);

    // Refresh through the proxy in pass mode: the refresh token rotates.
    const rt1 = tokens.refresh_token as string;
    const refreshed = await oauth.processRefreshTokenResponse(
      asViaProxy,
      client,
      await oauth.refreshTokenGrantRequest(asViaProxy, client, clientAuth, rt1, insecure),
    );
    const rt2 = refreshed.refresh_token as string;
    expect(typeof rt2).toBe('string');
    expect(rt2).not.toBe(rt1);
    expect(refreshed.expires_in).toBe(TTL);
    expect(auth.refreshRequests()).toBe(1);

    proxy.setMode('503');
    const r503 = await oauth.refreshTokenGrantRequest(asViaProxy, client, clientAuth, rt2, insecure);
    expect(r503.status).toBe(503);
    expect(await r503.json()).toEqual({ error: 'temporarily_unavailable' });

    proxy.setMode('429', { retryAfterSeconds: 7 });
    const r429 = await oauth.refreshTokenGrantRequest(asViaProxy, client, clientAuth, rt2, insecure);
    expect(r429.status).toBe(429);
    expect(r429.headers.get('retry-after')).toBe('7');
    expect(await r429.json()).toEqual({ error: 'slow_down' });

    proxy.setMode('html500');
    const r500 = await oauth.refreshTokenGrantRequest(asViaProxy, client, clientAuth, rt2, insecure);
    expect(r500.status).toBe(500);
    expect(r500.headers.get('content-type')).toContain('text/html');
    expect(await r500.text()).toBe('<html><body>Internal error</body></html>');

    proxy.setMode('reset');
    await expect(oauth.refreshTokenGrantRequest(asViaProxy, client, clientAuth, rt2, insecure)).rejects.toThrow();

    proxy.setMode('hang');
    const hung = oauth.refreshTokenGrantRequest(asViaProxy, client, clientAuth, rt2, {
      ...insecure,
      signal: AbortSignal.timeout(300),
    });
    await expect(hung).rejects.toMatchObject({ name: 'TimeoutError' });

    // None of the faulted requests reached the auth server.
    expect(auth.refreshRequests()).toBe(1);
    expect(proxy.requests()).toBe(6);

    expect(await auth.revokeAllGrants()).toBe(1);
    expect(await auth.revokeAllGrants()).toBe(0);

    proxy.setMode('pass');
    const revoked = await oauth.refreshTokenGrantRequest(asViaProxy, client, clientAuth, rt2, insecure);
    expect(revoked.status).toBe(400);
    expect(await revoked.json()).toMatchObject({ error: 'invalid_grant' });

    expect(auth.refreshRequests()).toBe(2);
    expect(auth.tokenRequests()).toBe(3);
  });

  it('slowBody: headers at once, the body trickled over the duration (canned or forwarded)', async () => {
    try {
      expect(() => proxy.setMode('slowBody')).toThrow(RangeError);
      proxy.setMode('slowBody', { slowBody: { durationMs: 400, canned: { status: 503, body: { error: 'temporarily_unavailable' } } } });
      const t0 = performance.now();
      const r503 = await fetch(`${proxy.url}/token`, { method: 'POST', body: 'grant_type=refresh_token&refresh_token=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      const headersAfter = performance.now() - t0;
      expect(r503.status).toBe(503);
      expect(await r503.json()).toEqual({ error: 'temporarily_unavailable' });
      const bodyAfter = performance.now() - t0;
      expect(headersAfter).toBeLessThan(200);
      expect(bodyAfter).toBeGreaterThanOrEqual(380);

      // Forwarded: the authorization server's own answer (a rotated refresh token), just late.
      const tokens = await loginAndExchange();
      proxy.setMode('slowBody', { slowBody: { durationMs: 300 } });
      const t1 = performance.now();
      const refreshed = await oauth.processRefreshTokenResponse(asViaProxy, client, await oauth.refreshTokenGrantRequest(asViaProxy, client, clientAuth, tokens.refresh_token!, insecure));
      expect(performance.now() - t1).toBeGreaterThanOrEqual(280);
      expect(typeof refreshed.refresh_token).toBe('string');
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);

      // A client timeout that covers the body gives up while it trickles.
      proxy.setMode('slowBody', { slowBody: { durationMs: 5_000, canned: { status: 200, body: { access_token: 'late', token_type: 'Bearer' } } } });
      const late = await fetch(`${proxy.url}/token`, { method: 'POST', body: '', signal: AbortSignal.timeout(300) });
      expect(late.status).toBe(200);
      await expect(late.text()).rejects.toMatchObject({ name: 'TimeoutError' });
    } finally {
      proxy.setMode('pass');
    }
  });

  it('follows a client app redirect into the auth server and stops at the redirect_uri', async () => {
    let target = '';
    const app: Server = createServer((_req, res) => res.writeHead(302, { location: target }).end());
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    try {
      const connect = `http://127.0.0.1:${(app.address() as AddressInfo).port}/connect`;
      const tokens = await loginAndExchange((authorizeUrl) => {
        target = authorizeUrl.href;
        return connect;
      });
      expect(typeof tokens.refresh_token).toBe('string');
      const claims = oauth.getValidatedIdTokenClaims(tokens);
      expect(claims?.sub).toBe('user-1');
      expect(claims?.iss).toBe(auth.issuer);
    } finally {
      app.closeAllConnections();
      await new Promise<void>((resolve) => app.close(() => resolve()));
    }
  });

  it('surfaces authorization server error pages as exceptions', async () => {
    const { url } = await authorizationUrl();
    url.searchParams.set('redirect_uri', 'http://127.0.0.1:9/not-registered');
    await expect(completeLogin(url.href)).rejects.toThrow(/redirect_uri/);
  });
});
