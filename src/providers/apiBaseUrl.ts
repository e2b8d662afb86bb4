/**
 * The API base URL of one connection. Today every connection of a provider
 * shares the definition's `apiBaseUrl`; api-contract.md v1.1 lets it hold
 * `{name}` placeholders filled from the connection's `connectionConfig`
 * (Salesforce's `instance_url`, a Zendesk subdomain) — that resolution
 * belongs here, the one place the proxy and `ctx.fetch` ask.
 */
import type { ProviderDefinition } from "./definition.js";

/**
 * @param provider the provider's definition
 * @param _connection the connection the call is made for (its per-connection settings, once connections carry them)
 * @returns the absolute base URL the call's path is confined under, or undefined when the provider has none
 */
export function apiBaseUrlFor(provider: Pick<ProviderDefinition, "apiBaseUrl">, _connection: { id: string }): string | undefined {
  return provider.apiBaseUrl;
}
