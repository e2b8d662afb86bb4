/**
 * Errors a job handler throws to say what kind of failure it was
 * (api-contract.md "Library"). Anything else a handler throws is a fault.
 */

/** A user or workflow error: recorded as `failed`, never retried, no ops alert. */
export class UserError extends Error {
  readonly code: string;
  /** @param code stable, machine-readable (e.g. `invalid_record`) */
  constructor(message: string, code = "user_error") {
    super(message);
    this.name = "UserError";
    this.code = code;
  }
}

/** An upstream auth rejection: the connection is refreshed (single-flight) and the job re-run, or parked if the grant is dead. */
export class AuthError extends Error {
  readonly code = "auth_failed";
  /** @param connectionId the connection whose token was rejected */
  constructor(
    message: string,
    readonly connectionId?: string,
  ) {
    super(message);
    this.name = "AuthError";
  }
}

/** Guard that does not depend on `instanceof` across module copies. */
export function isUserError(e: unknown): e is UserError {
  return typeof e === "object" && e !== null && (e as { name?: unknown }).name === "UserError";
}

/** Guard that does not depend on `instanceof` across module copies. */
export function isAuthError(e: unknown): e is AuthError {
  return typeof e === "object" && e !== null && (e as { name?: unknown }).name === "AuthError";
}
