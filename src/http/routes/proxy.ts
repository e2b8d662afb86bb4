/**
 * `ANY /v1/proxy/{connectionId}/{path}`: forwards to the provider's
 * `apiBaseUrl` + path with a fresh bearer token; on a 401 the connection is
 * refreshed (single-flight) once and the call retried once (design.md
 * "API 401"). The caller's own credentials and cookies never reach the
 * provider; the provider's Set-Cookie never reaches the caller.
 */
import { Hono } from "hono";
import type { Grantkeeper } from "../../grantkeeper.js";
import { inSpan, SpanNames } from "../../telemetry/tracing.js";
import { ProblemError } from "../problem.js";

const STRIPPED_REQUEST = new Set(["authorization", "cookie", "host", "connection", "content-length", "transfer-encoding", "keep-alive", "proxy-authorization", "upgrade", "accept-encoding"]);
const STRIPPED_RESPONSE = new Set(["set-cookie", "connection", "transfer-encoding", "keep-alive", "content-encoding", "content-length"]);

/** Routes mounted at `/v1/proxy`. */
export function proxyRoutes(gk: Grantkeeper, fetchImpl: typeof fetch = globalThis.fetch): Hono {
  const app = new Hono();
  app.all("/:connectionId/*", async (c) => {
    const connectionId = c.req.param("connectionId");
    const conn = await gk.connections.get(connectionId);
    const provider = await gk.providers.get(conn.providerId);
    if (!provider?.apiBaseUrl) throw new ProblemError(422, "no_api_base_url", "Provider has no API base URL", `define apiBaseUrl for provider ${conn.providerId} to proxy calls`);
    const incoming = new URL(c.req.url);
    const rest = incoming.pathname.slice(`/v1/proxy/${connectionId}/`.length);
    // Encoded traversal (`..%2F`, `%2E%2E`) would be decoded by some upstreams: refuse it here.
    let decoded: string;
    try {
      decoded = decodeURIComponent(rest);
    } catch {
      throw new ProblemError(400, "invalid_proxy_path", "Invalid proxy path", "the path is not valid percent-encoding");
    }
    if (decoded.split(/[/\\]/).some((seg) => seg === ".." || seg === ".")) throw new ProblemError(400, "invalid_proxy_path", "Invalid proxy path", "the path must not contain . or .. segments");
    const base = provider.apiBaseUrl.endsWith("/") ? provider.apiBaseUrl : `${provider.apiBaseUrl}/`;
    const target = new URL(rest, base);
    if (target.origin !== new URL(base).origin) throw new ProblemError(400, "invalid_proxy_path", "Invalid proxy path", "the path must stay on the provider's API origin");
    target.search = incoming.search;
    const headers = new Headers();
    c.req.raw.headers.forEach((v, k) => {
      if (!STRIPPED_REQUEST.has(k.toLowerCase())) headers.set(k, v);
    });
    const method = c.req.method;
    // Buffered once so a retry after a refresh can resend it (bodies are capped by the API's body limit).
    const body = method === "GET" || method === "HEAD" ? undefined : new Uint8Array(await c.req.arrayBuffer());
    const call = async (token: string) => {
      headers.set("authorization", `Bearer ${token}`);
      return fetchImpl(target, { method, headers, ...(body ? { body } : {}), redirect: "manual" });
    };
    const upstream = await inSpan(gk.telemetry.tracer, SpanNames.apiCall, { "grantkeeper.connection_id": connectionId, "grantkeeper.provider_id": conn.providerId, "http.request.method": method }, async () => {
      const first = await call((await gk.connections.ensureFresh(connectionId)).accessToken);
      if (first.status !== 401) return first;
      gk.telemetry.metrics.apiUnauthorized(conn.providerId);
      await first.body?.cancel().catch(() => undefined);
      await gk.connections.refresh(connectionId).catch(() => undefined);
      const second = await call((await gk.connections.ensureFresh(connectionId)).accessToken);
      if (second.status === 401) gk.telemetry.metrics.apiUnauthorized(conn.providerId);
      return second;
    });
    const out = new Headers();
    upstream.headers.forEach((v, k) => {
      if (!STRIPPED_RESPONSE.has(k.toLowerCase())) out.set(k, v);
    });
    return new Response(upstream.body, { status: upstream.status, headers: out });
  });
  return app;
}
