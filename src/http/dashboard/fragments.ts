/**
 * The dashboard's HTML fragments (hono's `html` template: every value is
 * escaped unless wrapped in `raw`): tables of connections, timelines and
 * alert episodes, counts, notices, codes linked to the runbook, filter
 * selects and action buttons. The pages that use them are in routes.ts.
 */
import type { Context } from "hono";
import { html, raw } from "hono/html";
import type { Connection, ConnectionEvent } from "../../lifecycle/view.js";
import { badge, csrfField, when, type Fragment } from "./layout.js";
import { runbookAnchor, runbookCode } from "./runbook.js";

/** The notices a redirect after an action may name in `?notice=` (a fixed list: no text is reflected from the URL). */
const NOTICES: Readonly<Record<string, string>> = {
  refreshed: "Refresh attempted. The state and last error below are its result.",
  enabled: "Integration enabled.",
  disabled: "Integration disabled.",
  replayed: "Replay queued.",
  signed_out: "You have signed out.",
};

/** How a connection event's type reads in a timeline (unknown types are shown as they are). */
const EVENT_LABELS: Readonly<Record<string, string>> = {
  granted: "granted",
  reauthorized: "re-authorized",
  refreshed: "refreshed",
  refresh_failed: "refresh failed",
  recovery_entered: "recovery entered",
  invalidated: "invalidated",
  adopted: "adopted after a rotation race",
  suspicious_refresh: "suspicious refresh",
  refresh_token_not_rotated: "refresh token not rotated",
  refresh_token_missing: "refresh token missing",
  state_reported: "state reported by host",
  api_auth_rejected: "API rejected the token",
  api_auth_accepted: "API accepts the token again",
};

/** A code linked to its runbook entry when it has one. */
export function codeLink(kind: "connection" | "job", code: string | undefined): Fragment | string {
  if (!code) return "—";
  const entry = runbookCode(kind, code);
  return entry ? html`<a href="/dashboard/runbook#${runbookAnchor(kind, entry)}"><code>${code}</code></a>` : html`<code>${code}</code>`;
}

/** A notice named in `?notice=` (from a fixed list: no text is reflected from the URL). */
export function noticeOf(c: Context): Fragment | string {
  const key = c.req.query("notice");
  const text = key ? NOTICES[key] : undefined;
  if (!text) return "";
  const n = Number(c.req.query("n"));
  return html`<p class="notice" role="status">${text}${key === "replayed" && Number.isInteger(n) && n >= 0 ? ` ${n} job${n === 1 ? "" : "s"} re-queued.` : ""}</p>`;
}

/** Counts that need someone when above zero: shown in the alarm colour (the number is always written too). */
const ALARMING = new Set(["error", "ERROR", "degraded", "dead", "parked", "critical"]);

/** A `<dl>` of counts (each key linked when `link` is given), the alarming ones above zero in the alarm colour. */
export const counts = (label: string, entries: Array<[string, number]>, link?: (k: string) => string) =>
  html`<dl class="counts" aria-label="${label}">${entries.map(([k, n]) => html`<dt>${link ? html`<a href="${link(k)}">${k}</a>` : k}</dt><dd${n > 0 && ALARMING.has(k) ? raw(' class="alarm"') : ""}>${n}</dd>`)}</dl>`;

/** Markdown `code` spans and **bold** as HTML, everything else escaped. */
export function inlineCode(markdown: string): Fragment {
  const parts = markdown.split(/(`[^`]+`)/g);
  return html`${parts.map((p) => (p.startsWith("`") && p.endsWith("`") && p.length > 1 ? html`<code>${p.slice(1, -1)}</code>` : p.replace(/\*\*/g, "")))}`;
}

/** A one-button form that POSTs an action (`verb`: enable, disable, replay) on an integration, with the session's CSRF token. */
export function integrationButton(id: string, name: string, verb: string, label: string, csrf: string): Fragment {
  return html`<form class="inline" method="post" action="/dashboard/integrations/${id}/${verb}">${csrfField(csrf)}<button type="submit" aria-label="${label} ${name}">${label}</button></form> `;
}

/** An alert episode's subject as a table cell (a connection links to its page). */
export function subjectCell(type: string, id: string): Fragment {
  if (type === "connectionId") return html`connection <a href="/dashboard/connections/${id}">${id}</a>`;
  if (type === "integrationId") return html`integration <code>${id}</code>`;
  if (type === "providerId") return html`provider <code>${id}</code>`;
  return html`target <code>${id}</code>`;
}

/** The open alert episodes as a table, or a line saying there is none. */
export function episodesTable(episodes: Array<{ subjectType: string; subjectId: string; openedAt: string; phase: string; severity?: string; message?: string }>): Fragment {
  if (episodes.length === 0) return html`<p class="muted">No open episode.</p>`;
  return html`<table><thead><tr><th scope="col">Subject</th><th scope="col">Opened</th><th scope="col">Phase</th><th scope="col">Severity</th><th scope="col">Latest alert</th></tr></thead><tbody>
${episodes.map((e) => html`<tr><td>${subjectCell(e.subjectType, e.subjectId)}</td><td>${when(e.openedAt)}</td><td><code>${e.phase}</code></td><td>${e.severity ? badge(e.severity) : "—"}</td><td>${e.message ?? "—"}</td></tr>`)}
</tbody></table>`;
}

/** Connections as a table: state, next refresh, last error (its code linked to the runbook), failures. */
export function connectionsTable(items: Connection[]): Fragment {
  return html`<table><thead><tr><th scope="col">Connection</th><th scope="col">Provider</th><th scope="col">Entity</th><th scope="col">State</th><th scope="col">Next refresh</th><th scope="col">Last error</th><th scope="col">Failures</th></tr></thead><tbody>
${items.map(
  (c) => html`<tr data-connection="${c.id}"><td><a href="/dashboard/connections/${c.id}">${c.id}</a></td><td>${c.providerId}</td><td>${c.entityId}</td><td>${badge(c.state)}</td><td>${when(c.nextRefreshAt)}</td>
<td>${c.lastError ? html`${codeLink("connection", c.lastError.code)} <span class="muted">(${c.lastError.class})</span><br>${c.lastError.message}` : "—"}</td><td class="num">${c.consecutiveFailures}</td></tr>`,
)}</tbody></table>`;
}

/** A connection's events as a table, newest first as given. */
export function timelineTable(items: ConnectionEvent[]): Fragment {
  return html`<table><thead><tr><th scope="col">At</th><th scope="col">Event</th><th scope="col">Class</th><th scope="col">Code</th><th scope="col">What happened</th></tr></thead><tbody>
${items.map((e) => html`<tr><td>${when(e.at)}</td><td>${EVENT_LABELS[e.type] ?? e.type}</td><td>${e.class ?? "—"}</td><td>${codeLink("connection", e.code)}</td><td>${e.message}</td></tr>`)}
</tbody></table>`;
}

/**
 * A filter form's `<select>` (label, "any" first, the current value selected), as the list pages' filters use it.
 * @param name the query parameter; the control's id is `f-<name>`
 * @param options value and shown text of each choice
 * @param selected the current value, if any
 */
export function filterSelect(name: string, label: string, options: Array<readonly [string, string]>, selected: string | undefined): Fragment {
  return html`<label for="f-${name}">${label}<select id="f-${name}" name="${name}"><option value="">any</option>${options.map(([value, text]) => html`<option value="${value}"${value === selected ? raw(" selected") : ""}>${text}</option>`)}</select></label>`;
}
