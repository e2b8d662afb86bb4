/**
 * RFC 9457 problem details: one error type for every HTTP-facing failure,
 * rendered by one central handler ({@link ./app.ts}).
 */
import type { z } from "zod";
import { isGrantkeeperError, type ErrorKind, type GrantkeeperError } from "../domain/errors.js";

/** The JSON body of an `application/problem+json` answer, with grantkeeper's stable `code`. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  /** Stable machine-readable code; clients switch on this, never on `title` or `detail`. */
  code: string;
  /** Field-level validation errors, when the problem is bad input. */
  errors?: Array<{ path: string; message: string }>;
  [extension: string]: unknown;
}

/** An error that becomes an RFC 9457 response. */
export class ProblemError extends Error {
  /** Headers to add (e.g. `Retry-After`). */
  readonly headers: Record<string, string>;

  /**
   * @param status HTTP status
   * @param code stable code (e.g. `connection_not_found`)
   * @param title short, human summary, same for every occurrence of `code`
   * @param detail this occurrence; must never contain tokens, secrets or raw provider bodies
   * @param extra extension members and headers
   */
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail?: string,
    readonly extra: { errors?: ProblemBody["errors"]; headers?: Record<string, string>; members?: Record<string, unknown> } = {},
  ) {
    super(detail ?? title);
    this.name = "ProblemError";
    this.headers = extra.headers ?? {};
  }

  /** The problem+json body. */
  toBody(): ProblemBody {
    return {
      type: `https://grantkeeper.dev/problems/${this.code}`,
      title: this.title,
      status: this.status,
      ...(this.detail !== undefined ? { detail: this.detail } : {}),
      code: this.code,
      ...(this.extra.errors ? { errors: this.extra.errors } : {}),
      ...(this.extra.members ?? {}),
    };
  }

  /** A web-standard Response with `Content-Type: application/problem+json`. */
  toResponse(): Response {
    return new Response(JSON.stringify(this.toBody()), {
      status: this.status,
      headers: { "content-type": "application/problem+json", ...this.headers },
    });
  }

  /** 422 from a zod error, listing every issue with its path. */
  static fromZod(error: z.ZodError, code = "validation_failed", title = "Request validation failed"): ProblemError {
    const errors = error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
    return new ProblemError(422, code, title, errors.map((e) => `${e.path}: ${e.message}`).join("; "), { errors });
  }
}

/** Guard that does not depend on `instanceof` across module copies. */
export function isProblemError(e: unknown): e is ProblemError {
  return typeof e === "object" && e !== null && (e as { name?: unknown }).name === "ProblemError" && typeof (e as ProblemError).toResponse === "function";
}

/** HTTP status of each {@link ErrorKind}: the one place the core's errors meet HTTP. */
export const STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = Object.freeze({
  not_found: 404,
  invalid_input: 422,
  malformed_request: 400,
  unauthorized: 401,
  conflict: 409,
  gone: 410,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  upstream_failed: 502,
  upstream_timeout: 504,
  misconfigured: 500,
  method_not_allowed: 405,
});

/**
 * The RFC 9457 problem of a core {@link GrantkeeperError}: status from its
 * kind, `Retry-After` (whole seconds, at least 1) from `retryAfterMs`, `Allow`
 * from a 405's `details.allow`, its
 * details as extension members and its field issues as `errors`.
 */
export function problemOf(e: GrantkeeperError): ProblemError {
  const headers: Record<string, string> = {};
  if (e.retryAfterMs !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(e.retryAfterMs / 1000)));
  // RFC 9110 §15.5.6: a 405 MUST carry Allow.
  if (e.kind === "method_not_allowed" && typeof e.details.allow === "string") headers.allow = e.details.allow;
  const members = Object.fromEntries(Object.entries(e.details).filter(([, v]) => v !== undefined));
  return new ProblemError(STATUS_BY_KIND[e.kind], e.code, e.title, e.message, {
    headers,
    ...(e.fields ? { errors: e.fields } : {}),
    ...(Object.keys(members).length ? { members } : {}),
  });
}

/** The problem for anything thrown that is a {@link ProblemError} or a {@link GrantkeeperError}; undefined otherwise. */
export function toProblem(e: unknown): ProblemError | undefined {
  if (isProblemError(e)) return e;
  if (isGrantkeeperError(e)) return problemOf(e);
  return undefined;
}
