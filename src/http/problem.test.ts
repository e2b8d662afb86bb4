import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ERROR_KINDS, ErrorCode, GrantkeeperError } from "../domain/errors.js";
import { ProblemError, problemOf, STATUS_BY_KIND, toProblem } from "./problem.js";

describe("STATUS_BY_KIND", () => {
  it("maps every kind to an HTTP error status", () => {
    expect(Object.keys(STATUS_BY_KIND).sort()).toEqual([...ERROR_KINDS].sort());
    for (const status of Object.values(STATUS_BY_KIND)) {
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });
});

describe("problemOf", () => {
  it("renders an RFC 9457 body with the code, the title of the code and the occurrence as detail", async () => {
    const res = problemOf(new GrantkeeperError(ErrorCode.connectionNotFound, 'no connection "c1"')).toResponse();
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(await res.json()).toEqual({ type: "https://grantkeeper.dev/problems/connection_not_found", title: "Connection not found", status: 404, detail: 'no connection "c1"', code: "connection_not_found" });
  });

  it("takes the status from an overridden kind", () => {
    expect(problemOf(new GrantkeeperError(ErrorCode.providerNotFound, "x", { kind: "invalid_input" })).status).toBe(422);
  });

  it.each([
    [1, "1"],
    [999, "1"],
    [1_000, "1"],
    [1_001, "2"],
    [0, "1"],
  ])("sends Retry-After in whole seconds, at least 1 (%i ms → %s)", (ms, header) => {
    const p = problemOf(new GrantkeeperError(ErrorCode.refreshRateLimited, "later", { retryAfterMs: ms }));
    expect(p.status).toBe(429);
    expect(p.headers["retry-after"]).toBe(header);
  });

  it("sends Allow on a 405 (RFC 9110 §15.5.6)", () => {
    const p = problemOf(new GrantkeeperError(ErrorCode.methodNotAllowed, "TRACE is not proxied", { details: { allow: "GET, HEAD" } }));
    expect(p.status).toBe(405);
    expect(p.headers.allow).toBe("GET, HEAD");
  });

  it("has no Retry-After without retryAfterMs", () => {
    expect(problemOf(new GrantkeeperError(ErrorCode.jobNotFound, "x")).headers).toEqual({});
  });

  it("turns details into extension members (undefined ones dropped) and field issues into errors", () => {
    const e = new GrantkeeperError(ErrorCode.connectionError, "dead", { details: { connectionId: "c1", gone: undefined }, fields: [{ path: "a", message: "b" }] });
    expect(problemOf(e).toBody()).toMatchObject({ status: 409, code: "connection_error", connectionId: "c1", errors: [{ path: "a", message: "b" }] });
    expect(problemOf(e).toBody()).not.toHaveProperty("gone");
  });

  it("answers 500 for grantkeeper's own misconfiguration and 502/504 for a failing upstream", () => {
    expect(problemOf(new GrantkeeperError(ErrorCode.decryptionFailed, "x")).status).toBe(500);
    expect(problemOf(new GrantkeeperError(ErrorCode.tokenEndpointError, "x")).status).toBe(502);
    expect(problemOf(new GrantkeeperError(ErrorCode.tokenEndpointError, "x", { kind: "upstream_timeout" })).status).toBe(504);
  });
});

describe("toProblem", () => {
  it("passes a ProblemError through, maps a GrantkeeperError, and leaves anything else alone", () => {
    const p = new ProblemError(418, "teapot", "I'm a teapot");
    expect(toProblem(p)).toBe(p);
    expect(toProblem(new GrantkeeperError(ErrorCode.payloadTooLarge, "big"))?.status).toBe(413);
    expect(toProblem(new Error("boom"))).toBeUndefined();
    expect(toProblem("boom")).toBeUndefined();
  });
});

describe("ProblemError.fromZod", () => {
  it("lists every issue with its dotted path", () => {
    const r = z.object({ a: z.string(), b: z.object({ c: z.number() }) }).safeParse({ a: 1, b: { c: "x" } });
    const p = ProblemError.fromZod(r.error!);
    expect(p.status).toBe(422);
    expect(p.toBody().errors?.map((e) => e.path)).toEqual(["a", "b.c"]);
  });
});
