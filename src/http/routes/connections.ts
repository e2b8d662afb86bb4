/** `/v1/connections*` routes (api-contract.md). */
import { Hono } from "hono";
import { z } from "zod";
import { HOST_REPORTED_STATES, CONNECTION_STATES } from "../../domain/states.js";
import type { Grantkeeper } from "../../grantkeeper.js";
import { connectionConfigSchema } from "../../providers/connectionConfig.js";
import { grantTypeOf, providerIdSchema } from "../../providers/definition.js";
import { invalidInput } from "../../domain/errors.js";
import { ProblemError } from "../problem.js";
import { jsonBody, queryParams } from "../validation.js";

/**
 * Body of `POST /v1/connections`: import a grant (`accessToken` …), or, for a
 * client-credentials provider, `{providerId, entityId}` alone — grantkeeper
 * obtains the first token at once (RFC 6749 §4.4). `scope` is space-separated.
 */
export const importConnectionSchema = z
  .object({
    providerId: providerIdSchema,
    entityId: z.string().min(1).max(256),
    accessToken: z.string().min(1).max(16_384).optional(),
    refreshToken: z.string().min(1).max(16_384).optional(),
    tokenType: z.string().min(1).max(64).optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    expiresIn: z.number().int().min(0).max(10 * 365 * 86_400).optional(),
    scope: z.string().max(4096).optional(),
    connectionConfig: connectionConfigSchema.optional(),
  })
  .strict()
  .refine((b) => !(b.expiresAt !== undefined && b.expiresIn !== undefined), { message: "give expiresAt or expiresIn, not both", path: ["expiresIn"] })
  .refine((b) => b.accessToken !== undefined || (b.refreshToken === undefined && b.tokenType === undefined && b.expiresAt === undefined && b.expiresIn === undefined), {
    message: "required with refreshToken, tokenType, expiresAt or expiresIn (only a client-credentials provider's connection is created without one)",
    path: ["accessToken"],
  });

export const listQuery = z
  .object({
    entityId: z.string().min(1).optional(),
    providerId: z.string().min(1).optional(),
    state: z.enum(CONNECTION_STATES).optional(),
    cursor: z.string().min(1).optional(),
    limit: z.coerce.number().int().min(1).max(500).optional(),
  })
  .strict();

export const pageQuery = z.object({ cursor: z.string().min(1).optional(), limit: z.coerce.number().int().min(1).max(500).optional() }).strict();

/** Body of `PATCH /v1/connections/{id}`: the state the host app reports. */
export const reportStateSchema = z.object({ state: z.enum(HOST_REPORTED_STATES) }).strict();

const connectionId = z.string().regex(/^conn_[a-zA-Z0-9]{1,64}$/);

/**
 * A connection id from a path segment (already percent-decoded).
 * @throws {@link ProblemError} 404 `connection_not_found` for anything that is not a connection id
 */
export function idParam(raw: string): string {
  const r = connectionId.safeParse(raw);
  if (!r.success) throw new ProblemError(404, "connection_not_found", "Connection not found", `no connection ${JSON.stringify(raw)}`);
  return r.data;
}

/** Headers of every `POST /v1/connections/{id}/token` answer: RFC 6749 §5.1, answers carrying tokens must not be cached. */
export const TOKEN_ANSWER_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ["cache-control", "no-store"],
  ["pragma", "no-cache"],
];

/** Routes for connections, mounted at `/v1/connections`. */
export function connectionRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();

  app.post("/", async (c) => {
    const b = await jsonBody(c, importConnectionSchema);
    const connectionConfig = b.connectionConfig ? { connectionConfig: b.connectionConfig } : {};
    if (b.accessToken === undefined) {
      const provider = await gk.providers.get(b.providerId);
      if (provider && grantTypeOf(provider) !== "client_credentials") {
        throw invalidInput([{ path: "accessToken", message: `required: provider ${b.providerId} uses the authorization code grant (only a client-credentials provider's connection is created without one)` }]);
      }
      const scopes = b.scope?.split(/[\s,]+/).filter(Boolean);
      const { connection, created } = await gk.connections.obtain({ providerId: b.providerId, entityId: b.entityId, ...(scopes ? { scopes } : {}), ...connectionConfig });
      return c.json(connection, created ? 201 : 200);
    }
    const { connection, created } = await gk.connections.storeGrant({
      providerId: b.providerId,
      entityId: b.entityId,
      source: "import",
      tokens: {
        accessToken: b.accessToken,
        tokenType: b.tokenType ?? "Bearer",
        ...(b.refreshToken !== undefined ? { refreshToken: b.refreshToken } : {}),
        ...(b.expiresIn !== undefined ? { expiresInSeconds: b.expiresIn } : {}),
        ...(b.scope !== undefined ? { scope: b.scope } : {}),
      },
      ...(b.expiresAt !== undefined ? { expiresAtMs: Date.parse(b.expiresAt) } : {}),
      ...connectionConfig,
    });
    return c.json(connection, created ? 201 : 200);
  });

  app.get("/", async (c) => {
    const q = queryParams(c, listQuery);
    const { cursor, limit, ...filter } = q;
    return c.json(await gk.connections.list(filter, { ...(cursor ? { cursor } : {}), ...(limit ? { limit } : {}) }));
  });

  app.get("/:id", async (c) => c.json(await gk.connections.get(idParam(c.req.param("id")))));

  app.get("/:id/events", async (c) => {
    const q = queryParams(c, pageQuery);
    return c.json(await gk.connections.events(idParam(c.req.param("id")), { ...(q.cursor ? { cursor: q.cursor } : {}), ...(q.limit ? { limit: q.limit } : {}) }));
  });

  // On a socket, an authorized request without a body is served by the fast path (src/http/fastPaths.ts) with the same answer.
  app.post("/:id/token", async (c) => {
    const token = await gk.connections.ensureFresh(idParam(c.req.param("id")));
    for (const [k, v] of TOKEN_ANSWER_HEADERS) c.header(k, v);
    return c.json(token);
  });

  app.post("/:id/refresh", async (c) => c.json(await gk.connections.refresh(idParam(c.req.param("id")))));

  app.patch("/:id", async (c) => {
    const id = idParam(c.req.param("id"));
    const b = await jsonBody(c, reportStateSchema);
    return c.json(await gk.connections.reportState(id, b.state));
  });

  app.delete("/:id", async (c) => {
    const id = idParam(c.req.param("id"));
    const r = await gk.connections.delete(id);
    return c.json({ id, deleted: true, ...r });
  });

  return app;
}
