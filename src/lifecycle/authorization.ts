/**
 * The connect flow: authorization code + PKCE S256 + `state` (RFC 6749 §4.1,
 * RFC 7636, RFC 9700 §2.1), started from a connect session's link. The state
 * is stored server-side (hashed) with an expiry and is single use; the
 * verifier is stored encrypted; the state is bound to the browser that opened
 * the link by a secret only that browser holds (a cookie per session,
 * RFC 9700 §4.7.1), of which only a hash is stored. The callback checks everything that can be
 * checked before it changes anything, then exchanges the code, consumes the
 * session and stores the grant.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../domain/clock.js";
import type { RefreshPolicy } from "../domain/policy.js";
import { connectCutoffs } from "../domain/retention.js";
import { ErrorCode, GrantkeeperError, isGrantkeeperError } from "../domain/errors.js";
import { callbackState, validateAuthorizationResponse } from "../oauth/authorizationResponse.js";
import { buildAuthorizationRequest } from "../oauth/pkce.js";
import { exchangeCode, isTokenEndpointError } from "../oauth/tokenEndpoint.js";
import { authorizationEndpointFor, forTokenCalls } from "../providers/connectionConfig.js";
import type { ProviderDefinition } from "../providers/definition.js";
import type { ProviderService } from "../providers/service.js";
import type { ConnectSessionRepository } from "../store/connectSessions.js";
import type { Encryptor } from "../store/encryption.js";
import { hashState, type OAuthStateRepository } from "../store/oauthStates.js";
import type { RetentionRepository } from "../store/retention.js";
import type { Logger } from "../telemetry/logger.js";
import type { ConnectionService } from "./connections.js";
import { linkUsed, openedSession, type OpenedSession } from "./connectSessions.js";
import { providerNotFound } from "./errors.js";
import type { Connection } from "./view.js";

const PURGE_INTERVAL_MS = 10 * 60_000;
/** Rows of each table one purge deletes at most (the oldest first): a backlog goes over several purges or to the retention sweep. */
const PURGE_BATCH = 500;

/**
 * Most live (unused, unexpired) states one session holds: opening its link
 * again evicts the oldest, so a link opened a thousand times holds this many,
 * not a thousand.
 */
export const MAX_PENDING_STATES_PER_SESSION = 5;

/** Dependencies of {@link AuthorizationService}. */
export interface AuthorizationServiceDeps {
  states: OAuthStateRepository;
  sessions: ConnectSessionRepository;
  /** Bounded deletes of expired states and sessions, the retention sweep's own (see {@link AuthorizationService} purge). */
  expired: Pick<RetentionRepository, "deleteOAuthStates" | "deleteConnectSessions">;
  providers: ProviderService;
  connections: ConnectionService;
  encryptor: Encryptor;
  clock: Clock;
  fetch: typeof fetch;
  logger: Logger;
  policy: RefreshPolicy;
  /** Origin users' browsers reach, e.g. `http://127.0.0.1:7420`; the redirect URI is `${publicUrl}/v1/oauth/callback`. */
  publicUrl: string;
  /** Origins `returnTo` may point at (no open redirects). */
  allowedReturnOrigins: string[];
  /** How long a `state` stays valid, in milliseconds. @defaultValue 600 000 */
  stateTtlMs: number;
}

/** A started flow: where to send the browser and the secret that browser must keep. */
export interface StartedFlow {
  /** The provider's authorization URL. */
  url: string;
  /** The `state` in `url`. */
  state: string;
  /** The session the flow belongs to. */
  sessionId: string;
  /** The browser-binding secret: set it as an HttpOnly cookie on the browser that is sent to `url`, nowhere else. */
  bindingSecret: string;
  /** When the state expires, milliseconds since the epoch. */
  expiresAtMs: number;
}

/** What the callback produced. */
export interface CallbackResult {
  connection: Connection;
  created: boolean;
  /** Where to send the browser, if the session named an allowed place. */
  returnTo: string | undefined;
  /** The session the connect consumed. */
  sessionId: string;
}

/** A binding secret: 32 random bytes, base64url. */
const BINDING_SECRET = /^[A-Za-z0-9_-]{43}$/;

const sha256Hex = (s: string) => hashState(s);

/** True when `secret` hashes to `expectedHash` (hex), compared in constant time. */
function bindingMatches(secret: string | undefined, expectedHash: string | null): boolean {
  if (secret === undefined || expectedHash === null) return false;
  const a = Buffer.from(sha256Hex(secret), "hex");
  const b = Buffer.from(expectedHash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Starts and completes authorization code flows. */
export class AuthorizationService {
  private lastPurgeMs = 0;

  constructor(private readonly d: AuthorizationServiceDeps) {}

  /** The redirect URI registered at providers: `${publicUrl}/v1/oauth/callback`. */
  get redirectUri(): string {
    return `${this.d.publicUrl}/v1/oauth/callback`;
  }

  /** How long a started flow may take, milliseconds (the binding cookie lives as long). */
  get stateTtlMs(): number {
    return this.d.stateTtlMs;
  }

  /**
   * Check that `returnTo` is an absolute URL on an allowed origin.
   * @throws {@link GrantkeeperError} 422 `invalid_return_to`
   */
  checkReturnTo(returnTo: string | undefined): string | undefined {
    if (returnTo === undefined || returnTo === "") return undefined;
    let origin: string;
    try {
      origin = new URL(returnTo).origin;
    } catch {
      throw new GrantkeeperError(ErrorCode.invalidReturnTo, "returnTo must be an absolute URL");
    }
    if (!this.d.allowedReturnOrigins.includes(origin)) {
      throw new GrantkeeperError(ErrorCode.invalidReturnTo, `returnTo must be on an allowed origin (${this.d.allowedReturnOrigins.join(", ")})`);
    }
    return returnTo;
  }

  /**
   * Begin a flow for an opened session: store a single-use state bound to the
   * browser's secret (evicting the session's oldest pending states beyond
   * {@link MAX_PENDING_STATES_PER_SESSION}) and return the authorization URL.
   * The session's `connectionConfig` fills the endpoints' placeholders
   * (`{subdomain}`, `{tenant}`); its scopes are asked for on top of those
   * already granted where the provider supports incremental authorization
   * (its `incrementalAuthorizationParams`), else the provider's defaults.
   * @param browserSecret the binding secret this browser already holds for this session (it opened the link before), reused when well-formed; else a new one is made
   * @throws {@link GrantkeeperError} 404 `provider_not_found` (deleted since the session was minted); 422
   *   `grant_type_mismatch`, `connection_config_missing`, `invalid_connection_config` (redefined since it was minted)
   */
  async begin(session: OpenedSession, browserSecret?: string): Promise<StartedFlow> {
    const provider = await this.d.providers.get(session.providerId);
    if (!provider) throw providerNotFound(session.providerId);
    // Checked when the session was minted, and again here: the provider may have been redefined since.
    const endpoint = authorizationEndpointFor(provider, session.connectionConfig ?? {});
    const scopes = session.scopes && session.scopes.length > 0 ? session.scopes : undefined;
    const req = await buildAuthorizationRequest(provider, this.redirectUri, { endpoint, ...(scopes ? { scopes, incremental: true } : {}) });
    const now = this.d.clock.now();
    await this.purgeNowAndThen(now);
    const bindingSecret = browserSecret !== undefined && BINDING_SECRET.test(browserSecret) ? browserSecret : randomBytes(32).toString("base64url");
    const hash = hashState(req.state);
    const expiresAtMs = now + this.d.stateTtlMs;
    await this.d.states.insertCapped(
      {
        state_hash: hash,
        provider_id: session.providerId,
        entity_id: session.entityId,
        code_verifier_ct: this.d.encryptor.encrypt(req.codeVerifier, `oauth_state:${hash}:code_verifier`),
        return_to: session.returnTo ?? null,
        created_at: now,
        expires_at: expiresAtMs,
        used_at: null,
        session_id: session.id,
        binding_hash: sha256Hex(bindingSecret),
      },
      MAX_PENDING_STATES_PER_SESSION,
      now,
    );
    return { url: req.url, state: req.state, sessionId: session.id, bindingSecret, expiresAtMs };
  }

  /**
   * Complete a flow from the callback's query. Checked before anything
   * changes: no repeated parameter, a state that is known, unused and
   * unexpired, a session not yet completed, the browser's binding secret, and
   * the whole response as oauth4webapi validates it (`error`, `iss`, `code`).
   * Then the state is consumed, the code exchanged (at the token endpoint the
   * session's `connectionConfig` resolves), the session consumed and the grant
   * stored with that `connectionConfig`.
   * @param query the callback's query parameters
   * @param bindingSecretOf the binding secret the delivering browser holds for a session (its cookie), if any
   * @throws {@link GrantkeeperError} 400 `invalid_callback` (`details.reason`), 400 `invalid_state`
   *   (unknown, used, expired), 410 `connect_link_used`, 400 `state_not_bound`, 502 `code_exchange_failed`;
   *   422 `connection_config_missing`, `invalid_connection_config` (the token endpoint no longer resolves with the
   *   session's `connectionConfig`: the provider was redefined meanwhile)
   */
  async complete(query: URLSearchParams, bindingSecretOf: (sessionId: string) => string | undefined): Promise<CallbackResult> {
    const state = callbackState(query);
    const found = await this.d.states.lookup(state, this.d.clock.now());
    if (!found.ok) throw invalidState(found.reason);
    const pending = found.row;
    const session = pending.session_id !== null ? await this.d.sessions.get(pending.session_id) : undefined;
    // Another tab finished first: say so (the binding cookie may be gone with that success).
    if (session?.completed_at != null) throw linkUsed();
    if (!session || !bindingMatches(bindingSecretOf(session.id), pending.binding_hash)) {
      this.d.logger.info({ providerId: pending.provider_id, sessionId: pending.session_id }, "callback refused: state not bound to the delivering browser");
      throw new GrantkeeperError(ErrorCode.stateNotBound, "this callback was delivered by another browser than the one that opened the connect link; finish connecting in the browser you started in");
    }
    const provider = await this.d.providers.forCall(pending.provider_id).catch(() => {
      throw providerNotFound(pending.provider_id, "body");
    });
    const returnTo = pending.return_to ?? undefined;
    const opened = openedSession(session);
    const connectionConfig = opened.connectionConfig ?? {};
    let validated: URLSearchParams;
    let resolved: ProviderDefinition;
    try {
      // This connection's endpoints ({subdomain}, {tenant}, an origin): resolved before anything changes.
      resolved = forTokenCalls(provider.definition, connectionConfig);
      validated = validateAuthorizationResponse(resolved, query, state);
    } catch (e) {
      throw withReturnTo(e, returnTo);
    }
    const consumed = await this.d.states.consume(state, this.d.clock.now());
    if (!consumed.ok) throw invalidState(consumed.reason);
    const verifier = this.d.encryptor.decrypt(pending.code_verifier_ct, `oauth_state:${pending.state_hash}:code_verifier`);
    let tokens;
    try {
      tokens = await exchangeCode(
        { provider: resolved, clientSecret: provider.clientSecret, fetch: this.d.fetch, timeoutMs: this.d.policy.timeoutMs, nowMs: this.d.clock.now() },
        validated,
        this.redirectUri,
        verifier,
      );
    } catch (e) {
      if (!isTokenEndpointError(e)) throw e;
      this.d.logger.warn({ providerId: pending.provider_id, reason: e.message }, "code exchange failed");
      throw new GrantkeeperError(ErrorCode.codeExchangeFailed, e.message, { details: { returnTo } });
    }
    // The first completed connect consumes the session; a second tab finishing at the same time stores nothing.
    const claimedAt = this.d.clock.now();
    if (!(await this.d.sessions.claimCompletion(session.id, claimedAt))) throw withReturnTo(linkUsed(), returnTo);
    // RFC 6749 §5.1: a response without `scope` granted exactly what was asked for.
    const requested = opened.scopes && opened.scopes.length > 0 ? opened.scopes : provider.definition.scopes;
    if (tokens.scope === undefined && requested.length > 0) tokens = { ...tokens, scope: requested.join(" ") };
    let stored;
    try {
      stored = await this.d.connections.storeGrant({
        providerId: pending.provider_id,
        entityId: pending.entity_id,
        tokens,
        source: "connect",
        connectionConfig,
      });
    } catch (e) {
      await this.d.sessions.releaseCompletion(session.id, claimedAt);
      throw e;
    }
    await this.d.sessions.setConnection(session.id, stored.connection.id);
    return { ...stored, returnTo, sessionId: session.id };
  }

  /**
   * Abandoned flows and sessions leave rows behind. Every {@link PURGE_INTERVAL_MS}, delete the oldest expired states and sessions — at most
   * {@link PURGE_BATCH} of each, with the retention sweep's cutoffs ({@link connectCutoffs}) and statements — so that a library user who never calls `gk.start()` (no sweep) does not keep them
   * forever, and a start never waits on an unbounded delete.
   */
  private async purgeNowAndThen(now: number): Promise<void> {
    if (now - this.lastPurgeMs <= PURGE_INTERVAL_MS) return;
    this.lastPurgeMs = now;
    try {
      const cut = connectCutoffs(now);
      await this.d.expired.deleteOAuthStates(cut.oauthStatesExpiredAtMs, PURGE_BATCH);
      await this.d.expired.deleteConnectSessions(cut.connectSessionsBeforeMs, PURGE_BATCH);
    } catch (e) {
      this.d.logger.warn({ err: { message: (e as Error).message } }, "could not purge expired connect states and sessions");
    }
  }
}

/** `invalid_state` (400): the state is unknown, used or expired. */
function invalidState(reason: "unknown" | "used" | "expired"): GrantkeeperError {
  const why = { unknown: "is unknown", used: "was already used", expired: "has expired" }[reason];
  return new GrantkeeperError(ErrorCode.invalidState, `the state ${why}; start the connection again`, { details: { reason } });
}

/** The same error with the flow's `returnTo` in its details, so the edge can send the browser back to the host app. */
function withReturnTo(e: unknown, returnTo: string | undefined): unknown {
  if (returnTo === undefined || !isGrantkeeperError(e)) return e;
  return new GrantkeeperError(e.code, e.message, { kind: e.kind, details: { ...e.details, returnTo } });
}
