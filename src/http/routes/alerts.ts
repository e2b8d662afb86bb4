/** `GET /v1/alerts?since=` — recent alerts (one per episode phase). */
import { Hono } from "hono";
import { z } from "zod";
import type { Grantkeeper } from "../../grantkeeper.js";
import { queryParams } from "../validation.js";

export const query = z.object({ since: z.iso.datetime({ offset: true }).optional() }).strict();

/** Routes mounted at `/v1/alerts`. Without `since`, the last 24 hours. */
export function alertRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    const q = queryParams(c, query);
    const since = q.since ? Date.parse(q.since) : gk.clock.now() - 86_400_000;
    return c.json({ items: await gk.alerts.list(since) });
  });
  return app;
}
