/**
 * Alert episodes as pure transitions (design.md "Alerts"): an episode opens
 * on the first failure and resolves only on a success; each phase alerts once
 * per episode. A failure soon after a resolution re-opens the same episode
 * silently, so flapping input never becomes flapping alerts (the sim
 * background-jobs and chat-agent incidents: alert floods).
 */

/** Alert kinds. */
export const ALERT_KINDS = [
  "refresh_failed",
  "refresh_escalated",
  "recovery_entered",
  "grant_invalidated",
  "recovered",
  "provider_misconfigured",
  "job_dead",
  "breaker_opened",
  "breaker_closed",
  "api_auth_rejected",
] as const;
/** One of {@link ALERT_KINDS}. */
export type AlertKind = (typeof ALERT_KINDS)[number];

/** What happened to a subject (a connection, a provider, an integration, a target). */
export type EpisodeInput =
  | { type: "failure"; consecutiveFailures: number }
  | { type: "recovery_entered" }
  | { type: "invalidated" }
  | { type: "provider_misconfigured" }
  /** The provider's API keeps rejecting the connection's freshly refreshed tokens (it is `degraded`); resolved by an accepted call or a new grant. */
  | { type: "api_auth_rejected" }
  /** A job of the subject (an integration) died: alerted once per flap window, not once per job. */
  | { type: "job_dead" }
  | { type: "breaker_opened" }
  /** The breaker's probe succeeded: the all-clear of a breaker episode. */
  | { type: "breaker_closed" }
  | { type: "success" };

/** A subject's episode, persisted between inputs. Times in ms since the epoch. */
export interface Episode {
  /** `open` while failing; `resolved` after a success (re-opened silently by a failure within the flap window). */
  status: "open" | "resolved";
  openedAt: number;
  resolvedAt?: number;
  /** Kinds already alerted in this episode. */
  sent: AlertKind[];
}

/** Episode policy (config `alerts`). */
export interface EpisodePolicy {
  /** Alert on the first failure of an episode. @defaultValue true */
  alertOnFirstFailure: boolean;
  /** Escalate after this many consecutive failures. @defaultValue 3 */
  escalateAfter: number;
  /** Send the all-clear when an episode that alerted resolves. @defaultValue true */
  alertOnRecovery: boolean;
  /** A failure within this long after a resolution continues the old episode, silently. @defaultValue 600 000 ms */
  flapWindowMs: number;
}

/** Defaults of api-contract.md. */
export const defaultEpisodePolicy: Readonly<EpisodePolicy> = Object.freeze({ alertOnFirstFailure: true, escalateAfter: 3, alertOnRecovery: true, flapWindowMs: 600_000 });

/** Result of one input: the new episode (undefined when closed for good) and the alerts to send. */
export interface EpisodeStep {
  episode: Episode | undefined;
  alerts: AlertKind[];
  /** How long the episode lasted, ms, on `recovered`. */
  durationMs?: number;
}

function once(ep: Episode, kind: AlertKind, out: AlertKind[]): void {
  if (!ep.sent.includes(kind)) {
    ep.sent.push(kind);
    out.push(kind);
  }
}

/**
 * Apply one input.
 * @param current the subject's episode, or undefined when none is open
 * @param nowMs current time, ms since the epoch
 */
export function stepEpisode(current: Episode | undefined, input: EpisodeInput, nowMs: number, p: EpisodePolicy = defaultEpisodePolicy): EpisodeStep {
  // A resolved episode outside the flap window is over: the next failure opens a new one.
  let ep: Episode | undefined = current && current.status === "resolved" && nowMs - (current.resolvedAt ?? 0) > p.flapWindowMs ? undefined : current && { ...current, sent: [...current.sent] };
  const alerts: AlertKind[] = [];
  if (input.type === "success" || input.type === "breaker_closed") {
    if (!ep || ep.status === "resolved") return { episode: ep, alerts };
    const alerted = ep.sent.length > 0;
    ep.status = "resolved";
    ep.resolvedAt = nowMs;
    // A provider's episode that alerted a token endpoint breaker ends with that breaker's all-clear, whichever
    // instance's input arrives first (the probe's close, or a connection's success after it).
    const kind = input.type === "breaker_closed" || ep.sent.includes("breaker_opened") ? "breaker_closed" : "recovered";
    if (alerted && (p.alertOnRecovery || kind === "breaker_closed")) once(ep, kind, alerts);
    return { episode: ep, alerts, ...(alerts.length ? { durationMs: nowMs - ep.openedAt } : {}) };
  }
  if (!ep) {
    ep = { status: "open", openedAt: nowMs, sent: [] };
    if (input.type === "failure" && p.alertOnFirstFailure) once(ep, "refresh_failed", alerts);
  } else if (ep.status === "resolved") {
    ep.status = "open"; // flapping: same episode, no new first-failure alert
    delete ep.resolvedAt;
  }
  switch (input.type) {
    case "failure":
      if (input.consecutiveFailures >= p.escalateAfter) once(ep, "refresh_escalated", alerts);
      break;
    case "recovery_entered":
      once(ep, "recovery_entered", alerts);
      break;
    case "invalidated":
      once(ep, "grant_invalidated", alerts);
      break;
    case "provider_misconfigured":
      once(ep, "provider_misconfigured", alerts);
      break;
    case "api_auth_rejected":
      once(ep, "api_auth_rejected", alerts);
      break;
    case "breaker_opened":
      once(ep, "breaker_opened", alerts);
      break;
    case "job_dead":
      once(ep, "job_dead", alerts);
      // Nothing reports "jobs healthy again": the episode resolves at once, so further dead jobs within the flap window stay silent.
      ep.status = "resolved";
      ep.resolvedAt = nowMs;
      break;
  }
  return { episode: ep, alerts };
}
