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
import { apiAuthFailureSchema, errorClassOverridesSchema, providerDefinitionSchema, providerErrorCodesSchema, quirksSchema, TOKEN_ENDPOINT_AUTH_METHODS, type ProviderDefinition, type ProviderInput } from "./definition.js";

/** One catalogue entry. URLs may hold `{placeholders}` listed in `placeholders`. */
export const providerTemplateSchema = z
  .object({
    id: z.string(),
    displayName: z.string(),
    authorizationEndpoint: z.string(),
    tokenEndpoint: z.string(),
    revocationEndpoint: z.string().optional(),
    tokenEndpointAuthMethod: z.enum(TOKEN_ENDPOINT_AUTH_METHODS),
    scopeSeparator: z.enum([" ", ","]),
    defaultScopes: z.array(z.string()).optional(),
    authorizationParams: z.record(z.string(), z.string()).optional(),
    apiBaseUrl: z.string(),
    refreshMarginSeconds: z.number().int().min(0).optional(),
    quirks: quirksSchema,
    errorClassOverrides: errorClassOverridesSchema.optional(),
    providerErrorCodes: providerErrorCodesSchema.optional(),
    apiAuthFailure: apiAuthFailureSchema.optional(),
    placeholders: z.array(z.string()).optional(),
    notes: z.string(),
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

function fill(url: string | undefined, params: Record<string, string>, field: string): string | undefined {
  if (url === undefined) return undefined;
  return url.replace(/\{([a-zA-Z_]+)\}/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined) {
      throw new GrantkeeperError(ErrorCode.templateParamMissing, `${field} needs templateParams.${name}`);
    }
    return v;
  });
}

/**
 * Build a full provider definition from a `PUT` body, starting from its
 * template when it names one. Fields given in the body win over the template.
 * @throws {@link GrantkeeperError} `unknown_template`, `template_param_missing` or `invalid_provider` (kind `invalid_input`)
 */
export function resolveProviderInput(id: string, input: ProviderInput): ProviderDefinition {
  let base: Partial<ProviderDefinition> = {};
  if (input.template !== undefined) {
    const t = loadCatalogue().get(input.template);
    if (!t) {
      throw new GrantkeeperError(ErrorCode.unknownTemplate, `no template ${JSON.stringify(input.template)}; known: ${[...loadCatalogue().keys()].join(", ")}`);
    }
    const params = input.templateParams ?? {};
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
    };
  }
  const { clientSecret: _secret, templateParams: _params, ...rest } = input;
  const merged = {
    ...stripUndefined(base),
    ...stripUndefined(rest),
    id,
    displayName: rest.displayName ?? base.displayName ?? id,
    tokenEndpointAuthMethod: rest.tokenEndpointAuthMethod ?? base.tokenEndpointAuthMethod ?? (input.clientSecret ? "client_secret_basic" : "none"),
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
