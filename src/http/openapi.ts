/**
 * `GET /openapi.json`: an OpenAPI 3.1 description of `/v1`, with request
 * bodies generated from the same zod schemas the routes validate with.
 */
import { z } from "zod";
import { providerInputSchema } from "../providers/definition.js";
import { importConnectionSchema } from "./routes/connections.js";
import { newIntegrationSchema, preflightSchema, webhookSettingsSchema } from "./routes/integrations.js";
import { newConnectSessionSchema } from "./routes/connectSessions.js";
import { HOST_REPORTED_STATES } from "../domain/states.js";

const problem = { description: "RFC 9457 problem details", content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } } };
const json = (ref: string, description = "OK") => ({ description, content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } } });
const body = (schema: z.ZodType) => ({ required: true, content: { "application/json": { schema: z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) } } });
const idParam = (name: string) => ({ name, in: "path", required: true, schema: { type: "string" } });

let cached: object | undefined;

/** The OpenAPI 3.1 document (built once). */
export function openApiDocument(): object {
  cached ??= {
    openapi: "3.1.0",
    info: { title: "grantkeeper", version: "1", description: "Keeps OAuth 2.0 grants alive. Every /v1 route needs `Authorization: Bearer <key>` except the OAuth callback, webhooks and connect links (single-use connect sessions)." },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        Problem: { type: "object", required: ["type", "title", "status", "code"], properties: { type: { type: "string" }, title: { type: "string" }, status: { type: "integer" }, detail: { type: "string" }, code: { type: "string" }, errors: { type: "array", items: { type: "object", properties: { path: { type: "string" }, message: { type: "string" } } } } } },
        Connection: {
          type: "object",
          properties: {
            id: { type: "string" }, providerId: { type: "string" }, entityId: { type: "string" },
            state: { enum: ["pending", "syncing", "ready", "degraded", "error"] }, usable: { type: "boolean" }, scope: { type: "string" },
            expiresAt: { type: ["string", "null"], format: "date-time" }, expiresAtAssumed: { type: "boolean" },
            lastRefreshedAt: { type: ["string", "null"], format: "date-time" }, nextRefreshAt: { type: ["string", "null"], format: "date-time" },
            consecutiveFailures: { type: "integer" },
            lastError: { type: "object", properties: { class: { enum: ["transient", "permanent"] }, code: { type: "string" }, message: { type: "string" }, at: { type: "string", format: "date-time" } } },
            createdAt: { type: "string", format: "date-time" }, updatedAt: { type: "string", format: "date-time" },
          },
        },
        Provider: { type: "object", description: "A provider definition; the client secret is never returned (hasClientSecret says whether one is stored)." },
        Integration: {
          type: "object",
          properties: {
            id: { type: "string" }, name: { type: "string" }, entityId: { type: "string" },
            status: { enum: ["ENABLED", "DISABLED", "ERROR"] }, statusReason: { type: "string" },
            statusCause: { type: "object", properties: { connectionId: { type: "string" }, target: { type: "string" } } },
            connectionIds: { type: "array", items: { type: "string" } }, parkedJobs: { type: "integer" },
            createdAt: { type: "string", format: "date-time" }, updatedAt: { type: "string", format: "date-time" },
          },
        },
        Preflight: {
          type: "object",
          properties: {
            ok: { type: "boolean" }, entityId: { type: "string" },
            providers: { type: "array", items: { type: "object", properties: { providerId: { type: "string" }, usable: { type: "boolean" }, connectionId: { type: "string" }, state: { type: "string" }, action: { enum: ["none", "connect", "reconnect"] }, connectUrl: { type: "string" } } } },
          },
        },
        AccessToken: { type: "object", properties: { accessToken: { type: "string" }, tokenType: { type: "string" }, expiresAt: { type: ["string", "null"], format: "date-time" } } },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      "/v1/providers/{providerId}": {
        put: { summary: "Create or replace a provider", parameters: [idParam("providerId")], requestBody: body(providerInputSchema), responses: { 200: json("Provider"), 401: problem, 422: problem } },
        get: { summary: "One provider", parameters: [idParam("providerId")], responses: { 200: json("Provider"), 404: problem } },
      },
      "/v1/providers": { get: { summary: "List providers (secrets never returned)", responses: { 200: { description: "{items: Provider[]}" } } } },
      "/v1/catalogue": { get: { summary: "Provider templates", responses: { 200: { description: "{items: ProviderTemplate[]}" } } } },
      "/v1/connections": {
        post: { summary: "Import a grant", requestBody: body(importConnectionSchema), responses: { 201: json("Connection", "Created"), 200: json("Connection", "The entity's existing connection got the new grant"), 422: problem } },
        get: { summary: "List connections", parameters: ["entityId", "providerId", "state", "cursor", "limit"].map((n) => ({ name: n, in: "query", schema: { type: "string" } })), responses: { 200: { description: "{items: Connection[], nextCursor?}" } } },
      },
      "/v1/connections/{id}": {
        get: { summary: "One connection (never tokens)", parameters: [idParam("id")], responses: { 200: json("Connection"), 404: problem } },
        patch: { summary: "Host-reported state", parameters: [idParam("id")], requestBody: body(z.object({ state: z.enum(HOST_REPORTED_STATES) })), responses: { 200: json("Connection"), 409: problem } },
        delete: { summary: "Revoke at the provider (RFC 7009) and delete", parameters: [idParam("id")], responses: { 200: { description: "{id, deleted, revoked, revocationError?}" }, 404: problem } },
      },
      "/v1/connections/{id}/token": { post: { summary: "Ensure fresh, then return the access token", parameters: [idParam("id")], responses: { 200: json("AccessToken"), 409: problem, 503: problem } } },
      "/v1/connections/{id}/refresh": { post: { summary: "Refresh now (single-flight, rate limited)", parameters: [idParam("id")], responses: { 200: json("Connection"), 429: problem } } },
      "/v1/connections/{id}/events": { get: { summary: "Event history, newest first", parameters: [idParam("id")], responses: { 200: { description: "{items: ConnectionEvent[], nextCursor?}" } } } },
      "/v1/connect-sessions": {
        post: {
          summary: "Mint a single-use, short-lived connect link for one end user (one per click)",
          requestBody: body(newConnectSessionSchema),
          responses: { 201: { description: "{id, providerId, entityId, connectUrl, expiresAt}" }, 401: problem, 422: problem },
        },
      },
      "/v1/connect/{providerId}": {
        get: {
          summary: "A connect link (connectToken, no key): 302 to the authorization endpoint (code + PKCE S256 + state) with a cookie binding the state to this browser. With the key and entityId: mints a session and 302s to its link",
          security: [{}, { bearer: [] }],
          parameters: [idParam("providerId"), ...["connectToken", "entityId", "returnTo", "scope"].map((n) => ({ name: n, in: "query", schema: { type: "string" } }))],
          responses: { 302: { description: "Redirect" }, 401: problem, 410: problem, 422: problem },
        },
      },
      "/v1/integrations": {
        post: { summary: "Create an integration (ENABLED; a generated delivery secret is returned once)", requestBody: body(newIntegrationSchema), responses: { 201: json("Integration", "Created"), 422: problem } },
        get: { summary: "List integrations", parameters: ["entityId", "status", "connectionId", "cursor", "limit"].map((n) => ({ name: n, in: "query", schema: { type: "string" } })), responses: { 200: { description: "{items: Integration[], nextCursor?}" } } },
      },
      "/v1/integrations/{id}": { get: { summary: "One integration", parameters: [idParam("id")], responses: { 200: json("Integration"), 404: problem } } },
      "/v1/integrations/{id}/events": { get: { summary: "Status history, newest first", parameters: [idParam("id")], responses: { 200: { description: "{items: IntegrationEvent[], nextCursor?}" } } } },
      "/v1/integrations/{id}/disable": { post: { summary: "User intent: off, keep settings", parameters: [idParam("id")], responses: { 200: json("Integration") } } },
      "/v1/integrations/{id}/enable": { post: { summary: "User intent: on (409 while a dependency is dead)", parameters: [idParam("id")], responses: { 200: json("Integration"), 409: problem } } },
      "/v1/integrations/{id}/webhook": {
        put: { summary: "Set the inbound webhook signing (scheme and secret; `none` by name only)", parameters: [idParam("id")], requestBody: body(webhookSettingsSchema), responses: { 200: json("Integration"), 404: problem, 409: problem, 422: problem } },
        delete: { summary: "Take no inbound webhooks any more", parameters: [idParam("id")], responses: { 200: json("Integration"), 404: problem, 409: problem } },
      },
      "/v1/webhooks/{integrationId}": {
        post: {
          summary: "Webhook ingress: raw body, signature checked per integration (github, slack, stripe, hmac-sha256, none); 202 only after the job is committed",
          security: [],
          parameters: [idParam("integrationId")],
          requestBody: { required: true, content: { "*/*": { schema: {} } } },
          responses: { 202: { description: "{jobId, disposition: queued|parked|discarded|duplicate}" }, 401: { ...problem, description: "invalid_signature, or webhook_signing_not_configured (no webhook block; grantkeeper's own outbound-only integrations)" }, 404: problem, 413: problem },
        },
      },
      "/v1/jobs": { get: { summary: "List jobs in arrival order", parameters: ["integrationId", "state", "cursor", "limit"].map((n) => ({ name: n, in: "query", schema: { type: "string" } })), responses: { 200: { description: "{items: Job[], nextCursor?}" } } } },
      "/v1/jobs/{id}": { get: { summary: "One job (never its body)", parameters: [idParam("id")], responses: { 200: { description: "Job {id, integrationId, state, attempts, idempotencyKey?, lastError?, receivedAt, createdAt, updatedAt}" }, 404: problem } } },
      "/v1/integrations/{id}/replay": { post: { summary: "Run an ENABLED integration's parked and dead jobs again, in arrival order", parameters: [idParam("id")], responses: { 200: { description: "Integration plus {replayed}" }, 409: problem } } },
      "/v1/proxy/{connectionId}/{path}": {
        get: {
          summary: "Call the provider's API under apiBaseUrl's path with a fresh token (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS; others 405); a 401 or apiAuthFailure match → refresh once, retry once",
          parameters: [idParam("connectionId"), idParam("path")],
          responses: { 200: { description: "The provider's answer (any status), streamed, hop-by-hop headers and Set-Cookie removed, nosniff + CSP sandbox added" }, 400: problem, 404: problem, 405: problem, 409: problem, 422: problem, 502: problem, 503: problem, 504: problem },
        },
      },
      "/v1/alerts": { get: { summary: "Recent alerts, one per episode phase", parameters: [{ name: "since", in: "query", schema: { type: "string", format: "date-time" } }], responses: { 200: { description: "{items: Alert[]}" } } } },
      "/v1/preflight": { post: { summary: "Which required providers are usable, missing or dead", requestBody: body(preflightSchema), responses: { 200: json("Preflight"), 422: problem } } },
      "/v1/oauth/callback": { get: { summary: "OAuth redirect endpoint (authenticated by its single-use state and the browser-binding cookie)", security: [], responses: { 302: { description: "To returnTo with status=connected|error, error, reason" }, 200: { description: "End-user page (or JSON {status, connection})" }, 400: problem, 410: problem } } },
    },
  };
  return cached;
}
