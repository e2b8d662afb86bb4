/**
 * Request parsing with zod: malformed JSON → 400 `malformed_json`; a body
 * that is not what the route expects → 422 `validation_failed` with every
 * issue listed. Nothing is changed before a body validates.
 */
import type { Context } from "hono";
import type { z } from "zod";
import { ProblemError } from "./problem.js";

/**
 * Parse and validate a JSON body.
 * @throws {@link ProblemError} 415 `unsupported_media_type`, 400 `malformed_json`, 422 `validation_failed`
 */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/([a-z.+-]*\+)?json\b/i.test(type)) {
    throw new ProblemError(415, "unsupported_media_type", "Unsupported media type", "send the body as application/json");
  }
  const text = await c.req.text();
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ProblemError(400, "malformed_json", "Malformed JSON", `the body is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw ProblemError.fromZod(parsed.error);
  return parsed.data;
}

/**
 * Validate query parameters.
 * @throws {@link ProblemError} 422 `validation_failed`
 */
export function queryParams<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw ProblemError.fromZod(parsed.error, "invalid_query", "Invalid query parameters");
  return parsed.data;
}
