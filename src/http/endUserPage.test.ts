import { createHash } from "node:crypto";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import { END_USER_PAGE_HEADERS, endUserPage, outcomeOf, type EndUserOutcome } from "./endUserPage.js";

const OUTCOMES: EndUserOutcome[] = ["connected", "denied", "provider_failed", "link_expired", "link_used", "link_invalid", "not_bound", "failed"];

async function render(outcome: EndUserOutcome, providerName?: string): Promise<{ res: Response; html: string }> {
  const app = new Hono();
  app.get("/", (c) => endUserPage(c, outcome, providerName, outcome === "connected" ? 200 : 400));
  const res = await app.request("/");
  return { res, html: await res.text() };
}

describe("outcomeOf: what the end user is told for each error of the connect flow", () => {
  it.each([
    [new GrantkeeperError(ErrorCode.connectLinkExpired, "x"), "link_expired"],
    [new GrantkeeperError(ErrorCode.connectLinkUsed, "x"), "link_used"],
    [new GrantkeeperError(ErrorCode.invalidConnectToken, "x"), "link_invalid"],
    [new GrantkeeperError(ErrorCode.stateNotBound, "x"), "not_bound"],
    [new GrantkeeperError(ErrorCode.invalidState, "x", { details: { reason: "used" } }), "link_used"],
    [new GrantkeeperError(ErrorCode.invalidState, "x", { details: { reason: "expired" } }), "link_expired"],
    [new GrantkeeperError(ErrorCode.invalidState, "x", { details: { reason: "unknown" } }), "failed"],
    [new GrantkeeperError(ErrorCode.invalidCallback, "x", { details: { reason: "authorization_error", providerError: "access_denied" } }), "denied"],
    [new GrantkeeperError(ErrorCode.invalidCallback, "x", { details: { reason: "authorization_error", providerError: "server_error" } }), "provider_failed"],
    [new GrantkeeperError(ErrorCode.invalidCallback, "x", { details: { reason: "repeated_parameter" } }), "failed"],
    [new GrantkeeperError(ErrorCode.codeExchangeFailed, "x"), "failed"],
  ] as const)("%s → %s", (e, outcome) => {
    expect(outcomeOf(e)).toBe(outcome);
  });
});

describe("the end-user page", () => {
  it.each(OUTCOMES)("%s: one self-contained, accessible document with no code, stack or script", async (outcome) => {
    const { res, html } = await render(outcome, "Acme <CRM>");
    expect(res.headers.get("content-type")).toMatch(/^text\/html; charset=UTF-8/i);
    for (const [k, v] of Object.entries(END_USER_PAGE_HEADERS)) expect(res.headers.get(k)).toBe(v);
    expect(html).toMatch(/^<!doctype html>\s*<html lang="en">/);
    expect(html.match(/<h1>/g)).toHaveLength(1);
    expect(html).toMatch(/<title>[^<]+<\/title>/);
    expect(html).not.toMatch(/<script|\bsrc=|\bhref=|url\(|@import/i);
    expect(html).not.toMatch(/[a-z]+_[a-z]+/); // no snake_case codes (invalid_callback, access_denied, …)
    expect(html).not.toContain("<CRM>");
    if (outcome === "connected" || outcome === "denied" || outcome === "failed" || outcome === "provider_failed") expect(html).toContain("Acme &lt;CRM&gt; account");
  });

  it("allows exactly its own inline style by hash: nothing else can load or run", async () => {
    const { res, html } = await render("connected");
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const hash = createHash("sha256").update(style).digest("base64");
    expect(res.headers.get("content-security-policy")).toBe(`default-src 'none'; style-src 'sha256-${hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`);
  });

  it("text colours meet WCAG AA contrast (4.5:1) on their backgrounds", async () => {
    const luminance = (hex: string) => {
      const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
      return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
    };
    const ratio = (a: string, b: string) => (Math.max(luminance(a), luminance(b)) + 0.05) / (Math.min(luminance(a), luminance(b)) + 0.05);
    const { html } = await render("connected");
    const text = /body\{[^}]*color:(#[0-9a-f]{6})/.exec(html)![1]!;
    for (const bg of ["#ffffff", "#f6f8fa"]) expect(ratio(text, bg)).toBeGreaterThanOrEqual(4.5);
  });
});
