/**
 * When a degraded connection's failure streak began, read back from its
 * history: the connection row keeps only the count of consecutive failures,
 * and the time spent degraded is measured once, on recovery (metrics
 * `grantkeeper_connection_degraded_seconds`, `…_recovery_duration_seconds`).
 */

/** The part of a history event the scan reads. */
export interface StreakEvent {
  id: number;
  type: string;
  /** Milliseconds since the Unix epoch. */
  at: number;
}

/** Times of the current failure streak, ms since the Unix epoch. */
export interface FailureStreak {
  /** The first failed attempt of the streak. */
  firstFailureAtMs: number;
  /** When the streak entered active recovery, if it did. */
  recoveryEnteredAtMs?: number;
}

/** Events that end a previous streak: a working grant was stored. */
const STREAK_BOUNDARIES: ReadonlySet<string> = new Set(["refreshed", "granted", "reauthorized"]);

/** Events read per page. */
const PAGE = 200;
/** Pages read at most: 20 000 events, weeks of active recovery at the default 30 min interval. */
const MAX_PAGES = 100;

/**
 * Scan one page of history, newest first, for the streak of
 * `consecutiveFailures` failed refreshes that ends at the newest event.
 * @param seen carried from page to page
 * @returns the streak; undefined when a working grant came before any failure; `"more"` when the page ended first
 */
export function scanStreak(eventsNewestFirst: readonly StreakEvent[], consecutiveFailures: number, seen: StreakScan): FailureStreak | "more" | undefined {
  for (const e of eventsNewestFirst) {
    if (STREAK_BOUNDARIES.has(e.type)) return streakOf(seen);
    if (e.type === "recovery_entered") seen.recovery ??= e.at;
    if (e.type === "refresh_failed") {
      seen.failures++;
      seen.first = e.at;
      if (seen.failures >= consecutiveFailures) return streakOf(seen);
    }
  }
  return "more";
}

/** What {@link scanStreak} has seen so far. */
export interface StreakScan {
  failures: number;
  first?: number;
  recovery?: number;
}

function streakOf(seen: StreakScan): FailureStreak | undefined {
  if (seen.first === undefined) return undefined;
  return { firstFailureAtMs: seen.first, ...(seen.recovery !== undefined ? { recoveryEnteredAtMs: seen.recovery } : {}) };
}

/**
 * Read a connection's current failure streak from its history, page by page.
 * @param listEvents the repository's history read, newest first, `before` an event id cursor
 * @returns undefined when no failed refresh is on record since the last working grant
 */
export async function readFailureStreak(
  listEvents: (connectionId: string, before: number | undefined, limit: number) => Promise<StreakEvent[]>,
  connectionId: string,
  consecutiveFailures: number,
): Promise<FailureStreak | undefined> {
  const seen: StreakScan = { failures: 0 };
  let before: number | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const events = await listEvents(connectionId, before, PAGE);
    const r = scanStreak(events, consecutiveFailures, seen);
    if (r !== "more") return r;
    if (events.length < PAGE) break;
    before = events[events.length - 1]!.id;
  }
  // History exhausted (or the read cap reached): the oldest failure seen is the best answer.
  return streakOf(seen);
}
