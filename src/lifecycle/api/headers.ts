/**
 * Which headers cross between a caller and a provider's API, each way.
 *
 * - Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection, not the
 *   message: `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`,
 *   `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-Authenticate`,
 *   `Proxy-Authorization`, and every header the `Connection` header names
 *   (a client can mark `X-Internal-User` hop-by-hop to keep it from a
 *   server's logs; a proxy that forwards it anyway breaks that promise).
 * - Credentials never cross: the caller's `Authorization` (its grantkeeper
 *   key) and `Cookie` never reach the provider; the provider's `Set-Cookie`
 *   never reaches the caller (its session would be planted in whatever
 *   browser or client is on the other end).
 * - `Host` is the provider's; `Expect` is handled by each hop itself.
 *
 * Bodies are forwarded byte for byte, so `Content-Length` and
 * `Content-Encoding` of an answer stay true and are kept.
 */
import { ownField, setOwnField } from "../../domain/records.js";

/** RFC 9110 §7.6.1, plus the obsolete `Proxy-Connection` that clients still send. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"]);

const NEVER_SENT: ReadonlySet<string> = new Set(["authorization", "cookie", "host", "expect", "content-length"]);
const NEVER_RETURNED: ReadonlySet<string> = new Set(["set-cookie", "set-cookie2"]);

/** Header field names listed in `Connection` values (lower-cased; a comma-separated list, possibly repeated). */
export function connectionOptions(values: string | readonly string[] | undefined | null): Set<string> {
  const out = new Set<string>();
  if (values === undefined || values === null) return out;
  for (const v of typeof values === "string" ? [values] : values) {
    for (const token of v.split(",")) {
      const t = token.trim().toLowerCase();
      if (t) out.add(t);
    }
  }
  return out;
}

/**
 * The caller's headers as the provider may see them (names lower-cased).
 * `Content-Length` is dropped too: the transport sets it from the body it
 * actually sends. A header named `constructor` or `__proto__` is forwarded
 * as sent ({@link setOwnField}).
 * @param headers a Headers object or `[name, value]` pairs
 */
export function headersForProvider(headers: Iterable<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  // Most requests name no header in Connection: no set to build then.
  let named: Set<string> | undefined;
  for (const [name, value] of headers) {
    const n = name.toLowerCase();
    if (n === "connection" || n === "proxy-connection") for (const o of connectionOptions(value)) (named ??= new Set()).add(o);
    if (HOP_BY_HOP_HEADERS.has(n) || NEVER_SENT.has(n)) continue;
    // Keyed by the caller's names: `constructor` or `__proto__` are names like any other.
    const earlier = ownField(out, n);
    setOwnField(out, n, earlier === undefined ? value : `${earlier}, ${value}`);
  }
  // A header Connection names is dropped wherever it came, before or after Connection itself.
  if (named) for (const n of named) delete out[n];
  return out;
}

/**
 * The provider's answer headers as the caller may see them, as `[name, value]`
 * pairs (repeated headers stay repeated).
 * @param headers Node/undici's parsed headers (lower-case names; a repeated one as an array)
 */
export function headersForCaller(headers: Record<string, string | string[] | undefined>): Array<[string, string]> {
  // Most answers name no header in Connection: no set to build then.
  const named = headers.connection === undefined && headers["proxy-connection"] === undefined ? undefined : connectionOptions(headers.connection);
  if (named) for (const o of connectionOptions(headers["proxy-connection"])) named.add(o);
  const out: Array<[string, string]> = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const n = name.toLowerCase();
    if (HOP_BY_HOP_HEADERS.has(n) || NEVER_RETURNED.has(n) || named?.has(n)) continue;
    if (typeof value === "string") out.push([n, value]);
    else for (const v of value) out.push([n, v]);
  }
  return out;
}
