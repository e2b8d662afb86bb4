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
  /** A signed, expiring link the end user can open without an API key. */
  connectUrl?: string;
}

/** The whole answer: `ok` when every provider is usable. */
export interface PreflightResult {
  ok: boolean;
  entityId: string;
  providers: PreflightItem[];
}

/**
 * @param connectUrl makes a signed connect link for (providerId, entityId)
 * @throws {@link GrantkeeperError} 422 `provider_not_found` for providers that are not defined
 */
export async function preflight(
  deps: { connections: ConnectionRepository; providers: ProviderService; connectUrl: (providerId: string, entityId: string) => string },
  entityId: string,
  providerIds: string[],
): Promise<PreflightResult> {
  const unique = [...new Set(providerIds)];
  for (const p of unique) if (!(await deps.providers.get(p))) throw providerNotFound(p, "body");
  const items: PreflightItem[] = [];
  for (const providerId of unique) {
    const row = await deps.connections.findByEntity(providerId, entityId);
    if (!row) {
      items.push({ providerId, usable: false, action: "connect", connectUrl: deps.connectUrl(providerId, entityId) });
      continue;
    }
    const state = row.state as ConnectionState;
    const usable = isUsable(state);
    items.push({ providerId, usable, connectionId: row.id, state, action: usable ? "none" : "reconnect", ...(usable ? {} : { connectUrl: deps.connectUrl(providerId, entityId) }) });
  }
  return { ok: items.every((i) => i.usable), entityId, providers: items };
}
