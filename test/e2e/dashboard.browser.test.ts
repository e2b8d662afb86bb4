/**
 * The operator dashboard in a real browser (Debian's Chromium through
 * playwright-core) against a real oidc-provider: sign in with the API key;
 * a grant revoked at the provider and refreshed from the dashboard shows as
 * `error` with its reason; Reconnect mints a link the operator copies, the
 * end user completes the real login with it, and the dashboard shows the
 * connection `ready`, the integration ENABLED and its parked jobs back to 0;
 * dead jobs are replayed from the Jobs page; sign-out ends the session (the
 * old cookie replayed is refused too). A POST without the CSRF token is
 * refused and changes nothing. Every page passes axe-core (no serious or
 * critical violation) and is written as a screenshot to
 * test-artifacts/dashboard/. Store-agnostic, so it runs once (unit project, SQLite).
 */
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { connectEntity } from "../support/connect.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { startReceiver, type Receiver } from "../support/receiver.js";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const ARTIFACTS = join(process.cwd(), "test-artifacts", "dashboard");
const WEBHOOK_SECRET = "dashboard-webhook-secret";

describe("the operator dashboard in a real browser", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let t: GrantkeeperUnderTest;
  let receiver: Receiver;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let aliceConn: string;
  let syncId: string;
  let exportId: string;
  const offOrigin: string[] = [];
  /** Values that must never reach the log: the session cookie, the reconnect link. */
  const secretsSeen: string[] = [];

  async function send(integrationId: string, n: number) {
    const body = JSON.stringify({ n });
    const sig = `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`;
    const res = await fetch(`${t.url}/v1/webhooks/${integrationId}`, { method: "POST", headers: { "content-type": "application/json", "x-signature-256": sig }, body });
    return (await res.json()) as { jobId: string; disposition: string };
  }

  /** axe finds no serious or critical violation; then a full-page screenshot. */
  async function check(name: string): Promise<void> {
    await page.addScriptTag({ path: AXE });
    const result = (await page.evaluate(() => (globalThis as any).axe.run())) as { violations: Array<{ id: string; impact: string; nodes: unknown[] }> };
    expect(result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id), name).toEqual([]);
    expect(await page.getAttribute("html", "lang")).toBe("en");
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  /** Submit the form of the button named `name` (in `scope`) and wait for the next page. */
  async function press(name: string | RegExp, scope: Page | ReturnType<Page["locator"]> = page): Promise<void> {
    await Promise.all([page.waitForEvent("load"), scope.getByRole("button", { name, exact: typeof name === "string" }).click()]);
  }

  const text = async (selector: string) => (await page.locator(selector).innerText()).replace(/\s+/g, " ");

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    db = await testDatabase();
    t = await startGrantkeeper(db, {
      refresh: { marginMs: 30_000, jitterMs: 0, minIntervalMs: 0, timeoutMs: 2_000 },
      extra: { jobs: { maxAttempts: 1, pollMs: 3_600_000 }, breaker: { maxConsecutiveFailures: 10, cooldownMs: 60_000 } },
    });
    as = await startAuthServer({ accessTokenTtlSeconds: 600, clients: [{ clientId: "c", clientSecret: "dashboard-client-secret", redirectUris: [`${t.url}/v1/oauth/callback`] }] });
    await t.api("PUT", "/v1/providers/acme", { displayName: "Acme CRM", issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, clientId: "c", clientSecret: "dashboard-client-secret", scopes: ["openid"] });
    aliceConn = (await connectEntity(t.gk, "acme", "alice")).body.connection.id;
    const bobConn = (await connectEntity(t.gk, "acme", "bob")).body.connection.id;
    // The host app reports a connection ready once it has synced (a new grant is `pending`).
    for (const id of [aliceConn, bobConn]) await t.api("PATCH", `/v1/connections/${id}`, { state: "ready" });
    // A few hours of history for the chart: bob's grant refreshed once an hour (the manual clock moves, no sleeping).
    for (let h = 0; h < 6; h++) {
      t.clock.advance(3_600_000);
      expect((await t.api("POST", `/v1/connections/${bobConn}/refresh`)).body.lastError).toBeUndefined();
    }
    receiver = await startReceiver();
    const webhook = { signing: "hmac-sha256", secret: WEBHOOK_SECRET };
    syncId = (await t.api("POST", "/v1/integrations", { name: "CRM sync", entityId: "alice", connectionIds: [aliceConn], webhook })).body.id;
    exportId = (await t.api("POST", "/v1/integrations", { name: "CRM export", entityId: "alice", connectionIds: [aliceConn], webhook, delivery: { url: receiver.url, timeoutMs: 2_000 } })).body.id;
    t.gk.handle("CRM sync", async () => {});
    // Two deliveries the consumer fails: with one attempt allowed they die.
    receiver.answer(500, 500);
    for (const n of [1, 2]) expect((await send(exportId, n)).disposition).toBe("queued");
    await t.gk.worker.runDue();
    expect((await t.api("GET", `/v1/jobs?state=dead&integrationId=${exportId}`)).body.items).toHaveLength(2);
    browser = await chromium.launch({ executablePath: process.env.GK_CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
    context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on("request", (r) => {
      if (!r.url().startsWith(t.url) && !r.url().startsWith(as.issuer) && !r.url().startsWith("data:")) offOrigin.push(r.url());
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await receiver?.close();
    await as?.close();
    await db?.cleanup();
  });

  it("refuses the dashboard without a session: pages redirect to sign-in, a wrong key is told so", async () => {
    const bare = await fetch(`${t.url}/dashboard/connections`, { redirect: "manual" });
    expect(bare.status).toBe(303);
    expect(bare.headers.get("location")).toBe("/dashboard/sign-in");
    // A bearer key does not open the dashboard (its forms are checked against a session).
    expect((await fetch(`${t.url}/`, { redirect: "manual", headers: { authorization: `Bearer ${t.apiKey}` } })).status).toBe(303);
    expect((await fetch(`${t.url}/dashboard/integrations/${syncId}/disable`, { method: "POST", redirect: "manual" })).status).toBe(401);

    await page.goto(`${t.url}/`);
    expect(new URL(page.url()).pathname).toBe("/dashboard/sign-in");
    await check("sign-in");
    await page.getByLabel("API key").fill("not-the-key");
    await press("Sign in");
    expect(await text("[role=alert]")).toContain("That API key is not valid.");
    expect(await context.cookies()).not.toContainEqual(expect.objectContaining({ name: "gk_dashboard" }));
  }, 60_000);

  it("signs in with the API key: an HttpOnly, SameSite=Strict, expiring session cookie; the overview counts what the store holds", async () => {
    await page.getByLabel("API key").fill(t.apiKey);
    await press("Sign in");
    expect(new URL(page.url()).pathname).toBe("/");
    const cookie = (await context.cookies()).find((c) => c.name === "gk_dashboard")!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    expect(cookie.expires).toBeGreaterThan(Date.now() / 1000);
    expect(cookie.value).not.toContain(t.apiKey);
    expect(await text("section[aria-labelledby=h-conn]")).toMatch(/ready 2/);
    expect(await text("section[aria-labelledby=h-jobs]")).toMatch(/dead 2/);
    // The chart is drawn by uPlot, served from our origin.
    await page.locator("#refresh-outcomes-chart canvas").waitFor();
    await check("overview-before");
  }, 60_000);

  it("a POST without the CSRF token is refused (403) and changes nothing", async () => {
    const cookie = (await context.cookies()).find((c) => c.name === "gk_dashboard")!;
    const res = await fetch(`${t.url}/dashboard/integrations/${syncId}/disable`, { method: "POST", redirect: "manual", headers: { cookie: `gk_dashboard=${cookie.value}`, "content-type": "application/x-www-form-urlencoded" }, body: "" });
    expect(res.status).toBe(403);
    const forged = await fetch(`${t.url}/dashboard/integrations/${syncId}/disable`, { method: "POST", redirect: "manual", headers: { cookie: `gk_dashboard=${cookie.value}`, "content-type": "application/x-www-form-urlencoded" }, body: "_csrf=AAAA" });
    expect(forged.status).toBe(403);
    expect((await t.api("GET", `/v1/integrations/${syncId}`)).body.status).toBe("ENABLED");
  });

  it("a grant revoked at the provider shows as error with its reason once refreshed; the integration is ERROR with jobs parked", async () => {
    await as.revokeGrantsOf("alice");
    await page.goto(`${t.url}/dashboard/connections?entity=alice`);
    await Promise.all([page.waitForEvent("load"), page.getByRole("link", { name: aliceConn }).click()]);
    await press("Refresh now");
    expect(await text("[role=status]")).toContain("Refresh attempted");
    expect(await text("dl[aria-label=Connection]")).toMatch(/State error/);
    expect(await text("dl[aria-label=Connection]")).toContain("invalid_grant (permanent)");

    for (const n of [1, 2, 3]) expect((await send(syncId, n)).disposition).toBe("parked");

    await page.goto(`${t.url}/dashboard/connections`);
    await page.getByLabel("State").selectOption("error");
    await Promise.all([page.waitForEvent("load"), page.getByRole("button", { name: "Filter" }).click()]);
    expect(new URL(page.url()).searchParams.get("state")).toBe("error");
    const row = page.locator(`tr[data-connection="${aliceConn}"]`);
    expect((await row.innerText()).replace(/\s+/g, " ")).toMatch(/acme alice error .*invalid_grant \(permanent\)/);
    expect(await page.locator("tbody tr").count()).toBe(1);
    // The code links to its runbook entry.
    expect(await row.getByRole("link", { name: "invalid_grant" }).getAttribute("href")).toBe("/dashboard/runbook#connection-invalid_grant");
    await check("connections-error");

    await page.goto(`${t.url}/dashboard/integrations`);
    const sync = (await page.locator(`tr[data-integration="${syncId}"]`).innerText()).replace(/\s+/g, " ");
    expect(sync).toMatch(/ERROR credential_invalidated/);
    expect(sync).toContain(aliceConn);
    expect(sync).toMatch(/\b3\b/);
    await check("integrations-error");
    // The parked count leads to those jobs.
    await Promise.all([page.waitForEvent("load"), page.getByRole("link", { name: "3 parked jobs of CRM sync" }).click()]);
    expect(await text("main h2 >> nth=0")).toContain("parked jobs of");
    expect(await page.locator("tbody tr").count()).toBe(3);

    await page.goto(`${t.url}/`);
    expect(await text("section[aria-labelledby=h-conn]")).toMatch(/error 1/);
    expect(await text("section[aria-labelledby=h-jobs]")).toMatch(/parked 3/);
    expect(await text("main")).toMatch(/Succeeded: 6 · transient failures: 0 · permanent failures: 1/);
    await page.locator("#refresh-outcomes-chart canvas").waitFor();
    await check("overview-error");
    // The README's picture: the first screen of the overview at a laptop's width.
    await page.setViewportSize({ width: 1024, height: 820 });
    await page.reload();
    await page.locator("#refresh-outcomes-chart canvas").waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "overview-small.png") });
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 60_000);

  it("Reconnect mints a link; the end user completes the real login; the connection is ready, the integration ENABLED, parked 0", async () => {
    await page.goto(`${t.url}/dashboard/connections/${aliceConn}`);
    await press("Reconnect");
    const link = await page.getByLabel("Connect link").inputValue();
    secretsSeen.push(new URL(link).searchParams.get("connectToken")!);
    expect(link.startsWith(`${t.url}/v1/connect/acme?`)).toBe(true);
    await check("reconnect-link");

    // The end user, in their own browser, opens the link and signs in at the provider.
    const user = await browser.newContext();
    const userPage = await user.newPage();
    await userPage.goto(link);
    for (let i = 0; i < 4 && new URL(userPage.url()).origin === as.issuer; i++) {
      if (await userPage.locator('input[name="login"]').count()) {
        await userPage.fill('input[name="login"]', "alice");
        await userPage.fill('input[name="password"]', "test-password");
      }
      await Promise.all([userPage.waitForEvent("load"), userPage.click('form[method="post"] button[type="submit"]')]);
    }
    expect(await userPage.textContent("h1")).toBe("You're connected");
    await user.close();
    // A new grant is `pending` until the host app has synced with it and reports it ready.
    await page.goto(`${t.url}/dashboard/connections/${aliceConn}`);
    expect(await text("dl[aria-label=Connection]")).toMatch(/State pending .*Last error —/);
    expect((await t.api("PATCH", `/v1/connections/${aliceConn}`, { state: "ready" })).status).toBe(200);

    await page.goto(`${t.url}/dashboard/connections/${aliceConn}`);
    expect(await text("dl[aria-label=Connection]")).toMatch(/State ready/);
    const timeline = await text("table");
    for (const e of ["re-authorized", "invalidated", "refresh failed", "granted"]) expect(timeline).toContain(e);
    await check("connection-detail");

    await page.goto(`${t.url}/dashboard/integrations`);
    const sync = (await page.locator(`tr[data-integration="${syncId}"]`).innerText()).replace(/\s+/g, " ");
    expect(sync).toMatch(/ENABLED/);
    expect(sync).toMatch(/\b0\b/);
    expect((await t.api("GET", `/v1/integrations/${syncId}`)).body).toMatchObject({ status: "ENABLED", parkedJobs: 0 });
  }, 90_000);

  it("replays dead jobs from the Jobs page", async () => {
    await page.goto(`${t.url}/dashboard/jobs?state=dead`);
    expect(await page.locator("tbody tr").count()).toBe(2);
    expect(await text("tbody")).toMatch(/http_500 \(infra\) consumer answered 500/);
    expect(await page.getByRole("link", { name: "http_500" }).first().getAttribute("href")).toBe("/dashboard/runbook#job-http_5xx");
    await check("jobs-dead");
    await press(`Replay the jobs of ${exportId}`);
    expect(await text("[role=status]")).toContain("2 jobs re-queued");
    await t.gk.worker.runDue();
    expect((await t.api("GET", `/v1/jobs?state=dead`)).body.items).toHaveLength(0);
    await page.goto(`${t.url}/dashboard/jobs?state=dead`);
    expect(await text("main")).toContain("No dead job.");
  }, 60_000);

  it("alerts and the runbook pages", async () => {
    await page.goto(`${t.url}/dashboard/alerts`);
    expect(await text("main")).toContain("grant_invalidated");
    await check("alerts");
    // The nav's API reference opens with the dashboard session (as it does with the key).
    expect((await page.goto(`${t.url}/reference`))!.status()).toBe(200);
    await page.goto(`${t.url}/dashboard/runbook#connection-invalid_grant`);
    expect(await page.locator("#connection-invalid_grant").count()).toBe(1);
    await check("runbook");
  }, 60_000);

  it("keyboard: the skip link and every nav link are reachable with Tab", async () => {
    await page.goto(`${t.url}/`);
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => (globalThis as any).document.activeElement?.textContent)).toBe("Skip to content");
    const reached: string[] = [];
    for (let i = 0; i < 9; i++) {
      await page.keyboard.press("Tab");
      reached.push((await page.evaluate(() => (globalThis as any).document.activeElement?.textContent?.trim() as string | undefined)) ?? "");
    }
    expect(reached).toEqual(expect.arrayContaining(["Overview", "Connections", "Integrations", "Jobs", "Alerts", "API reference", "Sign out"]));
  });

  it("sign out: the browser is sent to sign-in, and the old cookie replayed is refused", async () => {
    const old = (await context.cookies()).find((c) => c.name === "gk_dashboard")!.value;
    secretsSeen.push(old);
    await press("Sign out");
    expect(new URL(page.url()).pathname).toBe("/dashboard/sign-in");
    expect(await text("[role=status]")).toContain("You have signed out.");
    await page.goto(`${t.url}/dashboard/integrations`);
    expect(new URL(page.url()).pathname).toBe("/dashboard/sign-in");
    const replay = await fetch(`${t.url}/dashboard/integrations`, { redirect: "manual", headers: { cookie: `gk_dashboard=${old}` } });
    expect(replay.status).toBe(303);
    expect(offOrigin).toEqual([]); // no CDN, no font: everything from our origin (and the provider's login)
    const log = t.logText();
    expect(log).toContain("dashboard signed in");
    for (const s of [t.apiKey, ...secretsSeen]) expect(log.includes(s), "a secret reached the log").toBe(false);
  });
});
