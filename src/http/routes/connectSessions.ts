/** `POST /v1/connect-sessions` (api-contract.md v1.1 "Connect sessions and links"). */
import { Hono } from "hono";
import { z } from "zod";
import type { Grantkeeper } from "../../grantkeeper.js";
import { CONNECT_SESSION_TTL, scopeSchema } from "../../lifecycle/connectSessions.js";
import { connectionConfigSchema } from "../../providers/connectionConfig.js";
import { providerIdSchema } from "../../providers/definition.js";
import { jsonBody } from "../validation.js";

/** Body of `POST /v1/connect-sessions`. The API speaks seconds; the library milliseconds. */
export const newConnectSessionSchema = z
  .object({
    entityId: z.string().min(1).max(256),
    providerId: providerIdSchema,
    returnTo: z.string().max(2048).optional(),
    scopes: z.array(scopeSchema).max(100).optional(),
    connectionConfig: connectionConfigSchema.optional(),
    ttlSeconds: z
      .number()
      .int()
      .min(CONNECT_SESSION_TTL.minMs / 1000)
      .max(CONNECT_SESSION_TTL.maxMs / 1000)
      .optional(),
  })
  .strict();

/** Routes mounted at `/v1/connect-sessions`. */
export function connectSessionRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();
  app.post("/", async (c) => {
    const { ttlSeconds, ...b } = await jsonBody(c, newConnectSessionSchema);
    const session = await gk.connectSessions.create({ ...b, ...(ttlSeconds !== undefined ? { ttlMs: ttlSeconds * 1000 } : {}) });
    c.header("cache-control", "no-store");
    return c.json(session, 201);
  });
  return app;
}
