/**
 * The operator dashboard (issue 15 items 1–4): sign-in, overview,
 * connections (and one connection's timeline), integrations, jobs, alerts
 * and the runbook, server-rendered with hono's `html` template.
 *
 * Every page but the sign-in page and the static assets is a
 * {@link sessionRoute}: the gate in src/http/app.ts admits it only with a
 * valid dashboard session (deny by default). Every POST but sign-in checks
 * the session's CSRF token first and changes nothing without it (403); the
 * sign-in POST checks its own signed double-submit token. Actions call the
 * same services as the API (`gk.connections.refresh`, `gk.connectSessions.create`,
 * `gk.integrations.enable`/`disable`, `gk.jobs.replay`).
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { html, raw } from "hono/html";
import { CONNECTION_STATES, INTEGRATION_STATUSES, JOB_STATES, type ConnectionState, type IntegrationStatus, type JobState } from "../../domain/states.js";
import type { Grantkeeper } from "../../grantkeeper.js";
import { grantTypeOf } from "../../providers/definition.js";
import { matchesAnyKey, publicRoute, sessionRoute, type SessionGate } from "../auth.js";
import { toProblem } from "../problem.js";
import { ASSETS, assetUrl } from "./assets.js";
import { codeLink, connectionsTable, counts, episodesTable, filterSelect, inlineCode, integrationButton, noticeOf, subjectCell, timelineTable } from "./fragments.js";
import { badge, csrfField, page, when } from "./layout.js";
import { runbook, runbookAnchor } from "./runbook.js";
import { CSRF_FIELD, SESSION_COOKIE, SIGN_IN_COOKIE, type DashboardSession, type SessionSigner } from "./session.js";

/** Sessions admitted by the gate for this request (set by {@link dashboardSessionGate}). */
const sessions = new WeakMap<Request, DashboardSession>();

/** True when cookies must carry `Secure`: the request came over https, or the public URL is https. */
function secureCookies(c: Context, gk: Grantkeeper): boolean {
  return new URL(c.req.url).protocol === "https:" || gk.authorization.redirectUri.startsWith("https:");
}

/**
 * The gate's admission of dashboard routes: a cookie the signer verifies
 * (signature, expiry, a still-configured key) that was not signed out.
 * Without one, a GET is sent to the sign-in page and anything else gets a 401 page.
 */
export function dashboardSessionGate(gk: Grantkeeper, signer: SessionSigner): SessionGate {
  return {
    async admit(c) {
      const session = signer.verify(getCookie(c, SESSION_COOKIE));
      if (!session || (await gk.operations.isSignedOut(session.id))) return false;
      sessions.set(c.req.raw, session);
      return true;
    },
    refuse(c) {
      if (c.req.method === "GET" || c.req.method === "HEAD") return c.redirect("/dashboard/sign-in", 303);
      return page(c, html`<p class="problem" role="alert">You are not signed in, or your session has ended. Nothing was changed.</p><p><a href="/dashboard/sign-in">Sign in</a></p>`, { title: "Sign in required", status: 401 });
    },
  };
}

const sessionOf = (c: Context): DashboardSession => {
  const s = sessions.get(c.req.raw);
  if (!s) throw new Error("dashboard route reached without a session: it must be registered with sessionRoute");
  return s;
};

/** Options of {@link dashboardRoutes}. */
export interface DashboardOptions {
  signer: SessionSigner;
  /** The configured API keys (sign-in compares against them in constant time). */
  apiKeys: readonly string[];
}

/** The form fields of a POST, or undefined when the body is not a readable form (a malformed multipart body). */
async function formOf(c: Context): Promise<Record<string, unknown> | undefined> {
  try {
    return (await c.req.parseBody()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const oneOf = <T extends string>(list: readonly T[], v: string | undefined): T | undefined => (v && (list as readonly string[]).includes(v) ? (v as T) : undefined);
const nonEmpty = (v: string | undefined) => (v && v.trim() ? v.trim().slice(0, 256) : undefined);

/** Routes of the dashboard, mounted at `/`. */
export function dashboardRoutes(gk: Grantkeeper, o: DashboardOptions): Hono {
  const app = new Hono();
  const { signer } = o;

  /**
   * A POST action: CSRF first (403 and nothing changed without a valid token),
   * then `run`; a domain error is shown as a page with its status.
   */
  const action = (run: (c: Context, form: Record<string, unknown>, session: DashboardSession) => Promise<Response>) =>
    sessionRoute(async (c: Context) => {
      const session = sessionOf(c);
      const form = await formOf(c);
      if (!form || !signer.checkCsrf(session, form[CSRF_FIELD])) {
        return page(c, html`<p class="problem" role="alert">This form was not sent from the dashboard, or it is too old (missing or wrong CSRF token). Nothing was changed.</p><p><a href="/">Back to the overview</a></p>`, { title: "Refused", status: 403, csrf: signer.csrfToken(session) });
      }
      try {
        return await run(c, form, session);
      } catch (e) {
        const problem = toProblem(e);
        if (!problem) throw e;
        return page(c, html`<p class="problem" role="alert">${problem.title}: ${problem.detail}</p><p><a href="${c.req.header("referer")?.startsWith(new URL(c.req.url).origin) ? new URL(c.req.header("referer")!).pathname : "/"}">Back</a></p>`, { title: "That did not work", status: problem.status, csrf: signer.csrfToken(session) });
      }
    });

  const view = (handler: (c: Context, csrf: string) => Promise<Response>) => sessionRoute(async (c: Context) => handler(c, signer.csrfToken(sessionOf(c))));

  // ---- public: assets and sign-in ----
  app.get(
    "/dashboard/assets/:file",
    publicRoute((c: Context) => {
      const a = ASSETS.byFile.get(c.req.param("file")!);
      if (!a) return c.text("not found", 404);
      return c.body(a.body, 200, { "content-type": a.contentType, "cache-control": "public, max-age=31536000, immutable", "x-content-type-options": "nosniff" });
    }),
  );

  const signInPage = (c: Context, status: number, message?: string) => {
    const nonce = signer.signInNonce();
    setCookie(c, SIGN_IN_COOKIE, nonce, { path: "/dashboard/sign-in", httpOnly: true, sameSite: "Strict", secure: secureCookies(c, gk), maxAge: 3600 });
    const notice = message ? html`<p class="problem" role="alert">${message}</p>` : c.req.query("notice") === "signed_out" ? html`<p class="notice" role="status">You have signed out.</p>` : "";
    return page(
      c,
      html`<div class="sign-in">${notice}<form method="post" action="/dashboard/sign-in">${csrfField(signer.signInToken(nonce))}
<label for="api-key">API key</label><input id="api-key" name="apiKey" type="password" autocomplete="current-password" required autofocus>
<p class="muted">The value of <code>GRANTKEEPER_API_KEY</code> (or the key file <code>grantkeeper serve</code> printed).</p>
<button type="submit" class="primary">Sign in</button></form></div>`,
      { title: "Sign in to grantkeeper", status, narrow: true },
    );
  };

  app.get("/dashboard/sign-in", publicRoute((c: Context) => signInPage(c, 200)));

  app.post(
    "/dashboard/sign-in",
    publicRoute(async (c: Context) => {
      const form = (await formOf(c)) ?? {};
      if (!signer.checkSignInToken(getCookie(c, SIGN_IN_COOKIE), form[CSRF_FIELD])) return signInPage(c, 403, "The sign-in form was too old or not sent from this page. Please try again.");
      const key = typeof form.apiKey === "string" ? form.apiKey.trim() : "";
      if (!key || !matchesAnyKey(key, o.apiKeys)) {
        gk.logger.warn({ path: "/dashboard/sign-in" }, "dashboard sign-in refused: wrong API key");
        return signInPage(c, 401, "That API key is not valid.");
      }
      const { cookie, session } = signer.issue(key);
      deleteCookie(c, SIGN_IN_COOKIE, { path: "/dashboard/sign-in" });
      setCookie(c, SESSION_COOKIE, cookie, { path: "/", httpOnly: true, sameSite: "Strict", secure: secureCookies(c, gk), maxAge: Math.floor((session.expiresAtMs - gk.clock.now()) / 1000) });
      gk.logger.info({ path: "/dashboard/sign-in" }, "dashboard signed in");
      return c.redirect("/", 303);
    }),
  );

  app.post(
    "/dashboard/sign-out",
    action(async (c, _form, session) => {
      await gk.operations.signOut(session.id, session.expiresAtMs);
      deleteCookie(c, SESSION_COOKIE, { path: "/", secure: secureCookies(c, gk) });
      return c.redirect("/dashboard/sign-in?notice=signed_out", 303);
    }),
  );

  // ---- overview ----
  app.get("/dashboard", sessionRoute((c: Context) => c.redirect("/", 303)));
  app.get(
    "/",
    view(async (c, csrf) => {
      const ov = await gk.operations.overview();
      const total = ov.refreshOutcomes.reduce((a, h) => ({ s: a.s + h.succeeded, t: a.t + h.transient, p: a.p + h.permanent }), { s: 0, t: 0, p: 0 });
      const chartData = raw(JSON.stringify(ov.refreshOutcomes).replace(/</g, "\\u003c"));
      const body = html`<p class="muted">As of ${when(ov.at)}.</p>
<div class="cards">
<section class="card" aria-labelledby="h-conn"><h2 id="h-conn">Connections</h2>${counts("Connections by state", CONNECTION_STATES.map((s) => [s, ov.connectionsByState[s] ?? 0]), (s) => `/dashboard/connections?state=${s}`)}</section>
<section class="card" aria-labelledby="h-int"><h2 id="h-int">Integrations</h2>${counts("Integrations by status", INTEGRATION_STATUSES.map((s) => [s, ov.integrationsByStatus[s] ?? 0]), (s) => `/dashboard/integrations?status=${s}`)}</section>
<section class="card" aria-labelledby="h-jobs"><h2 id="h-jobs">Jobs</h2>${counts("Parked and dead jobs", [["parked", ov.parkedJobs], ["dead", ov.deadJobs], ["queued", ov.jobsByState.queued ?? 0], ["faulted", ov.jobsByState.faulted ?? 0]], (s) => `/dashboard/jobs?state=${s}`)}</section>
<section class="card" aria-labelledby="h-alerts"><h2 id="h-alerts">Alerts</h2>${counts("Open alert episodes", [["open episodes", ov.openEpisodes.length], ["critical", ov.openEpisodes.filter((e) => e.severity === "critical").length]])}<p><a href="/dashboard/alerts">All alerts</a></p></section>
</div>
<h2 id="h-chart">Refresh outcomes, last 24 hours</h2>
<p>Succeeded: ${total.s} · transient failures: ${total.t} · permanent failures: ${total.p}</p>
<div id="refresh-outcomes-chart" class="chart" role="img" aria-labelledby="h-chart">(The chart needs JavaScript; the table below has the same numbers.)</div>
<script type="application/json" id="refresh-outcomes-data">${chartData}</script>
<details><summary>Refresh outcomes per hour as a table</summary>
<table><caption class="muted">From connection events: refreshed, refresh failed (transient / permanent).</caption><thead><tr><th scope="col">Hour (UTC)</th><th scope="col">Succeeded</th><th scope="col">Transient</th><th scope="col">Permanent</th></tr></thead><tbody>
${ov.refreshOutcomes.map((h) => html`<tr><td>${new Date(h.hourStartMs).toISOString().slice(0, 13).replace("T", " ")}:00</td><td class="num">${h.succeeded}</td><td class="num">${h.transient}</td><td class="num">${h.permanent}</td></tr>`)}
</tbody></table></details>
<h2>Providers</h2>
${ov.providers.length === 0 ? html`<p class="muted">No provider defined yet.</p>` : html`<table><thead><tr><th scope="col">Provider</th>${CONNECTION_STATES.map((s) => html`<th scope="col">${s}</th>`)}<th scope="col">Token endpoint breaker</th></tr></thead><tbody>
${ov.providers.map((p) => html`<tr><th scope="row"><a href="/dashboard/connections?provider=${encodeURIComponent(p.id)}">${p.displayName ?? p.id}</a> <span class="muted">${p.displayName ? p.id : ""}</span></th>${CONNECTION_STATES.map((s) => html`<td class="num">${p.connections[s] ?? 0}</td>`)}<td>${badge(p.breaker)}</td></tr>`)}
</tbody></table>`}
<h2>Delivery targets with an open breaker</h2>
${ov.openTargetBreakers.length === 0 ? html`<p class="muted">None: every delivery target's breaker is closed.</p>` : html`<table><thead><tr><th scope="col">Target</th><th scope="col">Failures in a row</th><th scope="col">Opened</th><th scope="col">Probe after</th></tr></thead><tbody>${ov.openTargetBreakers.map((b) => html`<tr><td><code>${b.target}</code></td><td class="num">${b.consecutiveFailures}</td><td>${when(b.openedAt)}</td><td>${when(b.cooldownUntil)}</td></tr>`)}</tbody></table>`}
<h2>Open alert episodes</h2>
${episodesTable(ov.openEpisodes)}`;
      return page(c, body, {
        title: "Overview",
        current: "/",
        csrf,
        head: html`<link rel="stylesheet" href="${assetUrl(ASSETS.uplotCss)}">`,
        scripts: html`<script src="${assetUrl(ASSETS.uplotJs)}"></script><script src="${assetUrl(ASSETS.chart)}"></script>`,
      });
    }),
  );

  // ---- connections ----
  app.get(
    "/dashboard/connections",
    view(async (c, csrf) => {
      const state = oneOf<ConnectionState>(CONNECTION_STATES, c.req.query("state"));
      const providerId = nonEmpty(c.req.query("provider"));
      const entityId = nonEmpty(c.req.query("entity"));
      const cursor = nonEmpty(c.req.query("cursor"));
      const [list, providers] = await Promise.all([gk.connections.list({ ...(state ? { state } : {}), ...(providerId ? { providerId } : {}), ...(entityId ? { entityId } : {}) }, { limit: 100, ...(cursor ? { cursor } : {}) }), gk.providers.list()]);
      const qs = (extra: Record<string, string>) => new URLSearchParams({ ...(state ? { state } : {}), ...(providerId ? { provider: providerId } : {}), ...(entityId ? { entity: entityId } : {}), ...extra }).toString();
      const body = html`<form class="filters" method="get" action="/dashboard/connections" role="search" aria-label="Filter connections">
${filterSelect("state", "State", CONNECTION_STATES.map((s) => [s, s]), state)}
${filterSelect("provider", "Provider", providers.map((p) => [p.id, p.displayName ?? p.id]), providerId)}
<label for="f-entity">Entity<input id="f-entity" name="entity" value="${entityId ?? ""}"></label>
<button type="submit">Filter</button></form>
${list.items.length === 0 ? html`<p>No connection matches.</p>` : connectionsTable(list.items)}
${list.nextCursor ? html`<p><a href="/dashboard/connections?${qs({ cursor: list.nextCursor })}">Next page</a></p>` : ""}`;
      return page(c, body, { title: "Connections", current: "/dashboard/connections", csrf });
    }),
  );

  app.get(
    "/dashboard/connections/:id",
    view(async (c, csrf) => {
      const id = c.req.param("id")!;
      const cursor = nonEmpty(c.req.query("cursor"));
      const conn = await gk.connections.get(id).catch(() => undefined);
      if (!conn) return page(c, html`<p class="problem" role="alert">No connection ${id}.</p><p><a href="/dashboard/connections">All connections</a></p>`, { title: "Connection not found", status: 404, csrf, current: "/dashboard/connections" });
      const events = await gk.connections.events(id, { limit: 50, ...(cursor ? { cursor } : {}) });
      // A client-credentials grant has no end user and no connect flow: Refresh now requests a new token; there is nothing to reconnect.
      const provider = await gk.providers.get(conn.providerId).catch(() => undefined);
      const reconnectable = !provider || grantTypeOf(provider) === "authorization_code";
      const body = html`${noticeOf(c)}
<dl class="counts facts card" aria-label="Connection">
<dt>Id</dt><dd><code>${conn.id}</code></dd><dt>Provider</dt><dd>${conn.providerId}</dd><dt>Entity</dt><dd>${conn.entityId}</dd>
<dt>State</dt><dd>${badge(conn.state)}</dd><dt>Scope</dt><dd>${conn.scope || "—"}</dd>
<dt>Access token expires</dt><dd>${when(conn.expiresAt)}</dd><dt>Last refreshed</dt><dd>${when(conn.lastRefreshedAt)}</dd>
<dt>Next refresh</dt><dd>${when(conn.nextRefreshAt)}</dd><dt>Failures in a row</dt><dd>${conn.consecutiveFailures}</dd>
<dt>Last error</dt><dd>${conn.lastError ? html`${codeLink("connection", conn.lastError.code)} (${conn.lastError.class}) ${conn.lastError.message}` : "—"}</dd>
</dl>
<h2>Actions</h2>
<p><form class="inline" method="post" action="/dashboard/connections/${conn.id}/refresh">${csrfField(csrf)}<button type="submit">Refresh now</button></form>
${reconnectable ? html`<form class="inline" method="post" action="/dashboard/connections/${conn.id}/reconnect">${csrfField(csrf)}<button type="submit" class="primary">Reconnect</button></form>` : ""}</p>
${reconnectable ? html`<p class="muted">Reconnect makes a single-use connect link for the end user; it does not change anything until they use it.</p>` : html`<p class="muted">${conn.providerId} uses client credentials: there is no end user to reconnect. Refresh now asks the token endpoint for a new token; a dead one usually means the provider's client secret changed (update the provider).</p>`}
<h2>Timeline</h2>
${events.items.length === 0 ? html`<p class="muted">No events.</p>` : timelineTable(events.items)}
${events.nextCursor ? html`<p><a href="/dashboard/connections/${conn.id}?cursor=${encodeURIComponent(events.nextCursor)}">Older events</a></p>` : ""}`;
      return page(c, body, { title: `Connection ${conn.entityId} · ${conn.providerId}`, current: "/dashboard/connections", csrf });
    }),
  );

  app.post(
    "/dashboard/connections/:id/refresh",
    action(async (c) => {
      const id = c.req.param("id")!;
      await gk.connections.refresh(id);
      return c.redirect(`/dashboard/connections/${encodeURIComponent(id)}?notice=refreshed`, 303);
    }),
  );

  app.post(
    "/dashboard/connections/:id/reconnect",
    action(async (c, _form, session) => {
      const conn = await gk.connections.get(c.req.param("id")!);
      const link = await gk.connectSessions.create({ providerId: conn.providerId, entityId: conn.entityId, ...(Object.keys(conn.connectionConfig).length ? { connectionConfig: conn.connectionConfig } : {}) });
      gk.logger.info({ connectionId: conn.id, connectSessionId: link.id }, "dashboard minted a reconnect link");
      const body = html`<p>Send this link to the person who owns <strong>${conn.entityId}</strong>'s ${conn.providerId} account. It works once, until ${when(link.expiresAt)}; opening it lets them sign in at the provider and replaces the dead grant.</p>
<label for="connect-link"><strong>Connect link</strong></label>
<input id="connect-link" class="link-box" type="text" readonly value="${link.connectUrl}">
<p class="muted">Anyone who has this link can connect an account for this entity: send it only to that person. It is not shown again.</p>
<p><a href="/dashboard/connections/${conn.id}">Back to the connection</a></p>`;
      return page(c, body, { title: "Reconnect link", current: "/dashboard/connections", csrf: signer.csrfToken(session) });
    }),
  );

  // ---- integrations ----
  app.get(
    "/dashboard/integrations",
    view(async (c, csrf) => {
      const status = oneOf<IntegrationStatus>(INTEGRATION_STATUSES, c.req.query("status"));
      const entityId = nonEmpty(c.req.query("entity"));
      const cursor = nonEmpty(c.req.query("cursor"));
      const list = await gk.integrations.list({ ...(status ? { status } : {}), ...(entityId ? { entityId } : {}) }, { limit: 100, ...(cursor ? { cursor } : {}) });
      const body = html`${noticeOf(c)}<form class="filters" method="get" action="/dashboard/integrations" role="search" aria-label="Filter integrations">
${filterSelect("status", "Status", INTEGRATION_STATUSES.map((s) => [s, s]), status)}
<label for="f-entity">Entity<input id="f-entity" name="entity" value="${entityId ?? ""}"></label>
<button type="submit">Filter</button></form>
${list.items.length === 0 ? html`<p>No integration matches.</p>` : html`<table><thead><tr><th scope="col">Integration</th><th scope="col">Entity</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Cause</th><th scope="col">Parked jobs</th><th scope="col">Actions</th></tr></thead><tbody>
${list.items.map(
  (i) => html`<tr data-integration="${i.id}"><th scope="row">${i.name}<br><code class="muted">${i.id}</code></th><td>${i.entityId}</td><td>${badge(i.status)}</td><td>${i.statusReason ? html`<code>${i.statusReason}</code>` : "—"}</td>
<td>${i.statusCause?.connectionId ? html`<a href="/dashboard/connections/${i.statusCause.connectionId}">${i.statusCause.connectionId}</a>` : i.statusCause?.target ? html`<code>${i.statusCause.target}</code>` : "—"}</td><td class="num">${i.parkedJobs > 0 ? html`<a href="/dashboard/jobs?state=parked&amp;integration=${i.id}" aria-label="${i.parkedJobs} parked jobs of ${i.name}">${i.parkedJobs}</a>` : "0"}</td>
<td>${i.status !== "ENABLED" ? integrationButton(i.id, i.name, "enable", "Enable", csrf) : ""}${i.status !== "DISABLED" ? integrationButton(i.id, i.name, "disable", "Disable", csrf) : ""}${i.status === "ENABLED" ? integrationButton(i.id, i.name, "replay", "Replay", csrf) : ""}</td></tr>`,
)}</tbody></table>`}
${list.nextCursor ? html`<p><a href="/dashboard/integrations?${new URLSearchParams({ ...(status ? { status } : {}), ...(entityId ? { entity: entityId } : {}), cursor: list.nextCursor }).toString()}">Next page</a></p>` : ""}
<p class="muted">Replay re-queues the parked and dead jobs of an ENABLED integration, in arrival order.</p>`;
      return page(c, body, { title: "Integrations", current: "/dashboard/integrations", csrf });
    }),
  );

  for (const verb of ["enable", "disable", "replay"] as const) {
    app.post(
      `/dashboard/integrations/:id/${verb}`,
      action(async (c, form) => {
        const id = c.req.param("id")!;
        let notice = verb === "enable" ? "enabled" : verb === "disable" ? "disabled" : "replayed";
        if (verb === "enable") await gk.integrations.enable(id);
        else if (verb === "disable") await gk.integrations.disable(id);
        else notice = `replayed&n=${await gk.jobs.replay(id)}`;
        const back = form.back === "jobs" ? "/dashboard/jobs" : "/dashboard/integrations";
        return c.redirect(`${back}?notice=${notice}`, 303);
      }),
    );
  }

  // ---- jobs ----
  app.get(
    "/dashboard/jobs",
    view(async (c, csrf) => {
      const state = oneOf<JobState>(JOB_STATES, c.req.query("state")) ?? "dead";
      const cursor = nonEmpty(c.req.query("cursor"));
      const integrationId = nonEmpty(c.req.query("integration"));
      const [byState, list] = await Promise.all([gk.operations.jobsByState(), gk.jobs.list({ state, ...(integrationId ? { integrationId } : {}) }, { limit: 100, ...(cursor ? { cursor } : {}) })]);
      const qs = (extra: Record<string, string>) => new URLSearchParams({ state, ...(integrationId ? { integration: integrationId } : {}), ...extra }).toString();
      const integrationIds = [...new Set(list.items.map((j) => j.integrationId))];
      const body = html`${noticeOf(c)}
<nav aria-label="Jobs by state"><ul class="tabs">${JOB_STATES.map((s) => html`<li><a href="/dashboard/jobs?state=${s}"${s === state ? raw(' aria-current="page"') : ""}>${s}</a> <span class="muted">(${byState[s] ?? 0})</span></li>`)}</ul></nav>
<h2>${state} jobs${integrationId ? html` of <code>${integrationId}</code> <a href="/dashboard/jobs?state=${state}">(all integrations)</a>` : ""}</h2>
${list.items.length === 0 ? html`<p>No ${state} job.</p>` : html`<table><thead><tr><th scope="col">Job</th><th scope="col">Integration</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Received</th><th scope="col">Updated</th></tr></thead><tbody>
${list.items.map((j) => html`<tr><td><code>${j.id}</code></td><td><code>${j.integrationId}</code></td><td class="num">${j.attempts}</td><td>${j.lastError ? html`${codeLink("job", j.lastError.code)} (${j.lastError.class}) ${j.lastError.message}` : "—"}</td><td>${when(j.receivedAt)}</td><td>${when(j.updatedAt)}</td></tr>`)}
</tbody></table>`}
${list.nextCursor ? html`<p><a href="/dashboard/jobs?${qs({ cursor: list.nextCursor })}">Next page</a></p>` : ""}
${(state === "dead" || state === "parked") && integrationIds.length > 0 ? html`<h2>Replay</h2><p class="muted">Re-queues the parked and dead jobs of an ENABLED integration (an integration in ERROR or DISABLED must be enabled first).</p>
<ul>${integrationIds.map((id) => html`<li><form class="inline" method="post" action="/dashboard/integrations/${id}/replay">${csrfField(csrf)}<input type="hidden" name="back" value="jobs"><button type="submit" aria-label="Replay the jobs of ${id}">Replay</button></form> <code>${id}</code></li>`)}</ul>` : ""}`;
      return page(c, body, { title: "Jobs", current: "/dashboard/jobs", csrf });
    }),
  );

  // ---- alerts ----
  app.get(
    "/dashboard/alerts",
    view(async (c, csrf) => {
      const [episodes, recent] = await Promise.all([gk.operations.openEpisodes(), gk.alerts.list(gk.clock.now() - 86_400_000)]);
      const body = html`<h2>Open episodes</h2>${episodesTable(episodes)}
<h2>Alerts of the last 24 hours</h2>
${recent.length === 0 ? html`<p class="muted">No alert in the last 24 hours.</p>` : html`<table><thead><tr><th scope="col">At</th><th scope="col">Kind</th><th scope="col">Severity</th><th scope="col">Subject</th><th scope="col">Message</th></tr></thead><tbody>
${[...recent].reverse().map((a) => html`<tr><td>${when(a.at)}</td><td><code>${a.kind}</code></td><td>${badge(a.severity)}</td><td>${subjectCell(Object.entries(a.subject)[0]![0], String(Object.entries(a.subject)[0]![1]))}</td><td>${a.message}</td></tr>`)}
</tbody></table>`}`;
      return page(c, body, { title: "Alerts", current: "/dashboard/alerts", csrf });
    }),
  );

  // ---- runbook ----
  app.get(
    "/dashboard/runbook",
    view(async (c, csrf) => {
      const sections = runbook();
      const body = html`<p class="muted">From docs/troubleshooting.md: what an error code means and what to do.</p>
${sections.map(
  (s) => html`<h2>${s.title}</h2><table><thead><tr><th scope="col">Code</th>${s.headers.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead><tbody>
${s.entries.map((e) => html`<tr><th scope="row">${e.codes.map((code, i) => html`${i ? ", " : ""}<code id="${runbookAnchor(s.kind, code)}">${code}</code>`)}</th>${e.cells.map((cell) => html`<td>${inlineCode(cell)}</td>`)}</tr>`)}
</tbody></table>`,
)}`;
      return page(c, body, { title: "Runbook", current: "/dashboard/runbook", csrf });
    }),
  );

  return app;
}
