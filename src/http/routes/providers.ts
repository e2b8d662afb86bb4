/** `/v1/providers*` routes. Secrets are accepted, never returned. */
import { Hono } from "hono";
import type { Grantkeeper } from "../../grantkeeper.js";
import { providerIdSchema, providerInputSchema } from "../../providers/definition.js";
import { loadCatalogue } from "../../providers/catalogue.js";
import { providerNotFound } from "../../lifecycle/errors.js";
import { ProblemError } from "../problem.js";
import { jsonBody } from "../validation.js";

function idParam(raw: string): string {
  const r = providerIdSchema.safeParse(raw);
  if (!r.success) throw new ProblemError(422, "invalid_provider_id", "Invalid provider id", `providerId ${JSON.stringify(raw)}: ${r.error.issues[0]?.message}`);
  return r.data;
}

/** Routes for providers, mounted at `/v1/providers`; the catalogue at `/v1/catalogue`. */
export function providerRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();
  app.put("/:providerId", async (c) => {
    const id = idParam(c.req.param("providerId"));
    const body = await jsonBody(c, providerInputSchema);
    const { provider } = await gk.providers.put(id, body);
    return c.json(provider, 200);
  });
  app.get("/", async (c) => c.json({ items: await gk.providers.list() }));
  app.get("/:providerId", async (c) => {
    const id = idParam(c.req.param("providerId"));
    const p = await gk.providers.get(id);
    if (!p) throw providerNotFound(id);
    return c.json({ ...p, tokenEndpointBreaker: await gk.providers.tokenEndpointBreaker(id) });
  });
  return app;
}

/** `GET /v1/catalogue`: the provider templates a `PUT` may start from. */
export function catalogueRoutes(): Hono {
  const app = new Hono();
  app.get("/", (c) => c.json({ items: [...loadCatalogue().values()] }));
  return app;
}
