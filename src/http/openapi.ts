/**
 * `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API, generated
 * from one route table ({@link OPERATIONS}) whose request schemas are the
 * very zod schemas the routes validate with (exported by src/http/routes/*)
 * and whose response schemas are src/http/schemas.ts. Every route the app
 * registers must appear here (test/api/openapi.integration.test.ts checks
 * `app.routes` against it, and that public routes are exactly the ones
 * marked `security: []`); `redocly lint` runs on it in the same test.
 */
import { z } from "zod";
import { providerInputSchema } from "../providers/definition.js";
import { importConnectionSchema, listQuery as connectionListQuery, pageQuery, reportStateSchema } from "./routes/connections.js";
import { newConnectSessionSchema } from "./routes/connectSessions.js";
import { listQuery as integrationListQuery, newIntegrationSchema, preflightSchema, webhookSettingsSchema } from "./routes/integrations.js";
import { listQuery as jobListQuery } from "./routes/jobs.js";
import { query as alertQuery } from "./routes/alerts.js";
import { serverSideQuery } from "./routes/oauth.js";
import {
  acceptedSchema,
  accessTokenSchema,
  alertSchema,
  callbackResultSchema,
  connectionEventSchema,
  connectionSchema,
  connectSessionSchema,
  createdIntegrationSchema,
  deletedConnectionSchema,
  healthSchema,
  integrationEventSchema,
  integrationSchema,
  jobSchema,
  listOf,
  pageOf,
  preflightResultSchema,
  problemSchema,
  providerSchema,
  providerTemplateViewSchema,
  readySchema,
} from "./schemas.js";

/** Named response schemas, published under `#/components/schemas`. */
const COMPONENTS = {
  Problem: problemSchema,
  Connection: connectionSchema,
  ConnectionPage: pageOf(connectionSchema),
  ConnectionEventPage: pageOf(connectionEventSchema),
  Provider: providerSchema,
  ProviderList: listOf(providerSchema),
  ProviderTemplateList: listOf(providerTemplateViewSchema),
  Integration: integrationSchema,
  CreatedIntegration: createdIntegrationSchema,
  IntegrationPage: pageOf(integrationSchema),
  IntegrationEventPage: pageOf(integrationEventSchema),
  ReplayedIntegration: integrationSchema.extend({ replayed: z.number().int().describe("jobs queued again") }),
  Job: jobSchema,
  JobPage: pageOf(jobSchema),
  AlertList: listOf(alertSchema),
  PreflightResult: preflightResultSchema,
  AccessToken: accessTokenSchema,
  ConnectSession: connectSessionSchema,
  DeletedConnection: deletedConnectionSchema,
  Accepted: acceptedSchema,
  CallbackResult: callbackResultSchema,
  Health: healthSchema,
  Readiness: readySchema,
} as const satisfies Record<string, z.ZodType>;

/** Name of a schema in {@link COMPONENTS}. */
type ComponentName = keyof typeof COMPONENTS;

/** One answer of an operation: a JSON component, a problem, or another media type. */
type Answer = { description: string; json?: ComponentName; media?: string; headers?: Record<string, string> };

/** HTTP methods an operation may have (lower case, as in OpenAPI). */
type Method = "get" | "head" | "post" | "put" | "patch" | "delete" | "options";

/** One row of the route table. */
export interface Operation {
  method: Method;
  /** OpenAPI path (`{id}`); hono's `:id` form is derived from it. */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  /** `public`: no key (the route authenticates the caller itself); `optional`: public, or with the key for server-side use. @defaultValue bearer */
  auth?: "public" | "optional";
  /** Path parameters and their meaning. */
  params?: Record<string, string>;
  /** The zod schema the route validates its query with. */
  query?: z.ZodType;
  /** Query parameters the route reads without a schema (the OAuth callback's). */
  rawQuery?: Record<string, string>;
  /** The zod schema the route validates its JSON body with, or `raw` for any bytes. */
  body?: z.ZodType | "raw";
  responses: Record<number, Answer | string>;
}

const ok = (json: ComponentName, description = "OK"): Answer => ({ description, json });
const PROXY_METHODS: Method[] = ["get", "head", "post", "put", "patch", "delete", "options"];

function proxyOperations(): Operation[] {
  const out: Operation[] = [];
  for (const withPath of [true, false]) {
    for (const method of PROXY_METHODS) {
      const name = method[0]!.toUpperCase() + method.slice(1);
      out.push({
        method,
        path: withPath ? "/v1/proxy/{connectionId}/{path}" : "/v1/proxy/{connectionId}",
        operationId: `proxy${name}${withPath ? "" : "Root"}`,
        tag: "proxy",
        summary: `${method.toUpperCase()} the provider's API${withPath ? " at apiBaseUrl + path" : " at apiBaseUrl"} with a fresh token`,
        description:
          "Calls the provider's API under `apiBaseUrl`'s path (its `{placeholders}` filled from the connection's `connectionConfig`; the query is kept as sent) with the connection's fresh bearer token. A 401 (or the provider's `apiAuthFailure` match) refreshes once and retries once. The answer is the provider's, streamed, hop-by-hop headers and `Set-Cookie` removed, `X-Content-Type-Options: nosniff` and a sandbox CSP added. Any other method: `405 method_not_allowed` with `Allow`.",
        params: { connectionId: "conn_…", ...(withPath ? { path: "path under apiBaseUrl (may contain `/`); non-canonical paths are refused (400)" } : {}) },
        ...(method === "get" || method === "head" || method === "options" ? {} : { body: "raw" as const }),
        responses: {
          200: { description: "The provider's answer, any status, streamed as is", media: "*/*" },
          400: "invalid_proxy_path, non_canonical_path",
          404: "connection_not_found",
          405: "method_not_allowed (with Allow)",
          409: "connection_error: the grant is dead",
          422: "no_api_base_url, connection_config_missing, invalid_connection_config",
          502: "upstream_unreachable",
          503: "token_unavailable (Retry-After)",
          504: "upstream_timeout",
        },
      });
    }
  }
  return out;
}

/**
 * Every operation of the HTTP API. Adding a route means adding its row
 * here; the test fails otherwise.
 */
export const OPERATIONS: readonly Operation[] = [
  { method: "get", path: "/healthz", operationId: "getHealth", tag: "health", summary: "Liveness", auth: "public", responses: { 200: ok("Health") } },
  { method: "get", path: "/readyz", operationId: "getReadiness", tag: "health", summary: "Readiness: the store is reachable and migrated", auth: "public", responses: { 200: ok("Readiness", "Ready"), 503: { description: "Not ready", json: "Readiness" } } },
  { method: "get", path: "/openapi.json", operationId: "getOpenApiDocument", tag: "health", summary: "This document", auth: "public", responses: { 200: { description: "OpenAPI 3.1", media: "application/json" } } },
  { method: "get", path: "/reference", operationId: "getApiReference", tag: "health", summary: "This document rendered as an HTML page (no external scripts or fonts)", responses: { 200: { description: "HTML", media: "text/html" } } },
  { method: "get", path: "/metrics", operationId: "getMetrics", tag: "health", summary: "Prometheus metrics: counts and states only, no ids or secrets in any label", auth: "public", responses: { 200: { description: "Prometheus text exposition", media: "text/plain" } } },

  { method: "put", path: "/v1/providers/{providerId}", operationId: "putProvider", tag: "providers", summary: "Create or replace a provider (from a catalogue template or by hand)", params: { providerId: "lowercase id" }, body: providerInputSchema, responses: { 200: ok("Provider"), 422: "validation_failed, invalid_provider, invalid_provider_id, unknown_template" } },
  { method: "get", path: "/v1/providers", operationId: "listProviders", tag: "providers", summary: "Every provider (client secrets never returned; hasClientSecret)", responses: { 200: ok("ProviderList") } },
  { method: "get", path: "/v1/providers/{providerId}", operationId: "getProvider", tag: "providers", summary: "One provider, with its token endpoint breaker", params: { providerId: "lowercase id" }, responses: { 200: ok("Provider"), 404: "provider_not_found", 422: "invalid_provider_id" } },
  { method: "get", path: "/v1/catalogue", operationId: "listProviderTemplates", tag: "providers", summary: "Provider templates", responses: { 200: ok("ProviderTemplateList") } },

  {
    method: "post",
    path: "/v1/connections",
    operationId: "importConnection",
    tag: "connections",
    summary: "Import a grant (or obtain a client-credentials token)",
    body: importConnectionSchema,
    responses: { 201: ok("Connection", "Created"), 200: ok("Connection", "The entity's existing connection got the new grant"), 404: "provider_not_found", 422: "validation_failed, connection_config_missing, invalid_connection_config", 429: "refresh_rate_limited (Retry-After)", 502: "token_request_failed (client credentials): nothing stored" },
  },
  { method: "get", path: "/v1/connections", operationId: "listConnections", tag: "connections", summary: "Connections, filtered, paged", query: connectionListQuery, responses: { 200: ok("ConnectionPage") } },
  { method: "get", path: "/v1/connections/{id}", operationId: "getConnection", tag: "connections", summary: "One connection (never tokens)", params: { id: "conn_…" }, responses: { 200: ok("Connection"), 404: "connection_not_found" } },
  { method: "patch", path: "/v1/connections/{id}", operationId: "reportConnectionState", tag: "connections", summary: "Report the host app's state (pending, syncing, ready)", params: { id: "conn_…" }, body: reportStateSchema, responses: { 200: ok("Connection"), 404: "connection_not_found", 409: "connection_error, connection_degraded: grantkeeper owns the state" } },
  { method: "delete", path: "/v1/connections/{id}", operationId: "deleteConnection", tag: "connections", summary: "Revoke at the provider (RFC 7009) when it has an endpoint, then delete", params: { id: "conn_…" }, responses: { 200: ok("DeletedConnection"), 404: "connection_not_found" } },
  { method: "get", path: "/v1/connections/{id}/events", operationId: "listConnectionEvents", tag: "connections", summary: "The connection's history, newest first", params: { id: "conn_…" }, query: pageQuery, responses: { 200: ok("ConnectionEventPage"), 404: "connection_not_found" } },
  {
    method: "post",
    path: "/v1/connections/{id}/token",
    operationId: "getAccessToken",
    tag: "connections",
    summary: "A fresh access token (refreshed first when due); Cache-Control: no-store",
    params: { id: "conn_…" },
    responses: { 200: ok("AccessToken"), 404: "connection_not_found", 409: "connection_error: the grant is dead, reconnect", 503: "token_unavailable (Retry-After): expired and the provider is down" },
  },
  { method: "post", path: "/v1/connections/{id}/refresh", operationId: "refreshConnection", tag: "connections", summary: "Refresh now (single-flight, rate limited); the connection after the attempt", params: { id: "conn_…" }, responses: { 200: ok("Connection"), 404: "connection_not_found", 429: "refresh_rate_limited (Retry-After)" } },

  { method: "post", path: "/v1/connect-sessions", operationId: "createConnectSession", tag: "connect", summary: "Mint a single-use, short-lived connect link for one end user (one per click)", body: newConnectSessionSchema, responses: { 201: ok("ConnectSession", "Created"), 404: "provider_not_found", 422: "validation_failed, invalid_return_to" } },
  {
    method: "get",
    path: "/v1/connect/{providerId}",
    operationId: "openConnectLink",
    tag: "connect",
    summary: "A connect link: 302 to the authorization endpoint (code, PKCE S256, state)",
    description: "Opened by the end user's browser with the session's `connectToken`, without a key; sets an HttpOnly cookie binding the state to this browser. With the API key and `entityId` instead (server-side use): mints a session and answers 302 to its link. A browser asking for HTML gets a page instead of a problem.",
    auth: "optional",
    params: { providerId: "lowercase id" },
    query: z.object({ connectToken: z.string().optional().describe("the connect session's secret (single use)") }).extend(serverSideQuery.shape),
    responses: { 302: { description: "To the authorization endpoint, or (with the key) to a fresh connect link", headers: { location: "where to go" } }, 401: "invalid_connect_token, or unauthorized without a token and a key", 404: "provider_not_found", 410: "connect_link_used, connect_link_expired", 422: "validation_failed" },
  },
  {
    method: "get",
    path: "/v1/oauth/callback",
    operationId: "oauthCallback",
    tag: "connect",
    summary: "OAuth redirection endpoint (RFC 6749 §3.1.2): stores the grant, consumes the session",
    description: "Authenticated by its single-use `state` and the browser-binding cookie. With the session's `returnTo`: 302 there with `status=connected&connectionId=…` or `status=error&error=<code>[&reason=…][&providerError=…]`. Without: JSON, or for a browser (Accept text/html) a page saying what happened and what to do next.",
    auth: "public",
    rawQuery: { code: "authorization code (RFC 6749 §4.1.2)", state: "the flow's state", error: "the provider's error (RFC 6749 §4.1.2.1)", error_description: "the provider's text", iss: "issuer (RFC 9207)" },
    responses: { 200: ok("CallbackResult", "Connected (JSON; a browser gets an HTML page)"), 302: { description: "To returnTo with the outcome in the query", headers: { location: "returnTo" } }, 400: "invalid_state, invalid_callback, state_not_bound", 410: "connect_link_used, connect_link_expired", 502: "code_exchange_failed" },
  },

  { method: "post", path: "/v1/integrations", operationId: "createIntegration", tag: "integrations", summary: "Create an integration (ENABLED, or ERROR when a connection is already dead)", body: newIntegrationSchema, responses: { 201: ok("CreatedIntegration", "Created; a generated deliverySecret is returned once"), 404: "connection_not_found" } },
  { method: "get", path: "/v1/integrations", operationId: "listIntegrations", tag: "integrations", summary: "Integrations, filtered, paged", query: integrationListQuery, responses: { 200: ok("IntegrationPage") } },
  { method: "get", path: "/v1/integrations/{id}", operationId: "getIntegration", tag: "integrations", summary: "One integration", params: { id: "int_…" }, responses: { 200: ok("Integration"), 404: "integration_not_found" } },
  { method: "get", path: "/v1/integrations/{id}/events", operationId: "listIntegrationEvents", tag: "integrations", summary: "Status history, newest first", params: { id: "int_…" }, query: pageQuery, responses: { 200: ok("IntegrationEventPage"), 404: "integration_not_found" } },
  { method: "put", path: "/v1/integrations/{id}/webhook", operationId: "setIntegrationWebhook", tag: "integrations", summary: "How inbound webhooks are signed (secret required unless none)", params: { id: "int_…" }, body: webhookSettingsSchema, responses: { 200: ok("Integration"), 404: "integration_not_found", 409: "integration_outbound_only" } },
  { method: "delete", path: "/v1/integrations/{id}/webhook", operationId: "removeIntegrationWebhook", tag: "integrations", summary: "Take no inbound webhooks any more", params: { id: "int_…" }, responses: { 200: ok("Integration"), 404: "integration_not_found", 409: "integration_outbound_only" } },
  { method: "post", path: "/v1/integrations/{id}/disable", operationId: "disableIntegration", tag: "integrations", summary: "User intent: DISABLED (settings kept)", params: { id: "int_…" }, responses: { 200: ok("Integration"), 404: "integration_not_found" } },
  { method: "post", path: "/v1/integrations/{id}/enable", operationId: "enableIntegration", tag: "integrations", summary: "User intent: ENABLED", params: { id: "int_…" }, responses: { 200: ok("Integration"), 404: "integration_not_found", 409: "connection_error: a dependency is dead" } },
  { method: "post", path: "/v1/integrations/{id}/replay", operationId: "replayIntegrationJobs", tag: "jobs", summary: "Run an ENABLED integration's parked and dead jobs again, in arrival order", params: { id: "int_…" }, responses: { 200: ok("ReplayedIntegration"), 404: "integration_not_found", 409: "integration_not_enabled" } },

  {
    method: "post",
    path: "/v1/webhooks/{integrationId}",
    operationId: "receiveWebhook",
    tag: "jobs",
    summary: "Webhook ingress: raw body, signature checked per integration; 202 only after the job is committed",
    description: "Signing schemes: github (X-Hub-Signature-256), slack (X-Slack-Signature v0 + timestamp), stripe (Stripe-Signature), hmac-sha256 (X-Signature-256), none (by name only). Slack's url_verification is answered 200 with its challenge.",
    auth: "public",
    params: { integrationId: "int_…" },
    body: "raw",
    responses: { 202: ok("Accepted", "Accepted: queued, parked, discarded or duplicate"), 200: ok("Accepted", "Slack url_verification: the challenge"), 401: "invalid_signature, webhook_signing_not_configured", 404: "integration_not_found", 413: "payload_too_large" },
  },
  { method: "get", path: "/v1/jobs", operationId: "listJobs", tag: "jobs", summary: "Jobs in arrival order, filtered, paged (never bodies)", query: jobListQuery, responses: { 200: ok("JobPage") } },
  { method: "get", path: "/v1/jobs/{id}", operationId: "getJob", tag: "jobs", summary: "One job (never its body)", params: { id: "job_…" }, responses: { 200: ok("Job"), 404: "job_not_found" } },

  { method: "get", path: "/v1/alerts", operationId: "listAlerts", tag: "alerts", summary: "Alerts since a time (default: the last 24 h), oldest first, one per episode phase", query: alertQuery, responses: { 200: ok("AlertList") } },
  { method: "post", path: "/v1/preflight", operationId: "preflight", tag: "connections", summary: "Which of an entity's required providers are usable, missing or dead, with connect links", body: preflightSchema, responses: { 200: ok("PreflightResult") } },
  ...proxyOperations(),
];

const problemAnswer = (description: string) => ({ description, content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } } });

/** JSON Schema (2020-12, as OpenAPI 3.1 uses) of a zod schema, without `$schema`. */
function jsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-2020-12" }) as Record<string, unknown>;
  return rest;
}

function parametersOf(op: Operation): object[] {
  const out: object[] = [];
  for (const [name, description] of Object.entries(op.params ?? {})) out.push({ name, in: "path", required: true, description, schema: { type: "string" } });
  if (op.query) {
    const s = jsonSchema(op.query, "input") as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    for (const [name, prop] of Object.entries(s.properties ?? {})) {
      const { description, ...schema } = prop;
      out.push({ name, in: "query", required: s.required?.includes(name) ?? false, ...(description ? { description } : {}), schema });
    }
  }
  for (const [name, description] of Object.entries(op.rawQuery ?? {})) out.push({ name, in: "query", required: false, description, schema: { type: "string" } });
  return out;
}

function responsesOf(op: Operation): Record<string, object> {
  const out: Record<string, object> = {};
  const add = (status: number, answer: Answer | string) => {
    if (typeof answer === "string") {
      out[String(status)] = problemAnswer(answer);
      return;
    }
    const content = answer.json ? { "application/json": { schema: { $ref: `#/components/schemas/${answer.json}` } } } : answer.media ? { [answer.media]: { schema: {} } } : undefined;
    const headers = answer.headers ? Object.fromEntries(Object.entries(answer.headers).map(([h, d]) => [h, { description: d, schema: { type: "string" } }])) : undefined;
    out[String(status)] = { description: answer.description, ...(content ? { content } : {}), ...(headers ? { headers } : {}) };
  };
  for (const [status, answer] of Object.entries(op.responses)) add(Number(status), answer);
  // What every route of a kind can answer, so no operation forgets it.
  if (op.body instanceof z.ZodType) {
    out["400"] ??= problemAnswer("malformed_json: the body is not JSON");
    out["413"] ??= problemAnswer("payload_too_large");
    out["415"] ??= problemAnswer("unsupported_media_type: send application/json");
  }
  if (op.body instanceof z.ZodType || op.query) out["422"] ??= problemAnswer("validation_failed / invalid_query: every field issue in `errors`; nothing changed");
  if (op.auth === undefined) out["401"] ??= problemAnswer("unauthorized: send Authorization: Bearer <GRANTKEEPER_API_KEY>");
  // The canonical-path check runs before every route (src/http/app.ts).
  out["400"] ??= problemAnswer("non_canonical_path: percent-encoded unreserved characters, encoded slashes, dot or empty segments");
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

function operationObject(op: Operation): object {
  const security = op.auth === "public" ? [] : op.auth === "optional" ? [{}, { apiKey: [] }] : [{ apiKey: [] }];
  const parameters = parametersOf(op);
  const requestBody =
    op.body === "raw"
      ? { required: op.operationId === "receiveWebhook", content: { "*/*": { schema: {} } } }
      : op.body
        ? { required: true, content: { "application/json": { schema: jsonSchema(op.body, "input") } } }
        : undefined;
  return {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    security,
    ...(parameters.length ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses: responsesOf(op),
  };
}

let cached: Record<string, unknown> | undefined;

/**
 * The OpenAPI 3.1 document (built once from {@link OPERATIONS}).
 * @returns a plain JSON object: `paths` keyed by OpenAPI path, `components.schemas` from src/http/schemas.ts
 */
export function openApiDocument(): Record<string, unknown> {
  if (cached) return cached;
  const paths: Record<string, Record<string, object>> = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operationObject(op);
  cached = {
    openapi: "3.1.0",
    info: {
      title: "grantkeeper",
      version: "1.1",
      description:
        "Keeps third-party OAuth 2.0 grants alive and the integrations on top of them healthy. Every route needs `Authorization: Bearer <key>` except the ones marked public (health, metrics, this document, connect links, the OAuth callback, webhooks). Errors are RFC 9457 problems with a stable `code`.",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    servers: [{ url: "http://127.0.0.1:7420", description: "default local instance (GRANTKEEPER_PUBLIC_URL in production)" }],
    tags: [
      { name: "health", description: "Liveness, readiness, metrics and this reference" },
      { name: "providers", description: "OAuth 2.0 provider definitions and the catalogue" },
      { name: "connections", description: "Grants: import, list, tokens, refresh, preflight" },
      { name: "connect", description: "The authorization code flow: connect sessions, links, callback" },
      { name: "integrations", description: "Integrations that depend on connections" },
      { name: "jobs", description: "Webhook ingress and the job queue" },
      { name: "alerts", description: "Alert episodes" },
      { name: "proxy", description: "The provider's API through grantkeeper" },
    ],
    components: {
      securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "GRANTKEEPER_API_KEY (one of its comma-separated keys)" } },
      schemas: Object.fromEntries(Object.entries(COMPONENTS).map(([name, schema]) => [name, jsonSchema(schema, "output")])),
    },
    paths,
  };
  return cached;
}
