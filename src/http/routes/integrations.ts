/** `/v1/integrations*` and `/v1/preflight` routes (api-contract.md). */
import { Hono } from "hono";
import { z } from "zod";
import type { Grantkeeper } from "../../grantkeeper.js";
import { INTEGRATION_STATUSES, WEBHOOK_SIGNING } from "../../integrations/view.js";
import { scopeSchema } from "../../lifecycle/connectSessions.js";
import { isSecureOrLoopbackUrl, providerIdSchema } from "../../providers/definition.js";
import { ProblemError } from "../problem.js";
import { jsonBody, queryParams } from "../validation.js";

/** An integration's inbound webhook settings (`webhook` of `POST /v1/integrations`, body of `PUT /v1/integrations/{id}/webhook`). */
export const webhookSettingsSchema = z.object({ signing: z.enum(WEBHOOK_SIGNING), secret: z.string().min(1).max(512).optional() }).strict();

/** Body of `POST /v1/integrations`. */
export const newIntegrationSchema = z
  .object({
    name: z.string().min(1).max(200),
    entityId: z.string().min(1).max(256),
    connectionIds: z.array(z.string().regex(/^conn_[a-zA-Z0-9]{1,64}$/, "a connection id (conn_…)")).min(1).max(50),
    delivery: z
      .object({
        url: z.string().url().refine(isSecureOrLoopbackUrl, { message: "must be https (http only on loopback)" }),
        timeoutMs: z.number().int().min(100).max(120_000).optional(),
        secret: z.string().min(16).max(512).optional(),
      })
      .strict()
      .optional(),
    webhook: webhookSettingsSchema.optional(),
  })
  .strict();

/** Body of `POST /v1/preflight`. */
export const preflightSchema = z
  .object({
    entityId: z.string().min(1).max(256),
    providers: z
      .array(z.union([providerIdSchema, z.object({ providerId: providerIdSchema, scopes: z.array(scopeSchema).max(100).optional() }).strict()]))
      .min(1)
      .max(100),
  })
  .strict();

export const listQuery = z
  .object({
    entityId: z.string().min(1).optional(),
    status: z.enum(INTEGRATION_STATUSES).optional(),
    connectionId: z.string().min(1).optional(),
    cursor: z.string().min(1).optional(),
    limit: z.coerce.number().int().min(1).max(500).optional(),
  })
  .strict();
export const pageQuery = z.object({ cursor: z.string().min(1).optional(), limit: z.coerce.number().int().min(1).max(500).optional() }).strict();

function idParam(raw: string): string {
  if (!/^int_[a-zA-Z0-9]{1,64}$/.test(raw)) throw new ProblemError(404, "integration_not_found", "Integration not found", `no integration ${JSON.stringify(raw)}`);
  return raw;
}

const page = (q: { cursor?: string | undefined; limit?: number | undefined }) => ({ ...(q.cursor ? { cursor: q.cursor } : {}), ...(q.limit ? { limit: q.limit } : {}) });

/** Routes mounted at `/v1/integrations`. */
export function integrationRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();
  app.post("/", async (c) => {
    const b = await jsonBody(c, newIntegrationSchema);
    const { integration, deliverySecret } = await gk.integrations.create(b);
    return c.json({ ...integration, ...(deliverySecret ? { deliverySecret } : {}) }, 201);
  });
  app.get("/", async (c) => {
    const { cursor, limit, ...filter } = queryParams(c, listQuery);
    return c.json(await gk.integrations.list(filter, page({ cursor, limit })));
  });
  app.get("/:id", async (c) => c.json(await gk.integrations.get(idParam(c.req.param("id")))));
  app.get("/:id/events", async (c) => c.json(await gk.integrations.events(idParam(c.req.param("id")), page(queryParams(c, pageQuery)))));
  app.put("/:id/webhook", async (c) => {
    const id = idParam(c.req.param("id"));
    return c.json(await gk.integrations.setWebhook(id, await jsonBody(c, webhookSettingsSchema)));
  });
  app.delete("/:id/webhook", async (c) => c.json(await gk.integrations.setWebhook(idParam(c.req.param("id")), undefined)));
  app.post("/:id/disable", async (c) => c.json(await gk.integrations.disable(idParam(c.req.param("id")))));
  app.post("/:id/enable", async (c) => c.json(await gk.integrations.enable(idParam(c.req.param("id")))));
  return app;
}

/** `POST /v1/preflight`, mounted at `/v1/preflight`. */
export function preflightRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();
  app.post("/", async (c) => {
    const b = await jsonBody(c, preflightSchema);
    return c.json(await gk.preflight(b.entityId, b.providers));
  });
  return app;
}
