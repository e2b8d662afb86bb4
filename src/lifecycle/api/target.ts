/**
 * Where an API call made with a connection's token may go, and how
 * (api-contract.md v1.1 "Proxy"): only under the provider's `apiBaseUrl`
 * path, with one of the methods an API is called with.
 *
 * The token is a bearer credential for the whole origin, and often for more
 * than the host app needs: a path that climbs out of `apiBaseUrl`'s path
 * (`../admin`, `%2E%2E/admin`, `..%2Fadmin`, `//other/x`) or an absolute URL
 * would spend it where the operator never pointed it. Every spelling is
 * checked *after* decoding each segment, because the provider's server may
 * decode what we forward.
 */
import { ErrorCode, GrantkeeperError } from "../../domain/errors.js";

/** Methods an API call may use (RFC 9110 §9.3); TRACE and CONNECT are not API calls. */
export const API_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** One of {@link API_METHODS}. */
export type ApiMethod = (typeof API_METHODS)[number];

const METHODS: ReadonlySet<string> = new Set(API_METHODS);

/** Value of the `Allow` header of a 405. */
export const ALLOW_HEADER = API_METHODS.join(", ");

/**
 * @returns the method, upper-cased, when it is one of {@link API_METHODS}
 * @throws {@link GrantkeeperError} `method_not_allowed` (405, `details.allow`) for any other, TRACE and CONNECT included
 */
export function apiMethod(method: string): ApiMethod {
  const m = method.toUpperCase();
  if (METHODS.has(m)) return m as ApiMethod;
  throw new GrantkeeperError(ErrorCode.methodNotAllowed, `${method.slice(0, 32)} is not forwarded to a provider's API; allowed: ${ALLOW_HEADER}`, { details: { allow: ALLOW_HEADER } });
}

/** Why a path was refused. */
export type ApiPathRefusal = "empty_segment" | "dot_segment" | "encoded_separator" | "malformed_escape" | "control_character" | "outside_base";

function refuse(reason: ApiPathRefusal, detail: string): GrantkeeperError {
  return new GrantkeeperError(ErrorCode.invalidProxyPath, `the path must stay under the provider's apiBaseUrl: ${detail}`, { details: { reason } });
}

// C0 controls, DEL and backslash, raw or decoded: no API path needs them and servers disagree on them.
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u001f\u007f\\]/;

/**
 * The URL an API call goes to: `apiBaseUrl`'s origin and path, then `path`.
 *
 * `path` is relative to the base path (one leading `/` is ignored, so
 * `/records` and `records` under `https://api.x.com/v2` both reach
 * `/v2/records`); it may carry a `?query` (passed on as is) and a `#fragment`
 * (dropped, it is never sent). An empty path is the base itself. The base's
 * own query and fragment are not used.
 *
 * @param search a query to use instead of the one in `path` (the proxy passes the request's raw `?…`)
 * @throws {@link GrantkeeperError} `invalid_proxy_path` (400, `details.reason`) for an empty segment (`a//b`, `//host`),
 *   a `.`/`..` segment or a segment that decodes to one, an encoded `/` or `\`, a malformed escape, a control
 *   character or backslash, or anything that would not end under the base path
 */
export function resolveApiTarget(apiBaseUrl: string, path: string, search?: string): URL {
  const base = parsedBase(apiBaseUrl);
  const cut = path.search(/[?#]/);
  let rest = cut === -1 ? path : path.slice(0, cut);
  let query = search ?? "";
  if (search === undefined && cut !== -1 && path[cut] === "?") {
    const hash = path.indexOf("#", cut);
    query = path.slice(cut, hash === -1 ? undefined : hash);
  }
  if (rest.startsWith("/")) rest = rest.slice(1);
  if (rest !== "") {
    const segments = rest.split("/");
    for (let i = 0; i < segments.length; i++) {
      const raw = segments[i]!;
      // A trailing slash is one empty segment at the end; anywhere else it is `//`.
      if (raw === "" && i < segments.length - 1) throw refuse("empty_segment", "empty path segment (//)");
      let decoded = raw;
      if (raw.includes("%")) {
        try {
          decoded = decodeURIComponent(raw);
        } catch {
          throw refuse("malformed_escape", "malformed percent-encoding");
        }
      }
      if (decoded === "." || decoded === "..") throw refuse("dot_segment", "dot segment (. or .., encoded or not)");
      if (decoded.includes("/")) throw refuse("encoded_separator", "encoded slash");
      if (FORBIDDEN.test(decoded) || (decoded !== raw && FORBIDDEN.test(raw))) throw refuse("control_character", "control character or backslash");
    }
  }
  const basePath = base.basePath;
  const target = new URL(`${base.origin}${rest === "" ? base.pathname : basePath + rest}${query}`);
  // Defence in depth: whatever the URL parser made of it must still be under the base.
  if (target.origin !== base.origin || (target.pathname !== base.pathname && !target.pathname.startsWith(basePath))) {
    throw refuse("outside_base", "it resolves outside the base path");
  }
  return target;
}

/** The parts of an `apiBaseUrl` {@link resolveApiTarget} uses: its origin, its path, and that path ending in `/`. */
interface ParsedBase {
  origin: string;
  pathname: string;
  basePath: string;
}

/** Parsed bases by `apiBaseUrl`, so that a call parses one URL (its target), not two. Bounded: emptied when full. */
const parsedBases = new Map<string, ParsedBase>();
const PARSED_BASES_MAX = 1_000;

function parsedBase(apiBaseUrl: string): ParsedBase {
  let base = parsedBases.get(apiBaseUrl);
  if (base) return base;
  const url = new URL(apiBaseUrl);
  base = { origin: url.origin, pathname: url.pathname, basePath: url.pathname.endsWith("/") ? url.pathname : `${url.pathname}/` };
  if (parsedBases.size >= PARSED_BASES_MAX) parsedBases.clear();
  parsedBases.set(apiBaseUrl, base);
  return base;
}
