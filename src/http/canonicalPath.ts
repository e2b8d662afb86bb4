/**
 * Canonical request paths (api-contract.md v1.1 "The API-key gate").
 *
 * A security decision taken on one spelling of a path while the router
 * matches another is how `GET /%761/connections` walked past the API key: the
 * gate compared the still-encoded `/%761/…` with `/v1/`, the router decoded it
 * to `/v1/connections`. Every path that has more than one spelling is refused
 * before routing, so the router, the gate and every log see the same path.
 *
 * Refused (RFC 3986 §6.2.2 normalizations, and what proxies disagree on):
 * percent-encoded unreserved characters (`%76`, `%2E`, `%7E`, …, either
 * case), an encoded `/` or `\` (`%2F`, `%5C`), a raw `\`, a malformed escape
 * (`%`, `%G1`), an encoded NUL, dot segments (`/./`, `/../`, a trailing `/.`
 * or `/..`), empty segments (`//`) and anything that does not start with `/`.
 * Other escapes (`%20`, `%3A`, UTF-8) stay allowed: they have one decoding.
 */

/** Why a path is not canonical, for the problem's `detail`. */
export type NonCanonicalReason = "not_absolute" | "encoded_unreserved" | "encoded_separator" | "malformed_escape" | "dot_segment" | "empty_segment" | "backslash" | "encoded_nul";

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * Check the path of a request target (the part before `?`).
 * @param rawPath the path exactly as the client sent it, still percent-encoded
 * @returns undefined when canonical, else the first reason it is not
 */
export function nonCanonicalReason(rawPath: string): NonCanonicalReason | undefined {
  if (!rawPath.startsWith("/")) return "not_absolute";
  if (rawPath.includes("\\")) return "backslash";
  for (let i = rawPath.indexOf("%"); i !== -1; i = rawPath.indexOf("%", i + 1)) {
    const hex = rawPath.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return "malformed_escape";
    const code = Number.parseInt(hex, 16);
    if (code === 0) return "encoded_nul";
    const ch = String.fromCharCode(code);
    if (ch === "/" || ch === "\\") return "encoded_separator";
    if (UNRESERVED.test(ch)) return "encoded_unreserved";
  }
  const segments = rawPath.split("/").slice(1);
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === "." || s === "..") return "dot_segment";
    // A trailing slash (`/v1/connections/`) is one empty segment at the end; anywhere else it is `//`.
    if (s === "" && i < segments.length - 1) return "empty_segment";
  }
  return undefined;
}

/**
 * The path of a raw request target: origin-form (`/a?b`) or absolute-form
 * (`http://h/a?b`, RFC 9112 §3.2.2). No decoding, no normalization.
 */
export function rawPathOf(target: string): string {
  let t = target;
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(t);
  if (scheme) t = t.slice(scheme[0].length) || "/";
  const q = t.search(/[?#]/);
  return q === -1 ? t : t.slice(0, q);
}
