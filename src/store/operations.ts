/**
 * Read-only aggregates for the operator dashboard (issue 15 item 2), plus the
 * dashboard's sign-out list. Every number the overview shows comes from one
 * of these queries (docs/dashboard.md says which); none writes a row but
 * {@link OperationsRepository.recordSignOut} and its sweep.
 */
import { sql, type Kysely } from "kysely";
import type { Episode } from "../domain/alertEpisodes.js";
import type { Database } from "./schema.js";

/** Refresh outcomes of one hour, counted from `connection_events`. */
export interface HourlyRefreshOutcomes {
  /** Start of the hour, ms since the epoch (UTC, aligned to a whole hour). */
  hourStartMs: number;
  /** `refreshed` events (a token was obtained). */
  succeeded: number;
  /** `refresh_failed` events of class `transient` (a retry may help). */
  transient: number;
  /** `refresh_failed` events of class `permanent` (the grant or the client is dead). */
  permanent: number;
}

/** An open alert episode with the latest alert of its subject. */
export interface OpenEpisodeRow {
  /** `subject_type` of the alerts: `connectionId`, `providerId`, `integrationId` or `target`. */
  subjectType: string;
  subjectId: string;
  episode: Episode;
  /** Kind of the subject's latest alert in this episode, if one was sent. */
  lastKind?: string;
  /** Severity of that alert (`info`, `warning`, `critical`). */
  severity?: string;
  /** Operator text of that alert. */
  message?: string;
}

const HOUR_MS = 3_600_000;

/** Read-only dashboard queries over the store. */
export class OperationsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Refresh outcomes per hour in `[fromMs, toMs)`, one entry per hour (zeros
   * included), oldest first. Counts `refreshed` and `refresh_failed` events
   * (index `connection_events_at`, migration 0011_retention).
   * @param fromMs start, ms since the epoch; rounded down to a whole hour
   * @param toMs end (exclusive), ms since the epoch
   */
  async refreshOutcomesByHour(fromMs: number, toMs: number): Promise<HourlyRefreshOutcomes[]> {
    const start = Math.floor(fromMs / HOUR_MS) * HOUR_MS;
    const rows = await this.db
      .selectFrom("connection_events")
      .select(["at", "type", "class"])
      .where("at", ">=", start)
      .where("at", "<", toMs)
      .where("type", "in", ["refreshed", "refresh_failed"])
      .execute();
    const hours: HourlyRefreshOutcomes[] = [];
    for (let h = start; h < toMs; h += HOUR_MS) hours.push({ hourStartMs: h, succeeded: 0, transient: 0, permanent: 0 });
    for (const r of rows) {
      const bucket = hours[Math.floor((Number(r.at) - start) / HOUR_MS)];
      if (!bucket) continue;
      if (r.type === "refreshed") bucket.succeeded += 1;
      else if (r.class === "permanent") bucket.permanent += 1;
      else bucket.transient += 1;
    }
    return hours;
  }

  /**
   * Alert episodes still open (`status: "open"`), newest first, each with the
   * latest alert sent for its subject since the episode opened.
   * @param limit at most this many episodes
   */
  async openEpisodes(limit: number): Promise<OpenEpisodeRow[]> {
    const rows = await this.db.selectFrom("alert_episodes").select(["subject", "episode"]).orderBy("updated_at", "desc").execute();
    const out: OpenEpisodeRow[] = [];
    for (const r of rows) {
      const episode = JSON.parse(r.episode) as Episode;
      if (episode.status !== "open") continue;
      const colon = r.subject.indexOf(":");
      const subjectType = r.subject.slice(0, colon);
      const subjectId = r.subject.slice(colon + 1);
      const last = await this.db
        .selectFrom("alerts")
        .select(["kind", "severity", "message"])
        .where("subject_type", "=", subjectType)
        .where("subject_id", "=", subjectId)
        .where("at", ">=", episode.openedAt)
        .orderBy("at", "desc")
        .orderBy("id", "desc")
        .limit(1)
        .executeTakeFirst();
      out.push({ subjectType, subjectId, episode, ...(last ? { lastKind: last.kind, severity: last.severity, message: last.message } : {}) });
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Connection counts by provider and state: `{providerId: {state: n}}`. */
  async connectionsByProvider(): Promise<Record<string, Record<string, number>>> {
    const rows = await this.db.selectFrom("connections").select(["provider_id", "state", (eb) => eb.fn.countAll<number>().as("n")]).groupBy(["provider_id", "state"]).execute();
    const out: Record<string, Record<string, number>> = {};
    for (const r of rows) (out[r.provider_id] ??= {})[r.state] = Number(r.n);
    return out;
  }

  /** Delivery-target breakers that are open now: `{target, consecutiveFailures, openedAt, cooldownUntil}` (ms). */
  async openTargetBreakers(): Promise<Array<{ target: string; consecutiveFailures: number; openedAtMs: number | null; cooldownUntilMs: number | null }>> {
    const rows = await this.db.selectFrom("breakers").selectAll().where("state", "=", "open").orderBy("target").execute();
    return rows.map((r) => ({ target: r.target, consecutiveFailures: r.consecutive_failures, openedAtMs: r.opened_at === null ? null : Number(r.opened_at), cooldownUntilMs: r.cooldown_until === null ? null : Number(r.cooldown_until) }));
  }

  /** Total parked jobs (all integrations). */
  async parkedJobs(): Promise<number> {
    const r = await this.db.selectFrom("jobs").select((eb) => eb.fn.countAll<number>().as("n")).where("state", "=", "parked").executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /**
   * Remember that a dashboard session was signed out, so its cookie is
   * refused even when replayed before it expires (docs/security.md "Dashboard").
   * @param sessionIdHash SHA-256 (hex) of the session's random id; the id itself is never stored
   * @param expiresAtMs when the session would have expired: the row can be forgotten after it
   */
  async recordSignOut(sessionIdHash: string, expiresAtMs: number, nowMs: number): Promise<void> {
    await this.db.deleteFrom("dashboard_sign_outs").where("expires_at", "<=", nowMs).execute();
    await this.db.insertInto("dashboard_sign_outs").values({ session_hash: sessionIdHash, expires_at: expiresAtMs }).onConflict((oc) => oc.column("session_hash").doNothing()).execute();
  }

  /** True when the session was signed out. @param sessionIdHash SHA-256 (hex) of its id */
  async isSignedOut(sessionIdHash: string): Promise<boolean> {
    const r = await this.db.selectFrom("dashboard_sign_outs").select(sql<number>`1`.as("one")).where("session_hash", "=", sessionIdHash).executeTakeFirst();
    return r !== undefined;
  }
}
