/**
 * A connection's `connectionConfig` (contract v1.1, Nango's term): the
 * per-connection settings a provider's URLs need — Salesforce's
 * `instance_url` from the token response, Zendesk's `subdomain` or
 * Microsoft's `tenant` from the connect session or the import. Never secrets:
 * the API shows them on every Connection.
 *
 * {@link apiBaseUrlFor} is the one resolver the proxy and `ctx.fetch` use;
 * {@link forTokenCalls} and {@link authorizationEndpointFor} resolve the OAuth
 * endpoints the same way.
 */
import { z } from "zod";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import { ownField, setOwnField } from "../domain/records.js";
import type { ProviderDefinition } from "./definition.js";
import { fillTemplate, placeholdersIn } from "./placeholders.js";

/** Per-connection settings: name → value. Shown on Connection; never a secret. */
export type ConnectionConfig = Readonly<Record<string, string>>;

/** Longest value kept (a URL with a path is the longest expected). */
export const CONNECTION_CONFIG_MAX_VALUE = 2048;

/** Key names that say "this is a secret": connectionConfig is stored in clear and shown in the API. */
const SECRET_LIKE_KEY = /secret|token|passw|api[_-]?key|private[_-]?key|credential/i;

/**
 * Validator of a `connectionConfig` a caller gives (a connect session, an
 * import, a client-credentials connection): at most 32 settings, names
 * `[A-Za-z_][A-Za-z0-9_.-]{0,63}` (only identifiers can fill a `{name}`
 * placeholder; other names are kept as the host's own settings), values of
 * at most 2 048 characters without control characters. Never secrets: a name
 * that reads like one (`…secret…`, `…token…`, `…password…`, `apiKey`, …) is
 * refused.
 */
export const connectionConfigSchema = z
  .record(
    z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, "a setting name: a letter or _ first, then letters, digits, _ . -, at most 64 characters")
      .refine((k) => !SECRET_LIKE_KEY.test(k), { message: "connectionConfig holds settings, never secrets (tokens, keys, passwords)" }),
    z.string().max(CONNECTION_CONFIG_MAX_VALUE).regex(/^[^\x00-\x1f\x7f]*$/, "no control characters"),
  )
  .refine((r) => Object.keys(r).length <= 32, { message: "at most 32 settings" });

/** A connection's config from its stored JSON (`{}` for null or a value that is not an object of strings). */
export function parseConnectionConfig(json: string | null | undefined): ConnectionConfig {
  if (!json) return {};
  try {
    const v = JSON.parse(json) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) return {};
    return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string"));
  } catch {
    return {};
  }
}

/**
 * The fields a provider names in `tokenResponseConfig`, taken from a token
 * response: strings as sent, finite numbers and booleans as text, anything
 * else (objects, arrays, over-long values) left out.
 * @param body the token endpoint's JSON answer
 */
export function configFromTokenResponse(body: Readonly<Record<string, unknown>>, names: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names ?? []) {
    const v = ownField(body, name);
    const text = typeof v === "string" ? v : (typeof v === "number" && Number.isFinite(v)) || typeof v === "boolean" ? String(v) : undefined;
    if (text !== undefined && text !== "" && text.length <= CONNECTION_CONFIG_MAX_VALUE) setOwnField(out, name, text);
  }
  return out;
}

/**
 * Placeholder names a connection of this provider must have values for, so
 * that every URL it will use resolves: the token and revocation endpoints and
 * the API base URL (the authorization endpoint only matters in the connect
 * flow, where the connect session's config fills it).
 * @param except names that will arrive later (the provider's `tokenResponseConfig`, on a connect)
 */
export function requiredConfigNames(def: ProviderDefinition, except: readonly string[] = []): string[] {
  const urls = [def.tokenEndpoint, def.revocationEndpoint, def.apiBaseUrl].filter((u): u is string => u !== undefined);
  return [...new Set(urls.flatMap(placeholdersIn))].filter((n) => !except.includes(n));
}

/**
 * The part of a stored connection's settings its connect flow needs: the
 * values of the placeholders in the authorization, token and revocation
 * endpoints (a reconnect link for a Zendesk connection carries its
 * `subdomain`, nothing else; the callback keeps the rest, merged).
 */
export function connectFlowConfig(def: ProviderDefinition, stored: ConnectionConfig): ConnectionConfig {
  const urls = [def.authorizationEndpoint, def.tokenEndpoint, def.revocationEndpoint].filter((u): u is string => u !== undefined);
  const names = new Set(urls.flatMap(placeholdersIn));
  return Object.fromEntries(Object.entries(stored).filter(([name]) => names.has(name)));
}

/**
 * Check that `config` holds a usable value for every name
 * {@link requiredConfigNames} lists, before anything is stored.
 * @throws {@link GrantkeeperError} `connection_config_missing` (422) naming the missing values,
 *   `invalid_connection_config` (422) for a value that may not fill its place
 */
export function assertConnectionConfigComplete(def: ProviderDefinition, config: ConnectionConfig, except: readonly string[] = []): void {
  const fields = { tokenEndpoint: def.tokenEndpoint, revocationEndpoint: def.revocationEndpoint, apiBaseUrl: def.apiBaseUrl };
  for (const [field, url] of Object.entries(fields)) if (url !== undefined) fillTemplate(url, config, field, "connectionConfig", true);
  const missing = requiredConfigNames(def, except).filter((n) => !Object.hasOwn(config, n));
  if (missing.length > 0) {
    throw new GrantkeeperError(ErrorCode.connectionConfigMissing, `provider ${def.id} needs ${missing.map((n) => `connectionConfig.${n}`).join(", ")} for this connection`, {
      details: { providerId: def.id, missing },
    });
  }
}

/**
 * The provider as a token endpoint call for one connection sees it: token
 * and revocation endpoints resolved from the connection's config.
 * @throws {@link GrantkeeperError} `connection_config_missing`, `invalid_connection_config` (422)
 */
export function forTokenCalls(def: ProviderDefinition, config: ConnectionConfig): ProviderDefinition {
  return {
    ...def,
    tokenEndpoint: fillTemplate(def.tokenEndpoint, config, "tokenEndpoint", "connectionConfig"),
    ...(def.revocationEndpoint !== undefined ? { revocationEndpoint: fillTemplate(def.revocationEndpoint, config, "revocationEndpoint", "connectionConfig") } : {}),
    // Only metadata in a token call; resolved where it can be, for the connect flow see authorizationEndpointFor.
    ...(def.authorizationEndpoint !== undefined ? { authorizationEndpoint: fillTemplate(def.authorizationEndpoint, config, "authorizationEndpoint", "connectionConfig", true) } : {}),
  };
}

/**
 * The authorization endpoint a connect flow with these settings sends the
 * browser to — checked when a connect session is minted and again when its
 * link is opened. The token endpoint must resolve too: the callback has to
 * exchange the code there.
 * @throws {@link GrantkeeperError} `grant_type_mismatch` for a provider without one (client credentials);
 *   `connection_config_missing`, `invalid_connection_config` (422)
 */
export function authorizationEndpointFor(def: ProviderDefinition, config: ConnectionConfig): string {
  if (def.authorizationEndpoint === undefined) {
    throw new GrantkeeperError(ErrorCode.grantTypeMismatch, `provider ${def.id} uses client credentials: it has no connect flow; create its connections with POST /v1/connections {providerId, entityId}`);
  }
  const endpoint = fillTemplate(def.authorizationEndpoint, config, "authorizationEndpoint", "connectionConfig");
  forTokenCalls(def, config);
  return endpoint;
}

/**
 * Where a connection's API calls go: the provider's `apiBaseUrl` with its
 * placeholders filled from the connection's `connectionConfig` — two
 * Salesforce connections, two orgs. The proxy and `ctx.fetch` call this.
 * @returns an https (or loopback http) URL without placeholders
 * @throws {@link GrantkeeperError} `no_api_base_url` (the provider has none), `connection_config_missing`
 *   (a value is missing), `invalid_connection_config` (a value may not fill its place) — all 422
 */
export function apiBaseUrlFor(def: Pick<ProviderDefinition, "id" | "apiBaseUrl">, connection: { connectionConfig: ConnectionConfig }): string {
  if (def.apiBaseUrl === undefined) {
    throw new GrantkeeperError(ErrorCode.noApiBaseUrl, `define apiBaseUrl for provider ${def.id} to call its API through grantkeeper`, { details: { providerId: def.id } });
  }
  return fillTemplate(def.apiBaseUrl, connection.connectionConfig, "apiBaseUrl", "connectionConfig");
}
