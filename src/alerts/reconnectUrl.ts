/**
 * `alerts.reconnectUrl`: where a user-facing alert sends the user to
 * reconnect — a page of the host app, e.g.
 * `https://app.example.com/reconnect?provider={providerId}&entity={entityId}`,
 * where the host authenticates its user and mints a fresh connect session.
 * Alerts never carry a live connect link (api-contract.md v1.1): an alert
 * lives on in chat channels and inboxes, a link must not.
 */

/** Placeholders a template may use, filled in URL-encoded. */
export const RECONNECT_URL_PLACEHOLDERS = ["providerId", "entityId", "connectionId"] as const;

/** Values for the placeholders. */
export type ReconnectUrlValues = Record<(typeof RECONNECT_URL_PLACEHOLDERS)[number], string>;

/**
 * Why a template is not acceptable, or undefined when it is: it must use only
 * the known placeholders, be an absolute http(s) URL once filled in, and not
 * point at grantkeeper's own connect link.
 */
export function reconnectUrlProblem(template: string): string | undefined {
  for (const m of template.matchAll(/\{([^{}]*)\}/g)) {
    if (!(RECONNECT_URL_PLACEHOLDERS as readonly string[]).includes(m[1]!)) return `unknown placeholder {${m[1]}}; use ${RECONNECT_URL_PLACEHOLDERS.map((p) => `{${p}}`).join(", ")}`;
  }
  let url: URL;
  try {
    url = new URL(renderReconnectUrl(template, { providerId: "p", entityId: "e", connectionId: "c" }));
  } catch {
    return "must be an absolute URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an http(s) URL";
  if (url.searchParams.has("connectToken")) return "must be a page of the host app, not a connect link";
  return undefined;
}

/** Fill in a template's placeholders, each URL-encoded. */
export function renderReconnectUrl(template: string, values: ReconnectUrlValues): string {
  return template.replace(/\{(providerId|entityId|connectionId)\}/g, (_m, k: keyof ReconnectUrlValues) => encodeURIComponent(values[k]));
}
