/**
 * A real OAuth 2.0 / OpenID Connect authorization server for tests, built on
 * panva's `oidc-provider` v8 and bound to 127.0.0.1 on an ephemeral port.
 *
 * Behaviour worth knowing (verified against oidc-provider 8.8.1):
 * - Issuer is exactly `http://127.0.0.1:<port>` (no trailing slash). Endpoints:
 *   `/auth` (authorization), `/token`, `/token/revocation`.
 * - Refresh tokens: by default oidc-provider only issues one when the code's scope
 *   contains `offline_access`, and it silently DROPS `offline_access` from an
 *   authorization request unless that request also carries `prompt=consent`.
 *   Here `issueRefreshToken` always returns true (for clients allowed the
 *   `refresh_token` grant), so a client asking for plain `scope=openid` gets one
 *   without `offline_access`/`prompt=consent`. `expiresWithSession` is forced to
 *   false so those tokens do not die with the (cookie) login session either.
 * - Rotation is on: every refresh returns a new refresh token and consumes the
 *   old one. Presenting a consumed refresh token answers 400 invalid_grant AND
 *   revokes the whole grant (reuse detection), like real providers do.
 * - `scope=openid` makes the token endpoint also return an `id_token` (RS256,
 *   signed with a per-server generated key, `aud` = client_id).
 * - Scopes the server does not know are silently dropped from the grant (no
 *   error); pass `extraScopes` to make additional scopes grantable.
 * - The first authorization for a fresh session goes through two pages
 *   (login, then consent); see `completeLogin` in `./login.js`.
 * - Access tokens are opaque strings (oidc-provider's default format).
 */
import { generateKeyPair, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type KoaContextLike } from 'oidc-provider';

/** What a token endpoint answer looks like to {@link AuthServerOptions.tokenResponse}. */
export interface TokenAnswer {
  /** `grant_type` of the request. */
  grantType: string;
  status: number;
  /** The JSON body oidc-provider produced (a token response or an RFC 6749 §5.2 error). */
  body: Record<string, unknown>;
}

/** Options for {@link startAuthServer}. */
export interface AuthServerOptions {
  /** Lifetime of issued access tokens (and client-credentials tokens), in seconds; echoed as `expires_in`. Default 60. */
  accessTokenTtlSeconds?: number;
  /** Statically registered confidential clients (client_secret_basic, code + refresh_token grants; client_credentials when enabled). */
  clients: Array<{ clientId: string; clientSecret: string; redirectUris: string[] }>;
  /** Extra scopes (besides `openid`, `offline_access`) the server grants when asked. Default none. */
  extraScopes?: string[];
  /** Rotate refresh tokens on every use (a consumed one presented again revokes the grant). Default true. */
  rotateRefreshTokens?: boolean;
  /** Issue refresh tokens for the code grant. Default true. */
  issueRefreshTokens?: boolean;
  /** Lifetime of a refresh token, in seconds; with rotation each new one gets it again (an idle expiry). Default 14 days. */
  refreshTokenTtlSeconds?: number;
  /** Enable the client credentials grant (RFC 6749 §4.4) for every client. Default false. */
  clientCredentials?: boolean;
  /**
   * Post-process every token endpoint answer, the way oidc-provider's documented
   * middleware can (`provider.use`, after `await next()`): make the server behave like a
   * provider with a quirk — add `instance_url`, drop `expires_in`, answer errors with a 200,
   * add Microsoft-style `error_codes`. Return a replacement, or nothing to keep the answer.
   */
  tokenResponse?: (answer: TokenAnswer) => { status?: number; body: Record<string, unknown> } | void;
}

/** A running test authorization server; see {@link startAuthServer}. */
export interface AuthServer {
  /** Issuer identifier, exactly `http://127.0.0.1:<port>`. */
  issuer: string;
  /** `${issuer}/auth` */
  authorizationEndpoint: string;
  /** `${issuer}/token` */
  tokenEndpoint: string;
  /** `${issuer}/token/revocation` */
  revocationEndpoint: string;
  /** Number of POSTs to the token endpoint seen so far (any grant type, successful or not). */
  tokenRequests(): number;
  /** Number of token endpoint requests seen so far whose grant_type was `refresh_token`. */
  refreshRequests(): number;
  /**
   * Server-side revocation of every grant issued so far (and all access/refresh
   * tokens and codes belonging to them), so a later refresh answers
   * 400 `invalid_grant`. Resolves with the number of grants destroyed (grants
   * that were already gone are not counted).
   */
  revokeAllGrants(): Promise<number>;
  /** Like {@link AuthServer.revokeAllGrants}, for one account's grants only (the user revoked the app). */
  revokeGrantsOf(accountId: string): Promise<number>;
  /** Stops the server and destroys every open connection. */
  close(): Promise<void>;
}

interface Entry {
  payload: Record<string, unknown>;
  expiresAt: number | undefined;
}

/**
 * Builds an oidc-provider adapter class whose storage is private to one server
 * (the bundled MemoryAdapter is a process-wide singleton), and which keeps an
 * index of everything stored per grant so it can all be revoked at once.
 */
function createAdapter(store: Map<string, Entry>, grants: Map<string, Set<string>>) {
  const live = (key: string): Entry | undefined => {
    const entry = store.get(key);
    if (entry && entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry;
  };
  return class TestAdapter {
    constructor(private readonly model: string) {}
    private key(id: string): string {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      const key = this.key(id);
      const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
      store.set(key, { payload, expiresAt });
      const grantId = this.model === 'Grant' ? id : payload.grantId;
      if (typeof grantId === 'string') {
        const keys = grants.get(grantId) ?? new Set<string>();
        keys.add(key);
        grants.set(grantId, keys);
      }
      if (this.model === 'Session' && typeof payload.uid === 'string') {
        store.set(`sessionUid:${payload.uid}`, { payload: { id }, expiresAt });
      }
      if (typeof payload.userCode === 'string') {
        store.set(`userCode:${payload.userCode}`, { payload: { id }, expiresAt });
      }
    }
    async find(id: string): Promise<Record<string, unknown> | undefined> {
      return live(this.key(id))?.payload;
    }
    async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      const id = live(`sessionUid:${uid}`)?.payload.id;
      return typeof id === 'string' ? this.find(id) : undefined;
    }
    async findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined> {
      const id = live(`userCode:${userCode}`)?.payload.id;
      return typeof id === 'string' ? this.find(id) : undefined;
    }
    async consume(id: string): Promise<void> {
      const entry = live(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const key of grants.get(grantId) ?? []) store.delete(key);
      grants.delete(grantId);
    }
  };
}

/** Runs `fn` with console.info/warn/log muted (oidc-provider prints dev-mode notices at construction). */
function quietly<T>(fn: () => T): T {
  const saved = { info: console.info, warn: console.warn, log: console.log };
  const noop = (): void => {};
  console.info = noop;
  console.warn = noop;
  console.log = noop;
  try {
    return fn();
  } finally {
    Object.assign(console, saved);
  }
}

function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const ROUTES = { authorization: '/auth', token: '/token', revocation: '/token/revocation' } as const;

/**
 * Starts an oidc-provider v8 authorization server on 127.0.0.1 (ephemeral port)
 * with devInteractions (login + consent pages), PKCE S256 required, refresh
 * tokens always issued for the code grant and rotated on every use, revocation
 * enabled, and opaque access tokens living `accessTokenTtlSeconds`.
 */
export async function startAuthServer(opts: AuthServerOptions): Promise<AuthServer> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const { privateKey } = await new Promise<{ privateKey: import('node:crypto').KeyObject }>((resolve, reject) =>
    generateKeyPair('rsa', { modulusLength: 2048 }, (err, _pub, priv) => (err ? reject(err) : resolve({ privateKey: priv }))),
  );
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

  const store = new Map<string, Entry>();
  const grants = new Map<string, Set<string>>();
  const ttl = opts.accessTokenTtlSeconds ?? 60;
  const cookieOptions = { httpOnly: true, sameSite: 'lax', signed: true };

  const configuration: Record<string, unknown> = {
    adapter: createAdapter(store, grants),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')], long: cookieOptions, short: cookieOptions },
    clients: opts.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: c.redirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token', ...(opts.clientCredentials ? ['client_credentials'] : [])],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    scopes: ['openid', 'offline_access', ...(opts.extraScopes ?? [])],
    responseTypes: ['code'],
    routes: ROUTES,
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      clientCredentials: { enabled: opts.clientCredentials === true },
    },
    pkce: { methods: ['S256'], required: () => true },
    // Always a refresh token for the code grant, no offline_access / prompt=consent needed.
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) =>
      opts.issueRefreshTokens !== false && client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    rotateRefreshToken: opts.rotateRefreshTokens !== false,
    // Plain numbers for every TTL also keeps oidc-provider from printing "you SHOULD change" notices.
    ttl: {
      AccessToken: ttl,
      AuthorizationCode: 60,
      ClientCredentials: ttl,
      IdToken: 3600,
      RefreshToken: opts.refreshTokenTtlSeconds ?? 14 * 24 * 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
    clientBasedCORS: () => true,
    renderError: async (ctx: KoaContextLike, out: Record<string, unknown>) => {
      ctx.type = 'html';
      const rows = Object.entries(out)
        .map(([k, v]) => `<pre data-oauth-error-field="${escapeHtml(k)}"><strong>${escapeHtml(k)}</strong>: ${escapeHtml(v)}</pre>`)
        .join('');
      ctx.body = `<!DOCTYPE html><html><head><title>oops! something went wrong</title></head><body><h1>oops! something went wrong</h1>${rows}</body></html>`;
    },
  };

  const provider = quietly(() => new Provider(issuer, configuration));
  const debug = Boolean(process.env.AUTH_SERVER_DEBUG);
  provider.on('server_error', (_ctx, err) => {
    if (debug) console.error('[authServer] server_error', err);
  });
  provider.app.on('error', (err) => {
    if (debug) console.error('[authServer] koa error', err);
  });

  let tokenCount = 0;
  let refreshCount = 0;
  provider.use(async (ctx, next) => {
    const isToken = ctx.method === 'POST' && ctx.path === ROUTES.token;
    if (isToken) tokenCount += 1;
    try {
      await next();
    } finally {
      // ctx.oidc.body is the form body as parsed by oidc-provider itself (we never touch the stream).
      const grantType = ctx.oidc?.body?.grant_type ?? ctx.oidc?.params?.grant_type;
      if (isToken && grantType === 'refresh_token') refreshCount += 1;
    }
    if (isToken && opts.tokenResponse && typeof ctx.body === 'object' && ctx.body !== null) {
      const grantType = String(ctx.oidc?.params?.grant_type ?? ctx.oidc?.body?.grant_type ?? '');
      const replaced = opts.tokenResponse({ grantType, status: ctx.status, body: { ...(ctx.body as Record<string, unknown>) } });
      if (replaced) {
        ctx.body = replaced.body;
        if (replaced.status !== undefined) ctx.status = replaced.status;
      }
    }
  });
  handler = provider.callback();

  return {
    issuer,
    authorizationEndpoint: `${issuer}${ROUTES.authorization}`,
    tokenEndpoint: `${issuer}${ROUTES.token}`,
    revocationEndpoint: `${issuer}${ROUTES.revocation}`,
    tokenRequests: () => tokenCount,
    refreshRequests: () => refreshCount,
    async revokeAllGrants() {
      return revoke(() => true);
    },
    async revokeGrantsOf(accountId: string) {
      return revoke((grant) => grant?.payload.accountId === accountId);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };

  async function revoke(which: (grant: Entry | undefined) => boolean): Promise<number> {
      let destroyed = 0;
      for (const [grantId, keys] of [...grants]) {
        if (!which(store.get(`Grant:${grantId}`))) continue;
        if (store.has(`Grant:${grantId}`)) destroyed += 1;
        for (const key of keys) store.delete(key);
        store.delete(`Grant:${grantId}`);
        grants.delete(grantId);
      }
      return destroyed;
  }
}
