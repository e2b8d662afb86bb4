/** `POST /v1/webhooks/{integrationId}`, `/v1/jobs*`, `/v1/integrations/{id}/replay`. */
import { Hono, type Context } from "hono";
import { z } from "zod";
import type { Grantkeeper } from "../../grantkeeper.js";
import { JOB_STATES } from "../../domain/states.js";
import { publicRoute } from "../auth.js";
import { queryParams } from "../validation.js";

export const listQuery = z
  .object({ integrationId: z.string().min(1).optional(), state: z.enum(JOB_STATES).optional(), cursor: z.string().min(1).optional(), limit: z.coerce.number().int().min(1).max(500).optional() })
  .strict();

/** Webhook ingress, mounted at `/v1/webhooks` (authenticated by each integration's signature scheme, not the API key). */
export function webhookRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();
  // Public: each integration's signature scheme authenticates the sender, not the API key.
  app.post(
    "/:integrationId",
    publicRoute(async (c: Context) => {
    const raw = new Uint8Array(await c.req.arrayBuffer());
    const accepted = await gk.ingress.accept(c.req.param("integrationId")!, raw, c.req.raw.headers);
    // Slack's URL verification handshake must be answered with its challenge.
    if (accepted.disposition !== "duplicate" && c.req.header("content-type")?.includes("json")) {
      const challenge = slackChallenge(raw);
      if (challenge !== undefined) return c.json({ challenge, ...accepted }, 200);
    }
    return c.json(accepted, 202);
    }),
  );
  return app;
}

function slackChallenge(raw: Uint8Array): string | undefined {
  try {
    const j = JSON.parse(Buffer.from(raw).toString("utf8")) as { type?: unknown; challenge?: unknown };
    return j.type === "url_verification" && typeof j.challenge === "string" ? j.challenge : undefined;
  } catch {
    return undefined;
  }
}

/** `/v1/jobs` routes. */
export function jobRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    const { cursor, limit, ...filter } = queryParams(c, listQuery);
    return c.json(await gk.jobs.list(filter, { ...(cursor ? { cursor } : {}), ...(limit ? { limit } : {}) }));
  });
  app.get("/:id", async (c) => c.json(await gk.jobs.get(c.req.param("id"))));
  return app;
}

/** `POST /v1/integrations/{id}/replay`, mounted at `/v1/integrations`. */
export function replayRoutes(gk: Grantkeeper): Hono {
  const app = new Hono();
  app.post("/:id/replay", async (c) => {
    const id = c.req.param("id");
    const replayed = await gk.jobs.replay(id);
    return c.json({ ...(await gk.integrations.get(id)), replayed });
  });
  return app;
}
