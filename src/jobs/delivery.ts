/**
 * Delivery of a job to its integration's consumer (api-contract.md "Delivery
 * to a consumer"): POST JSON `{jobId, integrationId, receivedAt, headers,
 * body}` signed with `Grantkeeper-Signature` (the Stripe scheme).
 */
import type { Tracer } from "@opentelemetry/api";
import { parseRetryAfter } from "../domain/classify.js";
import { classifyDelivery, type DeliveryObservation, type JobOutcome } from "../domain/jobOutcome.js";
import type { ClaimedJob } from "../store/jobRows.js";
import { inSpan, recordJobOutcome, SpanNames } from "../telemetry/tracing.js";
import { signDelivery } from "./signatures.js";

/** The JSON a consumer receives. `body` is the raw text, or base64 with `bodyEncoding: "base64"` when it is not UTF-8. */
export interface DeliveryPayload {
  jobId: string;
  integrationId: string;
  receivedAt: string;
  attempt: number;
  headers: Record<string, string>;
  body: string;
  bodyEncoding?: "base64";
}

/** Build the payload of a job. */
export function payloadOf(job: ClaimedJob): DeliveryPayload {
  const raw = Buffer.from(job.body, "base64");
  const text = new TextDecoder("utf-8", { fatal: true });
  let body: string;
  let base64 = false;
  try {
    body = text.decode(raw);
  } catch {
    body = job.body;
    base64 = true;
  }
  return {
    jobId: job.id,
    integrationId: job.integration_id,
    receivedAt: new Date(job.received_at).toISOString(),
    attempt: job.attempts,
    headers: JSON.parse(job.headers) as Record<string, string>,
    body,
    ...(base64 ? { bodyEncoding: "base64" as const } : {}),
  };
}

/**
 * POST one job to its consumer.
 * @param timeoutMs the integration's `delivery.timeoutMs`
 * @param nowMs current time, ms since the epoch (signature timestamp, Retry-After dates)
 * @returns what the consumer answered, reduced to what the classifier reads
 */
export async function deliver(fetchImpl: typeof fetch, url: string, secret: string, job: ClaimedJob, timeoutMs: number, nowMs: number): Promise<DeliveryObservation> {
  const body = JSON.stringify(payloadOf(job));
  let res: Response;
  try {
    res = await fetchImpl(url, {
      method: "POST",
      headers: { "content-type": "application/json", "grantkeeper-signature": signDelivery(secret, body, nowMs), "user-agent": "grantkeeper" },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const name = (e as { name?: string }).name;
    return name === "TimeoutError" || name === "AbortError" ? { kind: "timeout" } : { kind: "network" };
  }
  let code: string | undefined;
  let connectionId: string | undefined;
  if (res.status === 424) {
    const j = (await res.json().catch(() => undefined)) as { code?: unknown; connectionId?: unknown } | undefined;
    if (typeof j?.code === "string") code = j.code;
    if (typeof j?.connectionId === "string") connectionId = j.connectionId;
  } else {
    await res.body?.cancel().catch(() => undefined);
  }
  const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"), nowMs);
  return { kind: "http", status: res.status, ...(code ? { code } : {}), ...(connectionId ? { connectionId } : {}), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}

/**
 * {@link deliver} and classify the answer, in a `grantkeeper.job.deliver`
 * span: a consumer's 4xx is recorded as a user error (status UNSET), a 5xx,
 * timeout or refusal as a fault (ERROR). The span names the target's host
 * only: a target URL may carry credentials in its path or query.
 */
export function deliverTraced(tracer: Tracer, fetchImpl: typeof fetch, url: string, secret: string, job: ClaimedJob, timeoutMs: number, nowMs: number): Promise<JobOutcome> {
  return inSpan(tracer, SpanNames.jobDeliver, { "server.address": hostOf(url), "grantkeeper.job.id": job.id }, async (span) => {
    const observation = await deliver(fetchImpl, url, secret, job, timeoutMs, nowMs);
    span.setAttribute("grantkeeper.delivery.result", observation.kind);
    if (observation.kind === "http") span.setAttribute("http.response.status_code", observation.status);
    const outcome = classifyDelivery(observation);
    recordJobOutcome(span, outcome);
    return outcome;
  });
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return "invalid";
  }
}
