/**
 * Provider definitions: an authorization server plus the API it protects
 * (design.md "Vocabulary"). Validated with zod; a definition may start from a
 * catalogue template ({@link ./catalogue.ts}).
 */
import { z } from "zod";

/** RFC 6749 §2.3 client authentication methods grantkeeper supports at the token endpoint. */
export const TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"] as const;

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * True for an https URL, or an http URL on a loopback host (local development
 * and tests). RFC 9700 §2.6: token traffic must be protected in transit.
 */
export function isSecureOrLoopbackUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === "https:" || (u.protocol === "http:" && LOOPBACK_HOSTS.has(u.hostname));
  } catch {
    return false;
  }
}

/** True when the URL's host is a loopback address. */
export function isLoopbackUrl(value: string): boolean {
  try {
    return LOOPBACK_HOSTS.has(new URL(value).hostname);
  } catch {
    return false;
  }
}

const endpoint = z
  .string()
  .url()
  .refine(isSecureOrLoopbackUrl, { message: "must be https (http is allowed only on 127.0.0.1, localhost or [::1])" });

// The body only needs URLs; the https-or-loopback rule is checked on the resolved
// definition so it is reported as `invalid_provider` like every other definition problem.
const url = z.string().url();

/** Provider quirks that change how grantkeeper talks to it. */
export const quirksSchema = z
  .object({
    rotatesRefreshTokens: z.boolean().optional(),
    refreshTokenIdleExpirySeconds: z.number().int().positive().optional(),
    /** The token endpoint answers HTTP 200 with an `{"error": …}` body (GitHub). */
    errorsWithStatus200: z.boolean().optional(),
    expiresInMissing: z.boolean().optional(),
    refreshTokenOptional: z.boolean().optional(),
  })
  .strict();

/** Per-provider classification overrides keyed by RFC 6749 §5.2 `error` code. */
export const errorClassOverridesSchema = z.record(z.string().min(1), z.enum(["permanent", "provider", "transient"]));

/**
 * Where a provider's error bodies carry structured error codes, and what they
 * mean: Microsoft Entra answers `{"error":"invalid_grant","error_codes":[70008],…}`
 * — `{field: "error_codes", prefix: "AADSTS", classes: {"AADSTS70008": "permanent"}}`.
 * The classifier reads the codes, never `error_description`'s text.
 */
export const providerErrorCodesSchema = z
  .object({
    /** Top-level JSON field of the error body holding a code or an array of codes. */
    field: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/),
    /** Prepended to each code (Microsoft documents its codes as `AADSTS<n>`). */
    prefix: z.string().max(16).optional(),
    /** Code (with prefix) → class; codes not listed fall back to the `error` field's rules. */
    classes: errorClassOverridesSchema,
  })
  .strict();

/** Parsed {@link providerErrorCodesSchema}. */
export type ProviderErrorCodes = z.infer<typeof providerErrorCodesSchema>;

const providerId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "lowercase letters, digits, '-' and '_', at most 64 characters");

/**
 * Body of `PUT /v1/providers/{providerId}`. Endpoints may be omitted when a
 * `template` supplies them; `templateParams` fill `{placeholders}` in the
 * template's URLs (e.g. Microsoft's `{tenant}`).
 */
export const providerInputSchema = z
  .object({
    template: z.string().optional(),
    templateParams: z.record(z.string(), z.string().regex(/^[A-Za-z0-9._-]+$/)).optional(),
    displayName: z.string().min(1).max(200).optional(),
    issuer: url.optional(),
    authorizationEndpoint: url.optional(),
    tokenEndpoint: url.optional(),
    revocationEndpoint: url.optional(),
    clientId: z.string().min(1).max(512),
    clientSecret: z.string().min(1).max(4096).optional(),
    tokenEndpointAuthMethod: z.enum(TOKEN_ENDPOINT_AUTH_METHODS).optional(),
    scopes: z.array(z.string().min(1)).optional(),
    scopeSeparator: z.enum([" ", ","]).optional(),
    authorizationParams: z.record(z.string(), z.string()).optional(),
    apiBaseUrl: url.optional(),
    refreshMarginSeconds: z.number().int().min(0).max(86_400).optional(),
    quirks: quirksSchema.optional(),
    errorClassOverrides: errorClassOverridesSchema.optional(),
    providerErrorCodes: providerErrorCodesSchema.optional(),
  })
  .strict();

/** Parsed `PUT /v1/providers/{providerId}` body. */
export type ProviderInput = z.infer<typeof providerInputSchema>;

/** A complete provider (what the store keeps, secret apart). */
export const providerDefinitionSchema = z
  .object({
    id: providerId,
    template: z.string().optional(),
    displayName: z.string(),
    issuer: endpoint.optional(),
    authorizationEndpoint: endpoint,
    tokenEndpoint: endpoint,
    revocationEndpoint: endpoint.optional(),
    clientId: z.string().min(1),
    tokenEndpointAuthMethod: z.enum(TOKEN_ENDPOINT_AUTH_METHODS),
    scopes: z.array(z.string()),
    scopeSeparator: z.enum([" ", ","]),
    authorizationParams: z.record(z.string(), z.string()),
    apiBaseUrl: endpoint.optional(),
    refreshMarginSeconds: z.number().int().min(0).optional(),
    quirks: quirksSchema,
    errorClassOverrides: errorClassOverridesSchema,
    providerErrorCodes: providerErrorCodesSchema.optional(),
  })
  .strict();

/**
 * A provider as grantkeeper uses it, without its client secret (the secret is
 * stored encrypted apart and read only to call the token endpoint).
 */
export type ProviderDefinition = z.infer<typeof providerDefinitionSchema>;

/** `providerId` path parameter validator. */
export const providerIdSchema = providerId;
