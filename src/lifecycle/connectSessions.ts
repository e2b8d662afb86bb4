/**
 * Connect sessions (api-contract.md v1.1 "Connect sessions and links"): the
 * only way an end user without an API key starts a connect flow. A host app
 * mints one per click, after authenticating its own user; its link
 * (`GET /v1/connect/{providerId}?connectToken=…`) is short-lived (30 min by
 * default), consumed by the first completed connect, and every flow it starts
 * is bound to the browser that opened it (RFC 9700 §4.7.1). They replace the
 * reusable 24-hour signed bearer links, which anyone holding a copy (an alert
 * in a shared channel, a forwarded email) could use again and again.
 *
 * The scopes, `returnTo` and `connectionConfig` are stored in the session:
 * nothing in the link's query can change them.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Clock } from "../domain/clock.js";
import { ErrorCode, fieldIssuesOf, GrantkeeperError, invalidInput } from "../domain/errors.js";
import { authorizationEndpointFor, connectionConfigSchema } from "../providers/connectionConfig.js";
import { providerIdSchema } from "../providers/definition.js";
import type { ProviderService } from "../providers/service.js";
import { hashLinkSecret, newConnectSessionId, type ConnectSessionRepository, type ConnectSessionRow } from "../store/connectSessions.js";
import { providerNotFound } from "./errors.js";

/** Lifetimes of connect sessions, milliseconds. */
export const CONNECT_SESSION_TTL = Object.freeze({
  /** @defaultValue 1 800 000 (30 min) */
  defaultMs: 1_800_000,
  /** Shortest allowed: 60 000 (1 min). */
  minMs: 60_000,
  /** Longest allowed: 86 400 000 (24 h). */
  maxMs: 86_400_000,
});

const SECRET_PREFIX = "gkcs_";
const SECRET_FORMAT = /^gkcs_[A-Za-z0-9_-]{43}$/;

/** RFC 6749 §3.3 scope-token: printable ASCII without space, `"` and `\`. */
export const scopeSchema = z.string().min(1).max(256).regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, "a scope token (RFC 6749 §3.3): printable ASCII, no spaces, quotes or backslashes");

/** What {@link ConnectSessionService.create} takes. */
export interface ConnectSessionInput {
  providerId: string;
  entityId: string;
  /** Where the browser goes after the callback; must be on an allowed origin. */
  returnTo?: string | undefined;
  /** Scopes to ask for; the provider's defaults when absent or empty. */
  scopes?: string[] | undefined;
  /**
   * Settings carried to the stored connection (`{subdomain: "acme"}`): they fill the provider's
   * `{placeholders}` (`connectionConfigSchema`, src/providers/connectionConfig.ts). Never secrets.
   */
  connectionConfig?: Record<string, string> | undefined;
  /** Link lifetime, milliseconds, 60 000 .. 86 400 000. @defaultValue 1 800 000 (30 min) */
  ttlMs?: number | undefined;
}

const inputSchema = z
  .object({
    providerId: providerIdSchema,
    entityId: z.string().min(1).max(256),
    returnTo: z.string().max(2048).optional(),
    scopes: z.array(scopeSchema).max(100).optional(),
    connectionConfig: connectionConfigSchema.optional(),
    ttlMs: z.number().int().min(CONNECT_SESSION_TTL.minMs).max(CONNECT_SESSION_TTL.maxMs).optional(),
  })
  .strict();

/** A minted session, as `POST /v1/connect-sessions` answers. */
export interface ConnectSession {
  /** `cs_…`: names the session (not a credential). */
  id: string;
  providerId: string;
  entityId: string;
  /** The link for the end user's browser. A credential until used or expired: never log it, never put it in a long-lived message. */
  connectUrl: string;
  /** RFC 3339. */
  expiresAt: string;
}

/** A session a link opened: what the connect flow needs. */
export interface OpenedSession {
  id: string;
  providerId: string;
  entityId: string;
  scopes: string[] | undefined;
  returnTo: string | undefined;
  connectionConfig: Record<string, string> | undefined;
}

/** Dependencies of {@link ConnectSessionService}. */
export interface ConnectSessionServiceDeps {
  repo: ConnectSessionRepository;
  providers: ProviderService;
  clock: Clock;
  /** Origin users' browsers reach; links are `${publicUrl}/v1/connect/{providerId}?connectToken=…`. */
  publicUrl: string;
  /** Checks `returnTo` against the allowed origins (no open redirects). */
  checkReturnTo: (returnTo: string | undefined) => string | undefined;
}

/** The session a stored row describes. */
export function openedSession(row: ConnectSessionRow): OpenedSession {
  return {
    id: row.id,
    providerId: row.provider_id,
    entityId: row.entity_id,
    scopes: row.scopes ? (JSON.parse(row.scopes) as string[]) : undefined,
    returnTo: row.return_to ?? undefined,
    connectionConfig: row.connection_config ? (JSON.parse(row.connection_config) as Record<string, string>) : undefined,
  };
}

/** Mints and opens connect sessions (`gk.connectSessions`). */
export class ConnectSessionService {
  constructor(private readonly d: ConnectSessionServiceDeps) {}

  /**
   * Mint a session and its link. Mint one per click, for a user your app has
   * authenticated; hand the link to that user's browser only.
   * @returns the session with its `connectUrl` (shown once: only a hash of its secret is stored)
   * @throws {@link GrantkeeperError} 422 `validation_failed` (bad fields, ttl out of range, a secret-like connectionConfig key),
   *   422 `provider_not_found`, 422 `invalid_return_to`, 422 `grant_type_mismatch` (a client-credentials provider has no
   *   connect flow), 422 `connection_config_missing` / `invalid_connection_config` (the provider's authorization or token
   *   endpoint needs a `{placeholder}` the `connectionConfig` does not fill, or fills with a value that may not stand there)
   */
  async create(input: ConnectSessionInput): Promise<ConnectSession> {
    const parsed = inputSchema.safeParse(Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)));
    if (!parsed.success) throw invalidInput(fieldIssuesOf(parsed.error.issues));
    const v = parsed.data;
    const returnTo = this.d.checkReturnTo(v.returnTo);
    const provider = await this.d.providers.get(v.providerId);
    if (!provider) throw providerNotFound(v.providerId, "body");
    // A link that cannot work is refused to the host now, not shown to its user as an error page later.
    authorizationEndpointFor(provider, v.connectionConfig ?? {});
    const now = this.d.clock.now();
    const expiresAt = now + (v.ttlMs ?? CONNECT_SESSION_TTL.defaultMs);
    const secret = `${SECRET_PREFIX}${randomBytes(32).toString("base64url")}`;
    const id = newConnectSessionId();
    await this.d.repo.insert({
      id,
      token_hash: hashLinkSecret(secret),
      provider_id: v.providerId,
      entity_id: v.entityId,
      scopes: v.scopes && v.scopes.length > 0 ? JSON.stringify(v.scopes) : null,
      return_to: returnTo ?? null,
      connection_config: v.connectionConfig && Object.keys(v.connectionConfig).length > 0 ? JSON.stringify(v.connectionConfig) : null,
      created_at: now,
      expires_at: expiresAt,
      completed_at: null,
      connection_id: null,
    });
    const url = new URL(`${this.d.publicUrl}/v1/connect/${encodeURIComponent(v.providerId)}`);
    url.searchParams.set("connectToken", secret);
    return { id, providerId: v.providerId, entityId: v.entityId, connectUrl: url.toString(), expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * Open a link: the session its secret names, if it may still start a flow.
   * @param providerId the provider in the link's path (must be the session's)
   * @param secret the link's `connectToken`
   * @throws {@link GrantkeeperError} 401 `invalid_connect_token` (unknown, malformed, other provider),
   *   410 `connect_link_used` (a connect through it completed), 410 `connect_link_expired`
   */
  async open(providerId: string, secret: string): Promise<OpenedSession> {
    const invalid = () => new GrantkeeperError(ErrorCode.invalidConnectToken, "this connect link is not valid; ask the app for a new one");
    if (!SECRET_FORMAT.test(secret)) throw invalid();
    const row = await this.d.repo.findBySecret(secret);
    if (!row || row.provider_id !== providerId) throw invalid();
    if (row.completed_at !== null) throw linkUsed();
    if (row.expires_at <= this.d.clock.now()) throw new GrantkeeperError(ErrorCode.connectLinkExpired, "this connect link has expired; ask the app for a new one");
    return openedSession(row);
  }
}

/** `connect_link_used` (kind `gone`): a connect through this link already completed. */
export function linkUsed(): GrantkeeperError {
  return new GrantkeeperError(ErrorCode.connectLinkUsed, "this connect link was already used; ask the app for a new one");
}
