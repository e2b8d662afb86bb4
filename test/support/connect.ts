/**
 * The connect flow as an end user's browser runs it: open a connect link,
 * log in and consent at the test authorization server, and deliver the
 * callback with the same cookie jar (the state is bound to that browser).
 */
import { expect } from "vitest";
import { browserFetch, completeLogin, CookieJar } from "./login.js";

/** What {@link connectInBrowser} saw. */
export interface BrowserConnect {
  /** The callback URL the provider redirected to (code and state in its query). */
  callback: string;
  /** The callback's answer to this browser. */
  response: Response;
  /** Its JSON body when the answer was JSON, else undefined. */
  body: any;
  /** The browser's cookies. */
  jar: CookieJar;
}

/**
 * Open `link` in a fresh browser (or `opts.jar`), log in as `accountId`, and
 * deliver the callback in that browser.
 * @param opts.accept the callback's Accept header @defaultValue "application/json"
 */
export async function connectInBrowser(link: string, opts: { accountId?: string; accept?: string; jar?: CookieJar } = {}): Promise<BrowserConnect> {
  const jar = opts.jar ?? new CookieJar();
  const callback = await completeLogin(link, { accountId: opts.accountId ?? "user-1", jar });
  const response = await browserFetch(jar, callback, { headers: { accept: opts.accept ?? "application/json" } });
  const body = (response.headers.get("content-type") ?? "").includes("json") ? await response.json() : undefined;
  return { callback, response, body, jar };
}

/** What a connect session is minted with (the fields tests use). */
export interface SessionRequest {
  providerId: string;
  entityId: string;
  scopes?: string[];
  connectionConfig?: Record<string, string>;
}

/** The part of a Grantkeeper these helpers need. */
export interface SessionMinter {
  connectSessions: { create(input: SessionRequest): Promise<{ connectUrl: string }> };
}

/**
 * Mint a connect session for (providerId, entityId) on `gk` and complete it
 * in a fresh browser logged in as `accountId` (default: the entity id).
 */
export async function connectEntity(gk: SessionMinter, providerId: string, entityId: string, opts: { accountId?: string; accept?: string } = {}): Promise<BrowserConnect> {
  const { connectUrl } = await gk.connectSessions.create({ providerId, entityId });
  return connectInBrowser(connectUrl, { accountId: opts.accountId ?? entityId, ...(opts.accept ? { accept: opts.accept } : {}) });
}

/** The Connection a completed connect answers with (the fields tests read). */
export interface ConnectedConnection {
  id: string;
  scope: string;
  expiresAt: string | null;
  expiresAtAssumed: boolean;
  nextRefreshAt: string | null;
  connectionConfig: Record<string, string>;
  [field: string]: unknown;
}

/**
 * Open `link` in a fresh browser as `accountId`, log in and consent, and
 * complete the callback, which must succeed.
 * @returns the connection the callback stored
 */
export async function connectVia(link: string, accountId: string): Promise<ConnectedConnection> {
  const { response, body } = await connectInBrowser(link, { accountId });
  expect(response.status).toBe(200);
  return (body as { connection: ConnectedConnection }).connection;
}

/**
 * Mint a connect session (scopes, connectionConfig as given) and complete it
 * as the entity's own account.
 * @returns the connection the callback stored
 */
export async function connectWith(gk: SessionMinter, session: SessionRequest): Promise<ConnectedConnection> {
  const { connectUrl } = await gk.connectSessions.create(session);
  return connectVia(connectUrl, session.entityId);
}
