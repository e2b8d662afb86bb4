/**
 * Provider definitions: an authorization server plus the API it protects
 * (design.md "Vocabulary"). Validated with zod; a definition may start from a
 * catalogue template ({@link ./catalogue.ts}).
 */
import { z } from "zod";
import { MAX_JSON_PATH_DEPTH } from "../domain/apiAuthFailure.js";

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

const jsonPathSegment = "[A-Za-z0-9_$-]{1,64}";

/**
 * How the provider's API says "this token is no good" beyond a `401`
 * (api-contract.md v1.1; see {@link ../domain/apiAuthFailure.ts} for the
 * semantics): `statuses` alone, `json` rules alone (any status), or both
 * (a listed status *and* a matching rule). Slack:
 * `{json: [{path: "error", in: ["token_expired", "invalid_auth", "token_revoked", "not_authed"]}]}`.
 * The proxy and `ctx.fetch` treat a match like a `401`: refresh once, retry once.
 */
export const apiAuthFailureSchema = z
  .object({
    statuses: z.array(z.number().int().min(200).max(599)).min(1).max(20).optional(),
    json: z
      .array(
        z
          .object({
            /** Dotted path into the JSON body; numeric segments index arrays. */
            path: z.string().regex(new RegExp(`^${jsonPathSegment}(\\.${jsonPathSegment}){0,${MAX_JSON_PATH_DEPTH - 1}}$`), `dotted path of at most ${MAX_JSON_PATH_DEPTH} segments of letters, digits, '_', '$', '-'`),
            equals: z.union([z.string().max(256), z.number(), z.boolean(), z.null()]).optional(),
            in: z.array(z.string().min(1).max(256)).min(1).max(100).optional(),
          })
          .strict()
          .refine((r) => r.equals !== undefined || r.in !== undefined, { message: "give equals or in" }),
      )
      .min(1)
      .max(20)
      .optional(),
  })
  .strict()
  .refine((r) => r.statuses !== undefined || r.json !== undefined, { message: "give statuses, json or both" })
  .refine((r) => !r.statuses?.includes(401), { message: "401 is always an auth failure; list other statuses" });

/** Parsed {@link apiAuthFailureSchema}. */
export type ApiAuthFailure = z.infer<typeof apiAuthFailureSchema>;

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
    apiAuthFailure: apiAuthFailureSchema.optional(),
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
    apiAuthFailure: apiAuthFailureSchema.optional(),
  })
  .strict();

/**
 * A provider as grantkeeper uses it, without its client secret (the secret is
 * stored encrypted apart and read only to call the token endpoint).
 */
export type ProviderDefinition = z.infer<typeof providerDefinitionSchema>;

/** `providerId` path parameter validator. */
export const providerIdSchema = providerId;
