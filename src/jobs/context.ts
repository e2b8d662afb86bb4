/**
 * What a library job handler receives: the job, and a context that hands out
 * fresh tokens and calls the provider's API with them through the same
 * `authorizedFetch` as the proxy — confined under `apiBaseUrl`, refreshing
 * once (single-flight) and retrying once on a 401 or an `apiAuthFailure`
 * match (design.md "API 401").
 */
import type { ApiClient } from "../lifecycle/api/authorizedFetch.js";
import { toWebResponse } from "../lifecycle/api/authorizedFetch.js";
import { discard } from "../lifecycle/api/bodies.js";
import { apiMethod } from "../lifecycle/api/target.js";
import type { ConnectionService } from "../lifecycle/connections.js";
import type { ClaimedJob } from "../store/jobRows.js";
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
   * Call the provider's API (`apiBaseUrl` + `path`, `path` may carry a
   * `?query`) with a fresh bearer token. On a 401 (or the provider's
   * `apiAuthFailure`) the connection is refreshed (single-flight) and the call
   * retried once; a second one throws {@link AuthError}. Like the proxy: the
   * path must stay under `apiBaseUrl`'s path; GET, HEAD, POST, PUT, PATCH,
   * DELETE and OPTIONS only; redirects are returned, not followed; bodies are
   * neither decompressed nor buffered (one over 64 KiB is streamed and not
   * retried: its 401 throws AuthError after the refresh, and the job runs again).
   * @throws {@link AuthError}; GrantkeeperError `invalid_proxy_path`, `method_not_allowed`, `no_api_base_url`,
   *   `connection_error`, `token_unavailable`, `upstream_timeout`, `upstream_unreachable`
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
  connections: Pick<ConnectionService, "ensureFresh">;
  api: Pick<ApiClient, "authorizedFetch">;
}

/** Build a handler context over the lifecycle's services. */
export function contextOf(gk: JobContextServices, connectionIds: string[]): JobContext {
  return {
    connectionIds,
    token: async (connectionId) => (await gk.connections.ensureFresh(connectionId)).accessToken,
    async fetch(connectionId, path, init = {}) {
      // Refused before a Request is built: it would throw a TypeError of its own for TRACE or CONNECT.
      const method = apiMethod(init.method ?? "GET");
      // A Request normalizes every body type fetch accepts (string, form data, blob, stream) and sets its content type.
      const request = new Request("http://grantkeeper.invalid/", { method, ...(init.headers ? { headers: init.headers } : {}), ...(init.body != null ? { body: init.body, duplex: "half" } : {}) } as RequestInit);
      const answer = await gk.api.authorizedFetch({
        connectionId,
        method,
        path,
        headers: request.headers,
        body: request.body,
        ...(init.signal ? { signal: init.signal } : {}),
        caller: "handler",
      });
      if (answer.auth === "rejected") {
        if (answer.body) discard(answer.body);
        // authorizedFetch refreshed the connection before answering "rejected": the worker must not refresh it again.
        throw new AuthError(`the provider rejected a fresh token for ${connectionId}`, connectionId, { refreshed: true });
      }
      return toWebResponse(answer);
    },
  };
}
