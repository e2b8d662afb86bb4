/**
 * Errors a job handler throws to say what kind of failure it was
 * (api-contract.md "Library"; design.md "Jobs and delivery"). Anything else a
 * handler throws is a fault.
 *
 * These are not {@link GrantkeeperError}s, on purpose: a GrantkeeperError is
 * what grantkeeper's core throws *to* its callers, with a code from the closed
 * {@link ErrorCode} list and a kind the HTTP edge maps to a status. These
 * travel the other way — the host app's handler throws them *into* the worker,
 * with codes the host app owns (`UserError("…", "invalid_record")`) — and the
 * worker turns them into a job outcome (`failed`, `auth_failed`), never into
 * an HTTP answer. Like GrantkeeperError they carry a stable `code` and have
 * guards that do not depend on `instanceof` across module copies.
 *
 * @see the sim background-jobs incident (every user error alerted ops)
 */
import type { ErrorCode, GrantkeeperError } from "../domain/errors.js";

const USER_ERROR = Symbol.for("grantkeeper.userError");
const AUTH_ERROR = Symbol.for("grantkeeper.authError");

/** A user or workflow error: the job is recorded as `failed`, never retried, no ops alert. */
export class UserError extends Error {
  /** Stable, machine-readable, chosen by the host app (e.g. `invalid_record`). @defaultValue "user_error" */
  readonly code: string;
  declare readonly [USER_ERROR]: true;

  /**
   * @param message for the job's `lastError` (shown to operators and in the API; no secrets)
   * @param code stable, machine-readable (e.g. `invalid_record`)
   */
  constructor(message: string, code = "user_error") {
    super(message);
    this.name = "UserError";
    this.code = code;
    Object.defineProperty(this, USER_ERROR, { value: true, enumerable: false });
  }
}

/**
 * An upstream auth rejection: the connection is refreshed (single-flight,
 * rate limited) and the job re-run once with the fresh token; when no refresh
 * can run now it re-runs no sooner than one may; it is parked when the grant
 * is dead, or — pausing its integration with ERROR(`auth_rejected`) — when a
 * fresh token is rejected again. Never retried to death (domain/jobLifecycle.ts).
 */
export class AuthError extends Error {
  /** Always `auth_failed`. */
  readonly code = "auth_failed";
  /** The connection was already refreshed for this rejection (`ctx.fetch` refreshes once before it throws): the worker does not refresh it again. @defaultValue false */
  readonly refreshed: boolean;
  declare readonly [AUTH_ERROR]: true;

  /**
   * @param message for the job's `lastError` (no tokens)
   * @param connectionId the connection whose token was rejected; without it the integration's first connection is refreshed
   * @param options.refreshed set when the caller already refreshed the connection after this rejection
   */
  constructor(
    message: string,
    readonly connectionId?: string,
    options: { refreshed?: boolean } = {},
  ) {
    super(message);
    this.name = "AuthError";
    this.refreshed = options.refreshed === true;
    Object.defineProperty(this, AUTH_ERROR, { value: true, enumerable: false });
  }
}

/** True for a {@link UserError}, whichever copy of the module made it. */
export function isUserError(e: unknown): e is UserError {
  return typeof e === "object" && e !== null && (e as { [USER_ERROR]?: unknown })[USER_ERROR] === true;
}

/** True for an {@link AuthError}, whichever copy of the module made it. */
export function isAuthError(e: unknown): e is AuthError {
  return typeof e === "object" && e !== null && (e as { [AUTH_ERROR]?: unknown })[AUTH_ERROR] === true;
}
