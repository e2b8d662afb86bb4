/**
 * The connect flow in a real browser (Debian's Chromium through
 * playwright-core, as .ci/run provides it): the end user opens a connect
 * link, signs in and consents at panva's oidc-provider, and reads what
 * happened — connected, access not allowed (Cancel at the provider), link
 * already used, link expired, finished in another browser. Every page is
 * checked with axe-core (no serious or critical violation) and loads nothing
 * but itself. Store-agnostic, so it runs once (unit project, SQLite).
 */
import { createRequire } from "node:module";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { browserFetch, completeLogin, CookieJar } from "../support/login.js";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

describe("the connect flow in a real browser", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let t: GrantkeeperUnderTest;
  let browser: Browser;

  const mint = async (entityId: string, extra: Record<string, unknown> = {}) => (await t.api("POST", "/v1/connect-sessions", { providerId: "acme", entityId, ...extra })).body.connectUrl as string;
  // bypassCSP only so axe can be injected; that the page itself loads nothing is checked from its requests.
  const newBrowser = () => browser.newContext({ bypassCSP: true });

  /** Sign in and consent at the provider until the browser leaves it. */
  async function signIn(page: Page, account: string): Promise<void> {
    for (let i = 0; i < 4 && new URL(page.url()).origin === as.issuer; i++) {
      if (await page.locator('input[name="login"]').count()) {
        await page.fill('input[name="login"]', account);
        await page.fill('input[name="password"]', "test-password");
      }
      // Login and consent live at the same URL (/interaction/{uid}): wait for the next page load, not a new URL.
      await Promise.all([page.waitForEvent("load"), page.click('form[method="post"] button[type="submit"]')]);
    }
  }

  /** What the end user reads, after axe found no serious or critical violation and the page loaded nothing but itself. */
  async function endUserPage(page: Page, subresources: string[]): Promise<{ h1: string; text: string }> {
    expect(page.url().startsWith(t.url)).toBe(true);
    expect(subresources).toEqual([]); // no style sheet, font, image or script: one self-contained document
    await page.addScriptTag({ path: AXE });
    const result = (await page.evaluate(() => (globalThis as any).axe.run())) as { violations: Array<{ id: string; impact: string }> };
    expect(result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")).toEqual([]);
    expect(await page.getAttribute("html", "lang")).toBe("en");
    return { h1: (await page.textContent("h1"))!, text: (await page.textContent("main"))! };
  }

  /** Open `url` in `context`, recording what grantkeeper's pages load besides themselves (before axe is injected). */
  async function open(context: BrowserContext, url: string): Promise<{ page: Page; requests: string[] }> {
    const page = await context.newPage();
    const requests: string[] = [];
    page.on("request", (r) => {
      if (!r.isNavigationRequest() && r.frame().url().startsWith(t.url)) requests.push(r.url());
    });
    await page.goto(url);
    return { page, requests };
  }

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db);
    as = await startAuthServer({ accessTokenTtlSeconds: 600, clients: [{ clientId: "c", clientSecret: "browser-client-secret", redirectUris: [`${t.url}/v1/oauth/callback`] }] });
    await t.api("PUT", "/v1/providers/acme", { displayName: "Acme CRM", issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, clientId: "c", clientSecret: "browser-client-secret", scopes: ["openid"] });
    browser = await chromium.launch({ executablePath: process.env.GK_CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await as?.close();
    await db?.cleanup();
  });

  it("connected; the same link again says it was used", async () => {
    const link = await mint("ann");
    const context = await newBrowser();
    const { page, requests } = await open(context, link);
    await signIn(page, "ann");
    expect(page.url()).toMatch(new RegExp(`^${t.url}/v1/oauth/callback\\?`));
    const done = await endUserPage(page, requests);
    expect(done.h1).toBe("You're connected");
    expect(done.text).toContain("Your Acme CRM account is now connected.");
    expect((await t.api("GET", "/v1/connections?entityId=ann")).body.items).toHaveLength(1);

    const again = await open(context, link);
    expect((await endUserPage(again.page, again.requests)).h1).toBe("This link was already used");
    await context.close();
  }, 60_000);

  it("Cancel at the provider: access was not allowed, nothing connected", async () => {
    const context = await newBrowser();
    const { page, requests } = await open(context, await mint("ben"));
    await Promise.all([page.waitForURL((u) => u.origin === t.url), page.click("text=[ Cancel ]")]);
    const denied = await endUserPage(page, requests);
    expect(denied.h1).toBe("Access was not allowed");
    expect(denied.text).not.toMatch(/access_denied|invalid_callback/);
    expect((await t.api("GET", "/v1/connections?entityId=ben")).body.items).toHaveLength(0);
    await context.close();
  }, 60_000);

  it("a callback carried to another browser is refused there; the browser that started completes it", async () => {
    // The browser that starts is a scripted one (playwright only sees the first request of a redirect chain, so it cannot hold the callback back).
    const starter = new CookieJar();
    const callback = await completeLogin(await mint("cat"), { accountId: "cat", jar: starter });
    const other = await newBrowser();
    const elsewhere = await open(other, callback);
    const page = await endUserPage(elsewhere.page, elsewhere.requests);
    expect(page.h1).toBe("Please finish in the browser you started in");
    expect((await t.api("GET", "/v1/connections?entityId=cat")).body.items).toHaveLength(0);
    expect((await browserFetch(starter, callback, { headers: { accept: "text/html" } })).status).toBe(200);
    expect((await t.api("GET", "/v1/connections?entityId=cat")).body.items).toHaveLength(1);
    await other.close();
  }, 60_000);

  it("an expired link says so", async () => {
    const link = await mint("dan", { ttlSeconds: 60 });
    t.clock.advance(60_000);
    const context = await newBrowser();
    const { page, requests } = await open(context, link);
    expect((await endUserPage(page, requests)).h1).toBe("This link has expired");
    await context.close();
  }, 60_000);
});
