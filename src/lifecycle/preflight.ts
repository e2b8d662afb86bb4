/**
 * Preflight: before a deploy or a run, which of an entity's required
 * providers are usable, missing or dead — with a connect or reconnect link
 * for each that is not. A usable connection (every state but `error`,
 * `syncing` included) is never asked again (the agentworkforce incident:
 * users re-prompted right after connecting).
 */
import { isUsable, type ConnectionState } from "../domain/states.js";
import { providerNotFound } from "./errors.js";
import type { ConnectionRepository } from "../store/connections.js";
import type { ProviderService } from "../providers/service.js";

/** One provider's verdict. */
export interface PreflightItem {
  providerId: string;
  usable: boolean;
  connectionId?: string;
  state?: ConnectionState;
  /** `none` (usable), `connect` (missing), `reconnect` (dead). */
  action: "none" | "connect" | "reconnect";
  /** A fresh connect-session link (single use, short-lived) the end user can open without an API key. */
  connectUrl?: string;
}

/** The whole answer: `ok` when every provider is usable. */
export interface PreflightResult {
  ok: boolean;
  entityId: string;
  providers: PreflightItem[];
}

/**
 * Mints the link for one provider that is not usable: a connect session's
 * `connectUrl`. Takes the scopes to ask for, so a caller that requires
 * scopes can pass them (the provider's defaults when absent).
 */
export type ConnectLinkMinter = (providerId: string, entityId: string, scopes?: string[]) => Promise<string>;

/**
 * @param connectLink mints a connect-session link for (providerId, entityId)
 * @throws {@link GrantkeeperError} 422 `provider_not_found` for providers that are not defined
 */
export async function preflight(
  deps: { connections: ConnectionRepository; providers: ProviderService; connectLink: ConnectLinkMinter },
  entityId: string,
  providerIds: string[],
): Promise<PreflightResult> {
  const unique = [...new Set(providerIds)];
  for (const p of unique) if (!(await deps.providers.get(p))) throw providerNotFound(p, "body");
  const items: PreflightItem[] = [];
  for (const providerId of unique) {
    const row = await deps.connections.findByEntity(providerId, entityId);
    if (!row) {
      items.push({ providerId, usable: false, action: "connect", connectUrl: await deps.connectLink(providerId, entityId) });
      continue;
    }
    const state = row.state;
    const usable = isUsable(state);
    items.push({ providerId, usable, connectionId: row.id, state, action: usable ? "none" : "reconnect", ...(usable ? {} : { connectUrl: await deps.connectLink(providerId, entityId) }) });
  }
  return { ok: items.every((i) => i.usable), entityId, providers: items };
}
