import { Hono } from "hono";
import { z } from "zod";
import { describe, expect, it } from "vitest";
import { toProblem } from "./problem.js";
import { jsonBody, pathOfNul, queryParams } from "./validation.js";

describe("pathOfNul", () => {
  it.each([
    ["plain", undefined],
    ["a\u0000b", "(root)"],
    [{ a: "x", b: ["y", "z\u0000"] }, "b.1"],
    [{ "k\u0000": 1 }, "k\u0000"],
    [[1, null, true, { deep: { er: "\u0000" } }], "3.deep.er"],
  ])("%j → %s", (value, path) => {
    expect(pathOfNul(value)).toBe(path);
  });

  it("walks nesting deeper than the call stack allows", () => {
    let v: unknown = "\u0000";
    for (let i = 0; i < 50_000; i++) v = [v];
    expect(pathOfNul(v)).toMatch(/^0(\.0)*$/);
  });
});

describe("NUL characters are refused on the way in (PostgreSQL cannot store them)", () => {
  const app = new Hono();
  app.post("/b", async (c) => c.json(await jsonBody(c, z.object({ name: z.string(), tags: z.array(z.string()).optional() }))));
  app.get("/q", (c) => c.json(queryParams(c, z.object({ entityId: z.string().optional() }))));
  app.onError((e) => toProblem(e)!.toResponse());

  it("in a JSON body: 422 validation_failed naming the field", async () => {
    const res = await app.request("/b", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "ok", tags: ["a", "b\u0000"] }) });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ code: "validation_failed", errors: [{ path: "tags.1", message: "must not contain the NUL character (U+0000)" }] });
  });

  it("in a query: 422 invalid_query", async () => {
    const res = await app.request("/q?entityId=a%00b");
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ code: "invalid_query", errors: [{ path: "entityId" }] });
    expect((await app.request("/q?entityId=a%20b")).status).toBe(200);
  });
});
