import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { clearBindingCookie, readBindingCookie, setBindingCookie } from "./bindingCookie.js";

const SECRET = "A".repeat(43);

function app(secure: boolean) {
  const a = new Hono();
  a.get("/set", (c) => (setBindingCookie(c, "cs_1", SECRET, secure, 600), c.text("ok")));
  a.get("/read", (c) => c.text(readBindingCookie(c, "cs_1", secure) ?? "(none)"));
  a.get("/clear", (c) => (clearBindingCookie(c, "cs_1", secure), c.text("ok")));
  return a;
}

describe("the browser-binding cookie (RFC 9700 §4.7.1)", () => {
  it("on https: __Host- prefix, Secure, Path=/, HttpOnly, SameSite=Lax, the state's lifetime", async () => {
    const res = await app(true).request("/set");
    expect(res.headers.get("set-cookie")).toBe(`__Host-gk_connect_cs_1=${SECRET}; Max-Age=600; Path=/; HttpOnly; Secure; SameSite=Lax`);
    expect(await (await app(true).request("/read", { headers: { cookie: `__Host-gk_connect_cs_1=${SECRET}` } })).text()).toBe(SECRET);
    // Without the prefix a subdomain could have planted it: not read.
    expect(await (await app(true).request("/read", { headers: { cookie: `gk_connect_cs_1=${SECRET}` } })).text()).toBe("(none)");
  });

  it("on http (loopback development): no Secure, sent under /v1/ only", async () => {
    const res = await app(false).request("/set");
    expect(res.headers.get("set-cookie")).toBe(`gk_connect_cs_1=${SECRET}; Max-Age=600; Path=/v1/; HttpOnly; SameSite=Lax`);
    expect(await (await app(false).request("/read", { headers: { cookie: `other=1; gk_connect_cs_1=${SECRET}` } })).text()).toBe(SECRET);
    expect(await (await app(false).request("/read", { headers: { cookie: "gk_connect_cs_1=" } })).text()).toBe("(none)");
  });

  it("clearing expires it at once", async () => {
    expect((await app(true).request("/clear")).headers.get("set-cookie")).toBe("__Host-gk_connect_cs_1=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax");
  });
});
