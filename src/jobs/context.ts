/**
 * What a library job handler receives: the job, and a context that hands out
 * fresh tokens and calls the provider's API with them — refreshing once
 * (single-flight) and retrying once on a 401 (design.md "API 401").
 */
import { SpanStatusCode } from "@opentelemetry/api";
import type { ConnectionService } from "../lifecycle/connections.js";
import type { ProviderService } from "../providers/service.js";
import type { ClaimedJob } from "../store/jobs.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import { inSpan, SpanNames } from "../telemetry/tracing.js";
import { AuthError } from "./errors.js";

/** A job as a handler sees it. */
export interface Job {
  id: string;
  integrationId: string;
  /** This attempt's number, 1-based. */
  attempt: number;
  receivedAt: Date;
  headers: Record<string, string>;
  /** The raw body. */
  body: Uint8Array;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body parsed as JSON. @throws SyntaxError when it is not JSON */
  json<T = unknown>(): T;
}

/** The second argument of a handler. */
export interface JobContext {
  /** A fresh access token for a connection. @throws the lifecycle's 409/503 problems */
  token(connectionId: string): Promise<string>;
  /**
   * Call the provider's API (`apiBaseUrl` + `path`) with a fresh bearer token.
   * On a 401 the connection is refreshed (single-flight) and the call retried
   * once; a second 401 throws {@link AuthError}.
   */
  fetch(connectionId: string, path: string, init?: RequestInit): Promise<Response>;
  /** The connections this job's integration depends on. */
  connectionIds: string[];
}

/** A job handler. Throw `UserError` for a user/workflow failure, `AuthError` for an upstream auth rejection; anything else is a fault. */
export type JobHandler = (job: Job, ctx: JobContext) => Promise<void>;

/** Build the handler's view of a job row. */
export function jobOf(row: ClaimedJob): Job {
  const body = new Uint8Array(Buffer.from(row.body, "base64"));
  return {
    id: row.id,
    integrationId: row.integration_id,
    attempt: row.attempts,
    receivedAt: new Date(row.received_at),
    headers: JSON.parse(row.headers) as Record<string, string>,
    body,
    text: () => Buffer.from(body).toString("utf8"),
    json: <T>() => JSON.parse(Buffer.from(body).toString("utf8")) as T,
  };
}

/** The services a handler context uses: given to it, never the whole Grantkeeper object (no import cycle). */
export interface JobContextServices {
  connections: Pick<ConnectionService, "ensureFresh" | "get" | "refresh">;
  providers: Pick<ProviderService, "get">;
}

/**
 * Build a handler context over the lifecycle's services.
 * @param telemetry when given, each `fetch` runs in a `grantkeeper.api.call` span and every 401 counts in `grantkeeper_api_unauthorized_total`
 */
export function contextOf(gk: JobContextServices, fetchImpl: typeof fetch, connectionIds: string[], telemetry?: Telemetry): JobContext {
  const token = async (connectionId: string) => (await gk.connections.ensureFresh(connectionId)).accessToken;
  return {
    connectionIds,
    token,
    async fetch(connectionId, path, init = {}) {
      const conn = await gk.connections.get(connectionId);
      const provider = await gk.providers.get(conn.providerId);
      if (!provider?.apiBaseUrl) throw new Error(`provider ${conn.providerId} has no apiBaseUrl`);
      const url = new URL(path.replace(/^\//, ""), provider.apiBaseUrl.endsWith("/") ? provider.apiBaseUrl : `${provider.apiBaseUrl}/`);
      const call = async (t: string) => {
        const headers = new Headers(init.headers);
        headers.set("authorization", `Bearer ${t}`);
        const res = await fetchImpl(url, { ...init, headers });
        if (res.status === 401) telemetry?.metrics.apiUnauthorized(conn.providerId);
        return res;
      };
      const run = async () => {
        const first = await call(await token(connectionId));
        if (first.status !== 401) return first;
        await first.body?.cancel().catch(() => undefined);
        await gk.connections.refresh(connectionId).catch(() => undefined);
        const second = await call(await token(connectionId));
        if (second.status !== 401) return second;
        await second.body?.cancel().catch(() => undefined);
        throw new AuthError(`the provider rejected a fresh token for ${connectionId}`, connectionId);
      };
      if (!telemetry) return run();
      // No URL or path attribute: paths may carry record ids or personal data.
      const attributes = { "grantkeeper.provider.id": conn.providerId, "grantkeeper.connection.id": connectionId, "http.request.method": (init.method ?? "GET").toUpperCase(), "server.address": url.hostname };
      return inSpan(telemetry.tracer, SpanNames.apiCall, attributes, async (span) => {
        const res = await run();
        span.setAttribute("http.response.status_code", res.status);
        // A provider's 5xx is a fault; its 4xx answers are the handler's to judge.
        if (res.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `provider API answered ${res.status}` });
        return res;
      });
    },
  };
}
