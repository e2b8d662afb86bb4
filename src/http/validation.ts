/**
 * Request parsing with zod: malformed JSON → 400 `malformed_json`; a body
 * that is not what the route expects → 422 `validation_failed` with every
 * issue listed. Nothing is changed before a body validates.
 *
 * Text with a NUL character (U+0000) is refused on every route (422
 * `validation_failed`): PostgreSQL cannot store it in a text column, so
 * `?entityId=%00` answered 500 there while SQLite stored it (found by the
 * fuzz test, test/api/fuzz.integration.test.ts).
 */
import type { Context } from "hono";
import type { z } from "zod";
import { ProblemError } from "./problem.js";

/**
 * Parse and validate a JSON body.
 * @throws {@link ProblemError} 415 `unsupported_media_type`, 400 `malformed_json`, 422 `validation_failed` (also for text holding U+0000)
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
  const at = pathOfNul(parsed.data);
  if (at !== undefined) throw nulProblem(at, "validation_failed", "Request validation failed");
  return parsed.data;
}

/**
 * The dotted path of the first string (member name or value) in `value` that
 * contains U+0000, or undefined. Walks with an explicit stack: a body may be
 * nested deeper than the call stack allows.
 */
export function pathOfNul(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, ""]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === "string") {
      if (v.includes("\u0000")) return path || "(root)";
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push([item, path ? `${path}.${i}` : String(i)]));
    } else if (typeof v === "object" && v !== null) {
      for (const [k, item] of Object.entries(v)) {
        const at = path ? `${path}.${k}` : k;
        if (k.includes("\u0000")) return at;
        stack.push([item, at]);
      }
    }
  }
  return undefined;
}

/** 422 naming the field whose text holds a NUL character. */
function nulProblem(at: string, code: string, title: string): ProblemError {
  const errors = [{ path: at, message: "must not contain the NUL character (U+0000)" }];
  return new ProblemError(422, code, title, `${at}: ${errors[0]!.message}`, { errors });
}

/**
 * Validate query parameters.
 * @throws {@link ProblemError} 422 `invalid_query` (also for a value holding U+0000)
 */
export function queryParams<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const query = c.req.query();
  const parsed = schema.safeParse(query);
  if (!parsed.success) throw ProblemError.fromZod(parsed.error, "invalid_query", "Invalid query parameters");
  const at = pathOfNul(query);
  if (at !== undefined) throw nulProblem(at, "invalid_query", "Invalid query parameters");
  return parsed.data;
}
