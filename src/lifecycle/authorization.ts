/**
 * The connect flow: authorization code + PKCE S256 + `state` (RFC 6749 §4.1,
 * RFC 7636, RFC 9700 §2.1). The state is stored server-side (hashed) with an
 * expiry and is single use; the verifier is stored encrypted. The callback
 * exchanges the code and creates or re-authorizes the entity's connection.
 */
import type { Clock } from "../domain/clock.js";
import type { RefreshPolicy } from "../domain/policy.js";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import { buildAuthorizationRequest } from "../oauth/pkce.js";
import { exchangeCode, isTokenEndpointError } from "../oauth/tokenEndpoint.js";
import type { ProviderService } from "../providers/service.js";
import type { Encryptor } from "../store/encryption.js";
import { hashState, type OAuthStateRepository } from "../store/oauthStates.js";
import type { Logger } from "../telemetry/logger.js";
import type { ConnectionService } from "./connections.js";
import { providerNotFound } from "./errors.js";
import type { Connection } from "./view.js";

const PURGE_INTERVAL_MS = 10 * 60_000;

/** Dependencies of {@link AuthorizationService}. */
export interface AuthorizationServiceDeps {
  states: OAuthStateRepository;
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

/** What the callback produced. */
export interface CallbackResult {
  connection: Connection;
  created: boolean;
  /** Where to send the browser, if the connect request named an allowed place. */
  returnTo: string | undefined;
}

/** Starts and completes authorization code flows. */
export class AuthorizationService {
  private lastPurgeMs = 0;

  constructor(private readonly d: AuthorizationServiceDeps) {}

  /** The redirect URI registered at providers: `${publicUrl}/v1/oauth/callback`. */
  get redirectUri(): string {
    return `${this.d.publicUrl}/v1/oauth/callback`;
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
   * Begin: store a single-use state and return the provider's authorization URL.
   * @throws {@link GrantkeeperError} 404 `provider_not_found`, 422 `invalid_return_to`
   */
  async begin(providerId: string, entityId: string, opts: { returnTo?: string; scopes?: string[] } = {}): Promise<{ url: string; expiresAt: string }> {
    const returnTo = this.checkReturnTo(opts.returnTo);
    const provider = await this.d.providers.get(providerId);
    if (!provider) throw providerNotFound(providerId);
    const req = await buildAuthorizationRequest(provider, this.redirectUri, opts.scopes);
    const now = this.d.clock.now();
    if (now - this.lastPurgeMs > PURGE_INTERVAL_MS) {
      // Abandoned flows leave states behind; sweep them now and then, off no hot path of note.
      this.lastPurgeMs = now;
      await this.d.states.purgeExpired(now).catch((e: Error) => this.d.logger.warn({ err: { message: e.message } }, "could not purge expired connect states"));
    }
    const hash = hashState(req.state);
    await this.d.states.insert({
      state_hash: hash,
      provider_id: providerId,
      entity_id: entityId,
      code_verifier_ct: this.d.encryptor.encrypt(req.codeVerifier, `oauth_state:${hash}:code_verifier`),
      return_to: returnTo ?? null,
      created_at: now,
      expires_at: now + this.d.stateTtlMs,
      used_at: null,
    });
    return { url: req.url, expiresAt: new Date(now + this.d.stateTtlMs).toISOString() };
  }

  /**
   * Complete: check the state (known, unused, unexpired — consumed atomically),
   * exchange the code with the stored verifier, store the grant.
   * @param query the callback's query parameters
   * @throws {@link GrantkeeperError} 400 `invalid_state` (missing, unknown, used, expired),
   *   400 `authorization_denied` (the provider redirected with `error`),
   *   400 `issuer_mismatch` (RFC 9207), 502 `code_exchange_failed`
   */
  async complete(query: URLSearchParams): Promise<CallbackResult> {
    const state = query.get("state");
    if (!state) throw new GrantkeeperError(ErrorCode.invalidState, "the callback has no state parameter");
    const consumed = await this.d.states.consume(state, this.d.clock.now());
    if (!consumed.ok) {
      const why = { unknown: "is unknown", used: "was already used", expired: "has expired" }[consumed.reason];
      throw new GrantkeeperError(ErrorCode.invalidState, `the state ${why}; start the connection again`, { details: { reason: consumed.reason } });
    }
    const pending = consumed.row;
    const error = query.get("error");
    if (error) {
      this.d.logger.info({ providerId: pending.provider_id, error }, "authorization denied at provider");
      throw new GrantkeeperError(ErrorCode.authorizationDenied, `the provider answered ${error}`, { details: { error, returnTo: pending.return_to ?? undefined } });
    }
    const provider = await this.d.providers.forCall(pending.provider_id).catch(() => {
      throw providerNotFound(pending.provider_id, "body");
    });
    const iss = query.get("iss");
    if (provider.definition.issuer !== undefined && iss !== null && iss !== provider.definition.issuer) {
      throw new GrantkeeperError(ErrorCode.issuerMismatch, "the authorization response came from another issuer (RFC 9207)");
    }
    if (!query.get("code")) throw new GrantkeeperError(ErrorCode.invalidCallback, "the callback has no code parameter");
    const verifier = this.d.encryptor.decrypt(pending.code_verifier_ct, `oauth_state:${pending.state_hash}:code_verifier`);
    let tokens;
    try {
      tokens = await exchangeCode(
        { provider: provider.definition, clientSecret: provider.clientSecret, fetch: this.d.fetch, timeoutMs: this.d.policy.timeoutMs, nowMs: this.d.clock.now() },
        query,
        this.redirectUri,
        verifier,
      );
    } catch (e) {
      if (!isTokenEndpointError(e)) throw e;
      this.d.logger.warn({ providerId: pending.provider_id, reason: e.message }, "code exchange failed");
      throw new GrantkeeperError(ErrorCode.codeExchangeFailed, e.message);
    }
    const { connection, created } = await this.d.connections.storeGrant({ providerId: pending.provider_id, entityId: pending.entity_id, tokens, source: "connect" });
    return { connection, created, returnTo: pending.return_to ?? undefined };
  }
}
