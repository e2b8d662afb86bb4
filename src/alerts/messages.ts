/**
 * Alert texts. Operator text carries codes, ids and what to check; user text
 * is written for people — no codes, no JSON, no provider bodies, no tokens
 * (the chat-agent incident posted raw 401 JSON to users). Nothing here ever
 * reads a token; `lastError.message` is grantkeeper's own wording, built from
 * an HTTP status and an RFC 6749 §5.2 `error` code, never from a body.
 */
import type { AlertKind } from "../domain/alertEpisodes.js";

/** Alert severities, lowest first. */
export const SEVERITIES = ["info", "warning", "critical"] as const;
/** One of {@link SEVERITIES}. */
export type Severity = (typeof SEVERITIES)[number];

/** What an alert is about. */
export type AlertSubject = { connectionId: string } | { providerId: string } | { integrationId: string } | { target: string };

/** Facts a message may use. */
export interface AlertFacts {
  subject: AlertSubject;
  providerId?: string;
  providerName?: string;
  entityId?: string;
  lastErrorCode?: string;
  lastErrorMessage?: string;
  consecutiveFailures?: number;
  /** The host app's reconnect page (`alerts.reconnectUrl` filled in), never a live connect link. */
  reconnectUrl?: string;
  durationMs?: number;
  integrations?: number;
  jobId?: string;
  /** A provider token endpoint breaker's cooldown, in seconds (one half-open probe per cooldown). */
  cooldownSeconds?: number;
}

/** A rendered alert. */
export interface RenderedAlert {
  kind: AlertKind;
  severity: Severity;
  /** For operators. */
  message: string;
  /** For the end user (only kinds that concern them). */
  userMessage?: string;
}

const SEVERITY: Record<AlertKind, Severity> = {
  refresh_failed: "info",
  refresh_escalated: "warning",
  recovery_entered: "warning",
  grant_invalidated: "critical",
  recovered: "info",
  provider_misconfigured: "critical",
  job_dead: "critical",
  breaker_opened: "critical",
  breaker_closed: "info",
  api_auth_rejected: "warning",
};

function duration(ms: number | undefined): string {
  if (ms === undefined) return "";
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${(m / 60).toFixed(1)} h`;
}

function subjectText(f: AlertFacts): string {
  const s = f.subject;
  if ("connectionId" in s) return `connection ${s.connectionId}${f.providerId ? ` (${f.providerId}${f.entityId ? `, entity ${f.entityId}` : ""})` : ""}`;
  if ("providerId" in s) return `provider ${s.providerId}`;
  if ("integrationId" in s) return `integration ${s.integrationId}`;
  return `delivery target ${s.target}`;
}

/** Render one alert for operators and, where it concerns them, for the end user. */
export function renderAlert(kind: AlertKind, f: AlertFacts): RenderedAlert {
  const who = subjectText(f);
  const err = f.lastErrorCode ? ` Last error: ${f.lastErrorCode}${f.lastErrorMessage ? ` — ${f.lastErrorMessage}` : ""}.` : "";
  const name = f.providerName ?? f.providerId ?? "the provider";
  const severity = SEVERITY[kind];
  switch (kind) {
    case "refresh_failed":
      return { kind, severity, message: `Token refresh failed for ${who}; retrying with backoff. The grant is still usable.${err}` };
    case "refresh_escalated":
      return { kind, severity, message: `Token refresh has failed ${f.consecutiveFailures ?? "several"} times in a row for ${who}. The grant is still usable; check the provider's status.${err}` };
    case "recovery_entered":
      return { kind, severity, message: `Retries exhausted for ${who}; active recovery: grantkeeper keeps trying at the recovery interval until it works or the grant turns out dead.${err}` };
    case "grant_invalidated":
      return {
        kind,
        severity,
        message: `The grant of ${who} is dead; its integrations are in ERROR and their jobs parked until the user reconnects.${err}${f.reconnectUrl ? ` Reconnect page: ${f.reconnectUrl}` : " The user reconnects in the app (configure alerts.reconnectUrl to link them there)."}`,
        userMessage: `Your ${name} connection has stopped working. Please reconnect your ${name} account${f.reconnectUrl ? `: ${f.reconnectUrl}` : " in the app."}`,
      };
    case "api_auth_rejected":
      return {
        kind,
        severity,
        message: `The provider's API keeps rejecting the tokens of ${who}, even right after a refresh (${f.consecutiveFailures ?? "several"} calls in a row). Refreshes still work, so the grant is not declared dead; the user may have lost access at the provider (a removed app, a revoked scope, a suspended account). A job that meets the rejection is parked and pauses its integration until the connection is re-authorized (or the integration is enabled).${err}`,
      };
    case "recovered":
      return { kind, severity, message: `All clear: ${who} works again after ${duration(f.durationMs)}.` };
    case "provider_misconfigured":
      return { kind, severity, message: `The client configuration of ${who} is rejected by its authorization server (${f.lastErrorCode ?? "client error"}). Users' grants are NOT invalidated; fix the client id/secret with PUT /v1/providers/${"providerId" in f.subject ? f.subject.providerId : ""} and refreshes resume at once.` };
    case "job_dead":
      return { kind, severity, message: `A job of ${who} gave up after its last attempt${f.jobId ? ` (${f.jobId})` : ""}; replay it with POST /v1/integrations/{id}/replay once the cause is fixed.${err}` };
    case "breaker_opened":
      if ("providerId" in f.subject) {
        return {
          kind,
          severity,
          message: `The token endpoint of ${who} failed ${f.consecutiveFailures ?? "several"} times in a row across its connections${f.lastErrorCode ? ` (last: ${f.lastErrorCode})` : ""}; its breaker is open. Refreshes are deferred and one probe is sent every ${f.cooldownSeconds ?? "?"} s; connections stay usable (degraded) and their retries are not spent. Check the provider's status page and the network path to its token endpoint.`,
        };
      }
      return { kind, severity, message: `${who} failed repeatedly; ${f.integrations ?? 0} integration(s) paused (ERROR circuit_open), their jobs parked. A probe is sent after the cooldown.` };
    case "breaker_closed":
      if ("providerId" in f.subject) return { kind, severity, message: `All clear: the token endpoint breaker of ${who} is closed after ${duration(f.durationMs)} (a probe got an answer, or the provider was redefined); deferred refreshes run now.` };
      return { kind, severity, message: `All clear: ${who} answered a probe after ${duration(f.durationMs)}; integrations resumed and parked jobs replaying.` };
  }
}
