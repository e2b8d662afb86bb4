import { describe, expect, it } from "vitest";
import { isGrantkeeperError } from "../domain/errors.js";
import { AuthError, isAuthError, isUserError, UserError } from "./errors.js";

describe("handler errors", () => {
  it("UserError carries the host app's code (default user_error)", () => {
    expect(new UserError("bad record", "invalid_record")).toMatchObject({ name: "UserError", code: "invalid_record", message: "bad record" });
    expect(new UserError("bad record").code).toBe("user_error");
  });

  it("AuthError carries auth_failed and the rejected connection", () => {
    expect(new AuthError("rejected", "conn_1")).toMatchObject({ name: "AuthError", code: "auth_failed", connectionId: "conn_1" });
    expect(new AuthError("rejected").connectionId).toBeUndefined();
  });

  it("guards tell them apart and recognise errors of another copy of the module", () => {
    expect(isUserError(new UserError("x"))).toBe(true);
    expect(isAuthError(new UserError("x"))).toBe(false);
    expect(isAuthError(new AuthError("x"))).toBe(true);
    expect(isUserError(new AuthError("x"))).toBe(false);
    const foreign = new Error("x");
    Object.defineProperty(foreign, Symbol.for("grantkeeper.userError"), { value: true });
    expect(isUserError(foreign)).toBe(true);
  });

  it("an error that only looks like one (same name) is a fault, not a user error", () => {
    const lookalike = Object.assign(new Error("x"), { name: "UserError", code: "user_error" });
    expect(isUserError(lookalike)).toBe(false);
  });

  it("they are not GrantkeeperErrors: their codes belong to the host app and they never become HTTP answers", () => {
    expect(isGrantkeeperError(new UserError("x"))).toBe(false);
    expect(isGrantkeeperError(new AuthError("x"))).toBe(false);
  });
});
