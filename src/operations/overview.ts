/**
 * `gk.operations`: what the operator dashboard (issue 15) shows at a glance,
 * read from the store — connections by state, integrations by status, jobs by
 * state, open alert episodes, providers and breakers, refresh outcomes per
 * hour — and the dashboard's sign-out list. Read-only but for the sign-outs.
 * docs/dashboard.md says which query each number comes from.
 */
import { createHash } from "node:crypto";
import type { Clock } from "../domain/clock.js";
import type { ConnectionRepository } from "../store/connections.js";
import type { IntegrationRepository } from "../store/integrations.js";
import type { JobRepository } from "../store/jobs.js";
import type { HourlyRefreshOutcomes, OpenEpisodeRow, OperationsRepository } from "../store/operations.js";
import type { ProviderService } from "../providers/service.js";

export type { HourlyRefreshOutcomes } from "../store/operations.js";

/**
 * A provider's token-endpoint breaker as the overview shows it (design.md
 * "Breakers and cooldowns"): `open` refuses refreshes, `half_open` lets the
 * next one through as the probe, `closed` is normal service.
 */
export type ProviderBreakerState = "closed" | "open" | "half_open";

/** One provider on the overview. */
export interface ProviderHealth {
  id: string;
  displayName?: string;
  /** Its connections by state (`ready`, `degraded`, `error`, …). */
  connections: Record<string, number>;
  breaker: ProviderBreakerState;
}

/** An open alert episode (design.md "Alerts"). Times RFC 3339. */
export interface OpenAlertEpisode {
  /** What the episode is about: `connectionId`, `providerId`, `integrationId` or `target`. */
  subjectType: string;
  subjectId: string;
  openedAt: string;
  /** The phase reached: the latest alert kind sent in it (`refresh_failed`, `refresh_escalated`, `grant_invalidated`, …), or `open` before any. */
  phase: string;
  /** Severity of that alert (`info`, `warning`, `critical`), when one was sent. */
  severity?: string;
  /** Operator text of that alert. */
  message?: string;
}

/** Everything the overview page shows. */
export interface OperationsOverview {
  /** When it was read, RFC 3339 (the injected clock). */
  at: string;
  connectionsByState: Record<string, number>;
  integrationsByStatus: Record<string, number>;
  jobsByState: Record<string, number>;
  parkedJobs: number;
  deadJobs: number;
  openEpisodes: OpenAlertEpisode[];
  providers: ProviderHealth[];
  /** Delivery targets whose breaker is open (times RFC 3339). */
  openTargetBreakers: Array<{ target: string; consecutiveFailures: number; openedAt: string | null; cooldownUntil: string | null }>;
  /** The last 24 hours, oldest first, one entry per hour. */
  refreshOutcomes: HourlyRefreshOutcomes[];
}

/** What {@link OperationsService} reads. */
export interface OperationsDeps {
  ops: OperationsRepository;
  connections: ConnectionRepository;
  integrations: IntegrationRepository;
  jobs: JobRepository;
  providers: ProviderService;
  clock: Clock;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** The dashboard's reads (and its sign-out list). */
export class OperationsService {
  constructor(private readonly d: OperationsDeps) {}

  /** The overview: counts, episodes, providers, breakers and the 24 h refresh outcomes. */
  async overview(): Promise<OperationsOverview> {
    const now = this.d.clock.now();
    const [connectionsByState, integrationsByStatus, jobsByState, episodes, byProvider, providers, breakers, refreshOutcomes] = await Promise.all([
      this.d.connections.countByState(),
      this.d.integrations.countByStatus(),
      this.d.jobs.countByState(),
      this.d.ops.openEpisodes(100),
      this.d.ops.connectionsByProvider(),
      this.d.providers.list(),
      this.d.ops.openTargetBreakers(),
      this.refreshOutcomes(24),
    ]);
    const breakerOf = await this.providerBreakerStates(providers.map((p) => p.id));
    return {
      at: new Date(now).toISOString(),
      connectionsByState,
      integrationsByStatus,
      jobsByState,
      parkedJobs: jobsByState.parked ?? 0,
      deadJobs: jobsByState.dead ?? 0,
      openEpisodes: episodes.map(toEpisode),
      providers: providers.map((p) => ({ id: p.id, ...(p.displayName ? { displayName: p.displayName } : {}), connections: byProvider[p.id] ?? {}, breaker: breakerOf.get(p.id) ?? "closed" })),
      openTargetBreakers: breakers.map((b) => ({ target: b.target, consecutiveFailures: b.consecutiveFailures, openedAt: iso(b.openedAtMs), cooldownUntil: iso(b.cooldownUntilMs) })),
      refreshOutcomes,
    };
  }

  /** Open alert episodes, newest first (at most 100), with the phase and severity of their latest alert. */
  async openEpisodes(): Promise<OpenAlertEpisode[]> {
    return (await this.d.ops.openEpisodes(100)).map(toEpisode);
  }

  /** Job counts by state (`queued`, `parked`, `dead`, …; states without jobs are absent). */
  async jobsByState(): Promise<Record<string, number>> {
    return this.d.jobs.countByState();
  }

  /**
   * Refresh outcomes per hour over the last `hours` hours, the current hour
   * included (so `hours` entries), oldest first, from `connection_events`.
   * @param hours 1..168
   * @throws RangeError outside 1..168
   */
  async refreshOutcomes(hours: number): Promise<HourlyRefreshOutcomes[]> {
    if (!Number.isInteger(hours) || hours < 1 || hours > 168) throw new RangeError("hours must be an integer in 1..168");
    const now = this.d.clock.now();
    const hourStart = Math.floor(now / 3_600_000) * 3_600_000;
    return this.d.ops.refreshOutcomesByHour(hourStart - (hours - 1) * 3_600_000, hourStart + 3_600_000);
  }

  /**
   * Each provider's token-endpoint breaker (issue 12): `open` while it
   * refuses refreshes, `half_open` once its cooldown has passed and the next
   * refresh is the probe, `closed` otherwise (also for a provider never seen).
   * @param providerIds the providers to report
   */
  async providerBreakerStates(providerIds: readonly string[]): Promise<Map<string, ProviderBreakerState>> {
    const seen = await this.d.providers.tokenEndpointBreakers();
    return new Map(
      providerIds.map((id): [string, ProviderBreakerState] => {
        const b = seen[id];
        if (!b || b.state !== "open") return [id, "closed"];
        return [id, b.retryAfterSeconds === 0 ? "half_open" : "open"];
      }),
    );
  }

  /**
   * Refuse a dashboard session from now until it would have expired.
   * @param sessionId the session's random id (hashed before it is stored)
   * @param expiresAtMs when it expires, ms since the epoch
   */
  async signOut(sessionId: string, expiresAtMs: number): Promise<void> {
    await this.d.ops.recordSignOut(sha256(sessionId), expiresAtMs, this.d.clock.now());
  }

  /** True when the dashboard session `sessionId` was signed out. */
  async isSignedOut(sessionId: string): Promise<boolean> {
    return this.d.ops.isSignedOut(sha256(sessionId));
  }
}

function toEpisode(r: OpenEpisodeRow): OpenAlertEpisode {
  return {
    subjectType: r.subjectType,
    subjectId: r.subjectId,
    openedAt: new Date(r.episode.openedAt).toISOString(),
    phase: r.lastKind ?? r.episode.sent[r.episode.sent.length - 1] ?? "open",
    ...(r.severity ? { severity: r.severity } : {}),
    ...(r.message ? { message: r.message } : {}),
  };
}
