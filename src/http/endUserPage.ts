/**
 * The page an end user sees at the end of a connect link (issue 15 item 5):
 * what happened — connected, denied at the provider, link expired, link
 * already used, finished in another browser — and what to do next, in words
 * for that person: no error codes, no provider text, no tokens, no stack.
 * Server-rendered, one self-contained document (no external resource, no
 * script; the inline style is allowed by its hash in the CSP), `lang`, one
 * `h1`, text contrast above WCAG AA.
 */
import { createHash } from "node:crypto";
import type { Context } from "hono";
import { html, raw } from "hono/html";
import { ErrorCode, type GrantkeeperError } from "../domain/errors.js";

/** What the end user is told happened. */
export type EndUserOutcome = "connected" | "denied" | "provider_failed" | "link_expired" | "link_used" | "link_invalid" | "not_bound" | "failed";

const STYLE =
  "body{font:1rem/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f6f8fa;color:#1f2328}" +
  "main{max-width:34rem;margin:12vh auto;padding:2rem;background:#fff;border:1px solid #d0d7de;border-left:6px solid #57606a;border-radius:8px}" +
  "main.ok{border-left-color:#1a7f37}main.problem{border-left-color:#cf222e}" +
  "h1{font-size:1.4rem;line-height:1.3;margin:0 0 .75rem}p{margin:.5rem 0}";
const STYLE_HASH = createHash("sha256").update(STYLE).digest("base64");

/** Headers of every end-user page: nothing loads, nothing frames it, the callback URL (code, state) is not sent on as a referrer. */
export const END_USER_PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy": `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
});

interface Copy {
  title: string;
  what: string;
  next: string;
}

function copy(outcome: EndUserOutcome, account: string): Copy {
  switch (outcome) {
    case "connected":
      return { title: "You're connected", what: `Your ${account} is now connected.`, next: "You can close this window and go back to the app." };
    case "denied":
      return { title: "Access was not allowed", what: `Nothing was connected: access to your ${account} was not allowed.`, next: "If that was a mistake, go back to the app and start connecting again." };
    case "provider_failed":
      return { title: "The sign-in did not finish", what: `Nothing was connected: the sign-in to your ${account} stopped before it finished.`, next: "Go back to the app and start connecting again. If it keeps happening, contact the app's support." };
    case "link_expired":
      return { title: "This link has expired", what: "Connect links work for a short time only, and this one has run out. Nothing was connected.", next: "Go back to the app and start connecting again to get a new link." };
    case "link_used":
      return { title: "This link was already used", what: "Each connect link works once, and this one has already been used. Your account may already be connected.", next: "Check in the app. If it is not connected, start connecting again from the app." };
    case "link_invalid":
      return { title: "This link does not work", what: "This connect link is not valid. Nothing was connected.", next: "Go back to the app and start connecting again to get a new link." };
    case "not_bound":
      return { title: "Please finish in the browser you started in", what: "For your security, connecting has to be finished in the same browser where the connect link was opened. Nothing was connected.", next: "Go back to the app in this browser and start connecting again." };
    case "failed":
      return { title: "Connecting did not work", what: `Something went wrong while connecting your ${account}. Nothing was connected.`, next: "Go back to the app and try again in a few minutes." };
  }
}

/**
 * The outcome to tell an end user for an error of the connect flow.
 * @param e an error of `GET /v1/connect/{providerId}` or `GET /v1/oauth/callback`
 */
export function outcomeOf(e: GrantkeeperError): EndUserOutcome {
  switch (e.code) {
    case ErrorCode.connectLinkExpired:
      return "link_expired";
    case ErrorCode.connectLinkUsed:
      return "link_used";
    case ErrorCode.invalidConnectToken:
      return "link_invalid";
    case ErrorCode.stateNotBound:
      return "not_bound";
    case ErrorCode.invalidState:
      return e.details.reason === "used" ? "link_used" : e.details.reason === "expired" ? "link_expired" : "failed";
    case ErrorCode.invalidCallback:
      if (e.details.reason !== "authorization_error") return "failed";
      return e.details.providerError === "access_denied" ? "denied" : "provider_failed";
    default:
      return "failed";
  }
}

/**
 * Answer with the end-user page of an outcome.
 * @param providerName the provider's display name (grantkeeper's own configuration, never provider output)
 * @param status HTTP status: 200 for `connected`, the error's status otherwise
 */
export function endUserPage(c: Context, outcome: EndUserOutcome, providerName: string | undefined, status: number): Response | Promise<Response> {
  const account = providerName ? `${providerName} account` : "account";
  const t = copy(outcome, account);
  const tone = outcome === "connected" ? "ok" : "problem";
  const body = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">
<title>${t.title}</title><style>${raw(STYLE)}</style></head>
<body><main class="${tone}"><h1>${t.title}</h1><p>${t.what}</p><p>${t.next}</p></main></body></html>`;
  return c.html(body, status as 200, { ...END_USER_PAGE_HEADERS });
}
