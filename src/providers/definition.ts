/**
 * Provider definitions: an authorization server plus the API it protects
 * (design.md "Vocabulary"). Validated with zod; a definition may start from a
 * catalogue template ({@link ./catalogue.ts}).
 */
import { z } from "zod";
import { MAX_JSON_PATH_DEPTH } from "../domain/apiAuthFailure.js";
import { templateProblem } from "./placeholders.js";

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

/**
 * A provider URL that may hold `{name}` placeholders, resolved per connection
 * from its `connectionConfig` ({@link ./placeholders.ts}). Without
 * placeholders it is an https (or loopback http) URL like any endpoint.
 */
const templatedEndpoint = z
  .string()
  .min(1)
  .max(2048)
  .superRefine((value, ctx) => {
    const problem = templateProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

// The body only needs URL-shaped strings; the https-or-loopback rule is checked on the resolved
// definition so it is reported as `invalid_provider` like every other definition problem.
const url = z
  .string()
  .min(1)
  .max(2048)
  .refine((v) => /^([a-z][a-z0-9+.-]*:\/\/|\{)/i.test(v), { message: "must be an absolute URL (it may hold {name} placeholders, or open with one that stands for an origin)" });

/** RFC 6749 grant types a provider's connections are obtained with: §4.1 (a user's grant) or §4.4 (the client's own). */
export const GRANT_TYPES = ["authorization_code", "client_credentials"] as const;

/** One of {@link GRANT_TYPES}. */
export type GrantType = (typeof GRANT_TYPES)[number];

/** Token-response fields that could carry secrets: never copied into a connection's (visible) `connectionConfig`. */
const SECRET_FIELDS = new Set(["access_token", "refresh_token", "id_token", "client_secret", "code"]);

/**
 * Token-response fields copied into each connection's `connectionConfig`
 * (Salesforce `["instance_url"]`, Pipedrive `["api_domain"]`). Never a token.
 */
export const tokenResponseConfigSchema = z
  .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/).refine((f) => !SECRET_FIELDS.has(f), { message: "names a token; connectionConfig is never secret" }))
  .max(16);

/** Extra form parameters sent on every token request (Shopify `expiring=1`, Zendesk `expires_in`). Never credentials. */
export const tokenRequestParamsSchema = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/), z.string().max(512))
  .refine((r) => !Object.keys(r).some((k) => SECRET_FIELDS.has(k) || ["grant_type", "client_id", "scope", "redirect_uri", "code_verifier"].includes(k)), {
    message: "may not set grant_type, client_id, client_secret, scope, code, redirect_uri, code_verifier or tokens",
  });

/**
 * Provider behaviours that change what grantkeeper does (docs/providers.md
 * "Quirks" says what each one changes and why). Every field is read by code.
 */
export const quirksSchema = z
  .object({
    /**
     * Each refresh consumes the refresh token and returns a new one (QuickBooks, Xero). A refresh
     * answer without a new one is flagged and the consumed token is dropped instead of presented
     * again (reuse of a consumed token revokes the whole grant at providers with reuse detection).
     */
    rotatesRefreshTokens: z.boolean().optional(),
    /**
     * Refresh tokens die after this long unused (Xero 60 days, QuickBooks 100 days): the keep-alive
     * refreshes such grants at least twice per idle lifetime, whatever `refresh.keepAliveSeconds` says.
     */
    refreshTokenIdleExpirySeconds: z.number().int().positive().optional(),
    /** The token endpoint answers HTTP 200 with an `{"error": …}` body (GitHub). */
    errorsWithStatus200: z.boolean().optional(),
    /**
     * Token responses carry no `expires_in` although tokens expire (Salesforce: the org's session
     * timeout). The assumed lifetime is a guess, so a token past it is still handed out while the
     * provider cannot be reached; the API's 401 is the signal that it is dead.
     */
    expiresInMissing: z.boolean().optional(),
    /**
     * A grant may come without a refresh token (GitHub OAuth apps, Slack without rotation). Elsewhere
     * an expiring grant without one is flagged when it is stored (`refresh_token_missing`): it dies
     * at expiry, usually because `offline_access` or `access_type=offline` was not asked for.
     */
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
    grantType: z.enum(GRANT_TYPES).optional(),
    tokenResponseConfig: tokenResponseConfigSchema.optional(),
    tokenRequestParams: tokenRequestParamsSchema.optional(),
    incrementalAuthorizationParams: z.record(z.string().min(1).max(64), z.string().max(256)).optional(),
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
    /** Absent only for a `client_credentials` provider (there is no user to send anywhere). */
    authorizationEndpoint: templatedEndpoint.optional(),
    tokenEndpoint: templatedEndpoint,
    revocationEndpoint: templatedEndpoint.optional(),
    clientId: z.string().min(1),
    tokenEndpointAuthMethod: z.enum(TOKEN_ENDPOINT_AUTH_METHODS),
    scopes: z.array(z.string()),
    scopeSeparator: z.enum([" ", ","]),
    authorizationParams: z.record(z.string(), z.string()),
    apiBaseUrl: templatedEndpoint.optional(),
    refreshMarginSeconds: z.number().int().min(0).optional(),
    quirks: quirksSchema,
    errorClassOverrides: errorClassOverridesSchema,
    providerErrorCodes: providerErrorCodesSchema.optional(),
    apiAuthFailure: apiAuthFailureSchema.optional(),
    /** @defaultValue "authorization_code" (definitions stored before it existed have none) */
    grantType: z.enum(GRANT_TYPES).optional(),
    tokenResponseConfig: tokenResponseConfigSchema.optional(),
    tokenRequestParams: tokenRequestParamsSchema.optional(),
    /**
     * The provider supports incremental authorization: a link asking for more scopes asks for the
     * missing ones only, with these parameters (Google `{"include_granted_scopes": "true"}`);
     * without it a link asks for every scope the grant must end up with.
     */
    incrementalAuthorizationParams: z.record(z.string(), z.string()).optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if ((d.grantType ?? "authorization_code") === "authorization_code" && d.authorizationEndpoint === undefined) {
      ctx.addIssue({ code: "custom", path: ["authorizationEndpoint"], message: "required for grantType authorization_code" });
    }
  });

/**
 * A provider as grantkeeper uses it, without its client secret (the secret is
 * stored encrypted apart and read only to call the token endpoint).
 */
export type ProviderDefinition = z.infer<typeof providerDefinitionSchema>;

/** The grant type of a definition (`authorization_code` when it does not say). */
export function grantTypeOf(d: Pick<ProviderDefinition, "grantType">): GrantType {
  return d.grantType ?? "authorization_code";
}

/**
 * The `lastError.code`s that mean "this provider's configuration failed",
 * for which a redefinition retries the connections at once: the RFC 6749
 * client errors, a missing connection setting, whatever the provider's
 * overrides and structured codes classify as `provider` (Microsoft's
 * `AADSTS7000215`), and — for a client-credentials provider, whose every
 * permanent failure is its configuration — `invalid_grant`.
 */
export function providerLevelCodes(d: Pick<ProviderDefinition, "errorClassOverrides" | "providerErrorCodes" | "grantType">): string[] {
  const listed = [...Object.entries(d.errorClassOverrides), ...Object.entries(d.providerErrorCodes?.classes ?? {})].filter(([, c]) => c === "provider" || (grantTypeOf(d) === "client_credentials" && c === "permanent")).map(([code]) => code);
  return [...new Set(["invalid_client", "unauthorized_client", "unsupported_grant_type", "connection_config_missing", ...(grantTypeOf(d) === "client_credentials" ? ["invalid_grant"] : []), ...listed])];
}

/** What a definition says about refresh timing, for `policyForProvider` (src/domain/policy.ts). */
export function timingOf(d: Pick<ProviderDefinition, "refreshMarginSeconds" | "quirks">): { refreshMarginSeconds?: number; refreshTokenIdleExpirySeconds?: number } {
  return { refreshMarginSeconds: d.refreshMarginSeconds, refreshTokenIdleExpirySeconds: d.quirks.refreshTokenIdleExpirySeconds };
}

/** `providerId` path parameter validator. */
export const providerIdSchema = providerId;
