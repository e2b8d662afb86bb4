/**
 * The dashboard's page shell: one server-rendered document per page, readable
 * without JavaScript, with a skip link, a labelled navigation and the
 * sign-out form; our own style sheet only (no CDN, no font). Values are
 * escaped by hono's `html` template.
 */
import type { Context } from "hono";
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import { ASSETS, assetUrl } from "./assets.js";
import { CSRF_FIELD } from "./session.js";

/** A fragment of HTML (escaped when built with `html`). */
export type Fragment = HtmlEscapedString | Promise<HtmlEscapedString>;

/** Headers of every dashboard page: our origin only, never framed, never cached (pages may show connect links). */
export const DASHBOARD_PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
});

/** Navigation entries: path, label. `/reference` is the API reference page (served by the API document's route). */
const NAV: ReadonlyArray<readonly [string, string]> = [
  ["/", "Overview"],
  ["/dashboard/connections", "Connections"],
  ["/dashboard/integrations", "Integrations"],
  ["/dashboard/jobs", "Jobs"],
  ["/dashboard/alerts", "Alerts"],
  ["/dashboard/runbook", "Runbook"],
  ["/reference", "API reference"],
];

/** What a page needs besides its body. */
export interface PageOptions {
  title: string;
  /** Path of the nav entry to mark current. */
  current?: string;
  /** CSRF token of the signed-in session (for the sign-out form); absent on the sign-in page. */
  csrf?: string;
  /** HTTP status. @defaultValue 200 */
  status?: number;
  /** Extra tags in `<head>` (the chart's style sheet). */
  head?: Fragment;
  /** Scripts at the end of `<body>` (the chart). */
  scripts?: Fragment;
  /** A narrow, centred page (sign-in). */
  narrow?: boolean;
}

/** A hidden CSRF field for a form that changes something. */
export const csrfField = (token: string) => html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;

/** Render a dashboard page. */
export function page(c: Context, body: Fragment, o: PageOptions): Response | Promise<Response> {
  const nav = o.csrf
    ? html`<nav aria-label="Dashboard"><ul>${NAV.map(([href, label]) => html`<li><a href="${href}"${o.current === href ? raw(' aria-current="page"') : ""}>${label}</a></li>`)}</ul></nav>
<form method="post" action="/dashboard/sign-out">${csrfField(o.csrf)}<button type="submit">Sign out</button></form>`
    : "";
  const doc = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">
<title>${o.title} · grantkeeper</title><link rel="stylesheet" href="${assetUrl(ASSETS.css)}">${o.head ?? ""}</head>
<body><a class="skip" href="#main">Skip to content</a>
<header class="top"><span class="brand">grantkeeper</span>${nav}</header>
<main id="main" tabindex="-1"${o.narrow ? raw(' class="narrow"') : ""}><h1>${o.title}</h1>${body}</main>${o.scripts ?? ""}</body></html>`;
  return c.html(doc, (o.status ?? 200) as 200, { ...DASHBOARD_PAGE_HEADERS });
}

/** A state, status or severity as a labelled badge (colour is never the only cue: the word is shown). */
export const badge = (value: string) => html`<span class="state s-${value}">${value}</span>`;

/** A time for people: `2026-12-05 03:41:07 UTC`, with the RFC 3339 value in `<time datetime>`. */
export function when(isoTime: string | null | undefined): Fragment | string {
  if (!isoTime) return "—";
  return html`<time datetime="${isoTime}">${isoTime.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC")}</time>`;
}
