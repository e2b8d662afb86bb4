/**
 * `{name}` placeholders in a provider's URLs (contract v1.1, "Providers:
 * per-connection settings"): `https://{subdomain}.zendesk.com`,
 * `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`, or a whole
 * origin filled from a token response, `{instance_url}` (Salesforce).
 *
 * Values come from a template's `templateParams` (once per provider) or from
 * a connection's `connectionConfig` (per connection). A value can never move
 * a URL to a host the template did not mean: a value inside a URL is limited
 * to letters, digits, `.`, `-` and `_` (no `/`, `@`, `:`, `?`, `#`), and a
 * placeholder that opens a URL must be filled with an http(s) origin that
 * passes the https-or-loopback rule. A missing value is an error naming it,
 * never a request to a literal `{name}` host.
 */
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";

/** A placeholder name: `{instance_url}`, `{tenant}`. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const PLACEHOLDER = /\{([^{}]*)\}/g;
/** What a value filling a placeholder inside a URL may hold (a host label, a tenant id, a path segment). */
const SEGMENT_VALUE = /^[A-Za-z0-9._-]{1,253}$/;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** The placeholder names of a URL template, in order of appearance, without repeats. */
export function placeholdersIn(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((m) => m[1]!))];
}

/** True when the template opens with a placeholder that stands for a whole origin (`{instance_url}/services`). */
export function opensWithOrigin(template: string): boolean {
  return /^\{[A-Za-z_][A-Za-z0-9_]*\}/.test(template);
}

/**
 * Why a URL template is not acceptable, or undefined when it is: placeholder
 * names must be identifiers, braces must pair, an opening placeholder must be
 * followed by `/` or nothing, and the URL with sample values must be https
 * (or http on a loopback host).
 */
export function templateProblem(template: string): string | undefined {
  const names = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  if (names.some((n) => !NAME.test(n))) return "placeholders are {name} with a letter or _ first, then letters, digits or _";
  if (template.replace(PLACEHOLDER, "").match(/[{}]/)) return "unpaired { or }";
  if (names.length === 0) return isSecureUrl(template) ? undefined : "must be https (http is allowed only on 127.0.0.1, localhost or [::1])";
  const origin = opensWithOrigin(template);
  if (origin && !/^\{[^}]+\}(\/|$)/.test(template)) return "a placeholder that opens the URL stands for an origin and must be followed by / or nothing";
  const sample = template.replace(PLACEHOLDER, (_m, _n: string, offset: number) => (offset === 0 && origin ? "https://origin.example" : "sample"));
  return isSecureUrl(sample) ? undefined : "must be an https URL once its placeholders are filled";
}

/** https, or http on a loopback host (RFC 9700 §2.6: token traffic protected in transit). */
function isSecureUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === "https:" || (u.protocol === "http:" && LOOPBACK_HOSTS.has(u.hostname));
  } catch {
    return false;
  }
}

/** Why `value` cannot fill `name` in `template`, or undefined. */
function valueProblem(template: string, name: string, value: string): string | undefined {
  if (opensWithOrigin(template) && template.startsWith(`{${name}}`)) {
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      return "must be an absolute URL";
    }
    if (u.username || u.password || u.search || u.hash) return "must be an origin (an optional path), without credentials, query or fragment";
    return isSecureUrl(value) ? undefined : "must be https (http is allowed only on a loopback host)";
  }
  return SEGMENT_VALUE.test(value) ? undefined : "may hold only letters, digits, '.', '-' and '_'";
}

/**
 * Fill a URL template.
 * @param values name → value; names the template does not use are ignored
 * @param field what the URL is, for the message (`apiBaseUrl`)
 * @param source where a missing value should come from, for the message (`connectionConfig`, `templateParams`)
 * @param keepMissing leave placeholders without a value in place (a template's own resolution leaves per-connection names for later)
 * @returns the filled URL
 * @throws {@link GrantkeeperError} `connection_config_missing` (kind `invalid_input`) naming every missing value,
 *   `invalid_connection_config` for a value that may not fill its place
 */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>, field: string, source: string, keepMissing = false): string {
  const missing = placeholdersIn(template).filter((n) => !Object.hasOwn(values, n));
  if (missing.length > 0 && !keepMissing) {
    throw new GrantkeeperError(ErrorCode.connectionConfigMissing, `${field} needs ${missing.map((n) => `${source}.${n}`).join(", ")}`, {
      details: { field, missing },
    });
  }
  for (const name of placeholdersIn(template)) {
    if (!Object.hasOwn(values, name)) continue;
    const problem = valueProblem(template, name, values[name]!);
    if (problem) throw new GrantkeeperError(ErrorCode.invalidConnectionConfig, `${source}.${name} ${problem}`, { details: { field, name } });
  }
  return template.replace(PLACEHOLDER, (whole, name: string, offset: number) => {
    if (!Object.hasOwn(values, name)) return whole;
    const v = values[name]!;
    // An origin value fills the whole origin: drop a trailing slash so `{instance_url}/x` has one.
    return offset === 0 && opensWithOrigin(template) ? v.replace(/\/+$/, "") : v;
  });
}
