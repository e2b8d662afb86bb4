/**
 * Is this provider API answer an auth failure — "the token is no good"?
 * (api-contract.md v1.1 "Providers: … API auth failures"; design.md
 * "Failure classification": an API 401 refreshes once and retries once.)
 *
 * A `401` always is (RFC 6750 §3.1 `invalid_token`). Some APIs say it
 * differently, and a provider definition names how with `apiAuthFailure`:
 * Slack answers `200 {"ok":false,"error":"token_expired"}`, GraphQL APIs
 * `200 {"errors":[{"extensions":{"code":"UNAUTHENTICATED"}}]}`. Decided from
 * the status and structured JSON fields only, never from free text.
 */

/** One JSON test: the value at `path` equals `equals`, or is one of `in` (both must hold when both are given). */
export interface ApiAuthFailureJsonRule {
  /** Dotted path into the JSON body; numeric segments index arrays (`errors.0.extensions.code`). */
  path: string;
  equals?: string | number | boolean | null;
  in?: string[];
}

/**
 * How a provider's API says "this token is no good", beyond `401`.
 * - `statuses` only: an answer with one of these statuses is an auth failure;
 * - `json` only: a JSON answer (any status) where at least one rule matches;
 * - both: one of the statuses *and* a matching rule (e.g. `403` with `code: "token_expired"`).
 */
export interface ApiAuthFailureRule {
  statuses?: number[];
  json?: ApiAuthFailureJsonRule[];
}

/** The status every API uses for a rejected bearer token (RFC 6750 §3.1). */
export const UNAUTHORIZED = 401;

/** Path segments read at most (a definition is validated to this depth too). */
export const MAX_JSON_PATH_DEPTH = 16;

/**
 * Whether deciding needs the answer's JSON body: only when a `json` rule could
 * still match this status (a 401 is decided without it).
 */
export function needsJsonBody(status: number, rule: ApiAuthFailureRule | undefined): boolean {
  if (status === UNAUTHORIZED || !rule?.json?.length) return false;
  return rule.statuses === undefined || rule.statuses.includes(status);
}

/**
 * @param json the parsed body, or undefined when it was not read (not JSON, too large, compressed in an unknown way)
 * @returns true for a 401, or an answer `rule` describes
 */
export function isApiAuthFailure(status: number, json: unknown, rule: ApiAuthFailureRule | undefined): boolean {
  if (status === UNAUTHORIZED) return true;
  if (!rule) return false;
  const statusListed = rule.statuses?.includes(status) === true;
  if (!rule.json?.length) return statusListed;
  if (rule.statuses !== undefined && !statusListed) return false;
  return json !== undefined && rule.json.some((r) => matchesJsonRule(json, r));
}

function matchesJsonRule(json: unknown, rule: ApiAuthFailureJsonRule): boolean {
  const value = valueAtPath(json, rule.path);
  if (value === undefined) return false;
  if (rule.equals !== undefined && value !== rule.equals) return false;
  if (rule.in !== undefined && !(typeof value === "string" && rule.in.includes(value))) return false;
  return rule.equals !== undefined || rule.in !== undefined;
}

/**
 * The value at a dotted path of parsed JSON: own properties of objects, numeric
 * indexes of arrays; undefined when any step is missing (never a prototype's
 * property: `__proto__` or `constructor` are just missing keys).
 */
export function valueAtPath(json: unknown, path: string): unknown {
  const segments = path.split(".");
  if (segments.length > MAX_JSON_PATH_DEPTH) return undefined;
  let at: unknown = json;
  for (const s of segments) {
    if (Array.isArray(at)) {
      if (!/^(0|[1-9][0-9]{0,8})$/.test(s)) return undefined;
      at = at[Number(s)];
    } else if (typeof at === "object" && at !== null && Object.hasOwn(at, s)) {
      at = (at as Record<string, unknown>)[s];
    } else {
      return undefined;
    }
  }
  return at;
}
