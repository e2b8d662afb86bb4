/**
 * The provider catalogue: templates for common providers, kept as data in
 * `catalogue/providers.json` (endpoints, auth method, scope separator,
 * quirks, error-class overrides).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ErrorCode, fieldIssuesOf, GrantkeeperError, invalidInput } from "../domain/errors.js";
import {
  apiAuthFailureSchema,
  errorClassOverridesSchema,
  GRANT_TYPES,
  providerDefinitionSchema,
  providerErrorCodesSchema,
  quirksSchema,
  TOKEN_ENDPOINT_AUTH_METHODS,
  tokenRequestParamsSchema,
  tokenResponseConfigSchema,
  type ProviderDefinition,
  type ProviderInput,
} from "./definition.js";
import { fillTemplate } from "./placeholders.js";

/**
 * One catalogue entry. URLs may hold `{name}` placeholders; each is declared
 * in `placeholders` (filled by `templateParams` for the whole provider, or per
 * connection from its `connectionConfig`) or named in `tokenResponseConfig`.
 */
export const providerTemplateSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
    displayName: z.string().min(1),
    authorizationEndpoint: z.string().optional(),
    tokenEndpoint: z.string(),
    revocationEndpoint: z.string().optional(),
    tokenEndpointAuthMethod: z.enum(TOKEN_ENDPOINT_AUTH_METHODS),
    scopeSeparator: z.enum([" ", ","]),
    defaultScopes: z.array(z.string()).optional(),
    authorizationParams: z.record(z.string(), z.string()).optional(),
    apiBaseUrl: z.string(),
    refreshMarginSeconds: z.number().int().min(0).optional(),
    grantType: z.enum(GRANT_TYPES).optional(),
    quirks: quirksSchema,
    errorClassOverrides: errorClassOverridesSchema.optional(),
    providerErrorCodes: providerErrorCodesSchema.optional(),
    apiAuthFailure: apiAuthFailureSchema.optional(),
    tokenResponseConfig: tokenResponseConfigSchema.optional(),
    tokenRequestParams: tokenRequestParamsSchema.optional(),
    incrementalAuthorizationParams: z.record(z.string(), z.string()).optional(),
    /** Placeholder name → what its value is, for users filling `templateParams` or `connectionConfig`. */
    placeholders: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/), z.string().min(1)).optional(),
    notes: z.string(),
    /** The provider's own documentation page the endpoints and quirks come from. */
    docs: z.string().url(),
  })
  .strict();

/** A catalogue template. */
export type ProviderTemplate = z.infer<typeof providerTemplateSchema>;

const catalogueFileSchema = z.object({ version: z.literal(1), templates: z.array(providerTemplateSchema) });

function findCatalogueFile(): string {
  // Works from src/ (tests) and dist/src/ (built): walk up to the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "catalogue", "providers.json");
    try {
      readFileSync(candidate);
      return candidate;
    } catch {
      dir = dirname(dir);
    }
  }
  throw new Error("catalogue/providers.json not found next to the grantkeeper package");
}

let cached: Map<string, ProviderTemplate> | undefined;

/**
 * All templates by id. Read once.
 * @throws Error when the catalogue file is missing or invalid (a packaging bug)
 */
export function loadCatalogue(): Map<string, ProviderTemplate> {
  if (!cached) {
    const parsed = catalogueFileSchema.parse(JSON.parse(readFileSync(findCatalogueFile(), "utf8")));
    cached = new Map(parsed.templates.map((t) => [t.id, t]));
  }
  return cached;
}

/** Fill the placeholders `templateParams` gives; the others stay for each connection's `connectionConfig`. */
function fill(url: string | undefined, params: Record<string, string>, field: string): string | undefined {
  return url === undefined ? undefined : fillTemplate(url, params, field, "templateParams", true);
}

/**
 * Build a full provider definition from a `PUT` body, starting from its
 * template when it names one. Fields given in the body win over the template.
 * Placeholders `templateParams` does not fill stay in the URLs and are
 * resolved per connection from its `connectionConfig`.
 * @throws {@link GrantkeeperError} `unknown_template`, `invalid_provider` or `invalid_connection_config` (kind `invalid_input`)
 */
export function resolveProviderInput(id: string, input: ProviderInput): ProviderDefinition {
  let base: Partial<ProviderDefinition> = {};
  if (input.template !== undefined) {
    const t = loadCatalogue().get(input.template);
    if (!t) {
      throw new GrantkeeperError(ErrorCode.unknownTemplate, `no template ${JSON.stringify(input.template)}; known: ${[...loadCatalogue().keys()].join(", ")}`);
    }
    const params = input.templateParams ?? {};
    const unknown = Object.keys(params).filter((k) => !Object.hasOwn(t.placeholders ?? {}, k));
    if (unknown.length > 0) {
      throw new GrantkeeperError(ErrorCode.invalidProvider, `template ${t.id} has no placeholder ${unknown.join(", ")}; it has: ${Object.keys(t.placeholders ?? {}).join(", ") || "none"}`);
    }
    base = {
      template: t.id,
      displayName: t.displayName,
      authorizationEndpoint: input.authorizationEndpoint === undefined ? fill(t.authorizationEndpoint, params, "authorizationEndpoint") : undefined,
      tokenEndpoint: input.tokenEndpoint === undefined ? fill(t.tokenEndpoint, params, "tokenEndpoint") : undefined,
      revocationEndpoint: input.revocationEndpoint === undefined ? fill(t.revocationEndpoint, params, "revocationEndpoint") : undefined,
      tokenEndpointAuthMethod: t.tokenEndpointAuthMethod,
      scopes: t.defaultScopes ?? [],
      scopeSeparator: t.scopeSeparator,
      authorizationParams: t.authorizationParams ?? {},
      apiBaseUrl: input.apiBaseUrl === undefined ? fill(t.apiBaseUrl, params, "apiBaseUrl") : undefined,
      refreshMarginSeconds: t.refreshMarginSeconds,
      quirks: t.quirks,
      errorClassOverrides: t.errorClassOverrides ?? {},
      providerErrorCodes: t.providerErrorCodes,
      apiAuthFailure: t.apiAuthFailure,
      grantType: t.grantType,
      tokenResponseConfig: t.tokenResponseConfig,
      tokenRequestParams: t.tokenRequestParams,
      incrementalAuthorizationParams: t.incrementalAuthorizationParams,
    };
  }
  const { clientSecret: _secret, templateParams: _params, ...rest } = input;
  const merged = {
    ...stripUndefined(base),
    ...stripUndefined(rest),
    id,
    displayName: rest.displayName ?? base.displayName ?? id,
    tokenEndpointAuthMethod: rest.tokenEndpointAuthMethod ?? base.tokenEndpointAuthMethod ?? (input.clientSecret ? "client_secret_basic" : "none"),
    grantType: rest.grantType ?? base.grantType ?? "authorization_code",
    scopes: rest.scopes ?? base.scopes ?? [],
    scopeSeparator: rest.scopeSeparator ?? base.scopeSeparator ?? " ",
    authorizationParams: { ...(base.authorizationParams ?? {}), ...(rest.authorizationParams ?? {}) },
    quirks: { ...(base.quirks ?? {}), ...(rest.quirks ?? {}) },
    errorClassOverrides: { ...(base.errorClassOverrides ?? {}), ...(rest.errorClassOverrides ?? {}) },
  };
  const result = providerDefinitionSchema.safeParse(merged);
  if (!result.success) {
    throw invalidInput(fieldIssuesOf(result.error.issues), ErrorCode.invalidProvider);
  }
  if (result.data.tokenEndpointAuthMethod !== "none" && !input.clientSecret) {
    throw new GrantkeeperError(ErrorCode.invalidProvider, `tokenEndpointAuthMethod ${result.data.tokenEndpointAuthMethod} needs a clientSecret`);
  }
  return result.data;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
