/**
 * Preflight: before a deploy or a run, which of an entity's required
 * providers are usable, missing or dead — and, when a provider is required
 * with scopes, whether the grant holds them — with a connect or reconnect
 * link for each that needs the user. A usable connection (every state but
 * `error`, `syncing` included) is never asked again for what it already has
 * (the agentworkforce incident: users re-prompted right after connecting).
 */
import { ErrorCode, isGrantkeeperError } from "../domain/errors.js";
import { isUsable, type ConnectionState } from "../domain/states.js";
import { connectFlowConfig, parseConnectionConfig, type ConnectionConfig } from "../providers/connectionConfig.js";
import { grantTypeOf, type ProviderDefinition } from "../providers/definition.js";
import type { ProviderService } from "../providers/service.js";
import type { ConnectionRepository } from "../store/connections.js";
import { providerNotFound } from "./errors.js";

/** A required provider: its id, or its id and the scopes the grant must hold (contract v1.1). */
export type PreflightRequirement = string | { providerId: string; scopes?: string[] };

/** One provider's verdict. */
export interface PreflightItem {
  providerId: string;
  /** The grant is alive (every state but `error`); it may still lack scopes (see `missingScopes`). */
  usable: boolean;
  connectionId?: string;
  state?: ConnectionState;
  /** `none` (nothing to do), `connect` (missing), `reconnect` (dead, or missing required scopes). */
  action: "none" | "connect" | "reconnect";
  /** Required scopes the usable grant does not hold; the `connectUrl` asks for them. */
  missingScopes?: string[];
  /**
   * A fresh connect-session link (single use, short-lived) the end user can open without an API
   * key; it asks for the scopes the grant must end up with, and a reconnect link carries the
   * connection's settings its endpoints need (`{subdomain}`). Absent for a client-credentials
   * provider (there is no user to send), and for a first connect at a provider whose endpoints
   * need settings no connection holds yet: mint a connect session with its `connectionConfig`.
   */
  connectUrl?: string;
}

/** The whole answer: `ok` when no provider needs the user (every `action` is `none`). */
export interface PreflightResult {
  ok: boolean;
  entityId: string;
  providers: PreflightItem[];
}

/** The scopes a grant holds, from its `scope` string (space-separated per RFC 6749 §3.3; Slack and GitHub use commas). */
export function grantedScopes(scope: string): Set<string> {
  return new Set(scope.split(/[\s,]+/).filter(Boolean));
}

/**
 * What a link should ask for so that the grant ends up with `required`:
 * - no usable grant: the provider's default scopes plus the required ones;
 * - a usable grant lacking some: only the missing ones where the provider
 *   supports incremental authorization (`incrementalAuthorizationParams`,
 *   Google's `include_granted_scopes`), else everything the grant holds plus
 *   the required ones (a new consent replaces the grant's scopes).
 */
export function scopesToRequest(def: Pick<ProviderDefinition, "scopes" | "incrementalAuthorizationParams">, required: readonly string[], held: ReadonlySet<string> | undefined): string[] {
  if (held === undefined) return [...new Set([...def.scopes, ...required])];
  const missing = required.filter((s) => !held.has(s));
  return def.incrementalAuthorizationParams !== undefined ? missing : [...new Set([...held, ...required])];
}

/** Each provider once, with the union of the scopes it was required with. */
function normalize(requirements: readonly PreflightRequirement[]): Array<{ providerId: string; scopes: string[] }> {
  const byId = new Map<string, Set<string>>();
  for (const r of requirements) {
    const { providerId, scopes = [] } = typeof r === "string" ? { providerId: r } : r;
    const set = byId.get(providerId) ?? new Set<string>();
    for (const s of scopes) set.add(s);
    byId.set(providerId, set);
  }
  return [...byId].map(([providerId, scopes]) => ({ providerId, scopes: [...scopes] }));
}

/**
 * Mints the link for one provider that needs the user: a connect session's
 * `connectUrl`, asking for `opts.scopes` (the provider's defaults when
 * absent), carrying `opts.connectionConfig`.
 * @throws {@link GrantkeeperError} what `gk.connectSessions.create` throws
 */
export type ConnectLinkMinter = (providerId: string, entityId: string, opts: { scopes?: string[]; connectionConfig?: ConnectionConfig }) => Promise<string>;

/**
 * @param deps.connectLink mints a connect-session link
 * @param requirements provider ids, or `{providerId, scopes}`; repeats are merged
 * @throws {@link GrantkeeperError} 422 `provider_not_found` for providers that are not defined
 */
export async function preflight(
  deps: { connections: ConnectionRepository; providers: ProviderService; connectLink: ConnectLinkMinter },
  entityId: string,
  requirements: readonly PreflightRequirement[],
): Promise<PreflightResult> {
  const wanted = normalize(requirements);
  const defs = new Map<string, ProviderDefinition>();
  for (const { providerId } of wanted) {
    const def = await deps.providers.get(providerId);
    if (!def) throw providerNotFound(providerId, "body");
    defs.set(providerId, def);
  }
  const items: PreflightItem[] = [];
  for (const { providerId, scopes: required } of wanted) {
    const def = defs.get(providerId)!;
    // A client-credentials connection has no user: nothing to link to, no consent to extend.
    const userFlow = grantTypeOf(def) === "authorization_code";
    const link = async (held: ReadonlySet<string> | undefined, storedConfig: string | null | undefined): Promise<{ connectUrl?: string }> => {
      if (!userFlow) return {};
      const config = connectFlowConfig(def, parseConnectionConfig(storedConfig));
      const opts = { ...(required.length > 0 ? { scopes: scopesToRequest(def, required, held) } : {}), ...(Object.keys(config).length > 0 ? { connectionConfig: config } : {}) };
      try {
        return { connectUrl: await deps.connectLink(providerId, entityId, opts) };
      } catch (e) {
        // Settings only the host knows (a first Zendesk connect's subdomain): no link that would fail in the user's browser.
        if (isGrantkeeperError(e, ErrorCode.connectionConfigMissing) || isGrantkeeperError(e, ErrorCode.invalidConnectionConfig)) return {};
        throw e;
      }
    };
    const row = await deps.connections.findByEntity(providerId, entityId);
    if (!row) {
      items.push({ providerId, usable: false, action: "connect", ...(await link(undefined, undefined)) });
      continue;
    }
    const state = row.state;
    if (!isUsable(state)) {
      items.push({ providerId, usable: false, connectionId: row.id, state, action: "reconnect", ...(await link(undefined, row.connection_config)) });
      continue;
    }
    const held = grantedScopes(row.scope);
    // A grant whose scopes are unknown (imported without `scope`) is taken at its word: never re-prompt on a guess.
    const missing = userFlow && held.size > 0 ? required.filter((s) => !held.has(s)) : [];
    if (missing.length === 0) {
      items.push({ providerId, usable: true, connectionId: row.id, state, action: "none" });
      continue;
    }
    items.push({ providerId, usable: true, connectionId: row.id, state, action: "reconnect", missingScopes: missing, ...(await link(held, row.connection_config)) });
  }
  return { ok: items.every((i) => i.action === "none"), entityId, providers: items };
}
