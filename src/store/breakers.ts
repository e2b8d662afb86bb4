/** Per delivery target breakers (`breakers`), shared by every instance on the store. */
import type { Kysely, Selectable, Transaction } from "kysely";
import type { BreakerState } from "../domain/breaker.js";
import type { BreakersTable, Database } from "./schema.js";
import { runPrepared } from "./database.js";

type Db = Kysely<Database> | Transaction<Database>;

/** A target never seen: closed, no failures. */
const NEVER_SEEN: BreakerState = Object.freeze({ state: "closed", consecutiveFailures: 0, cooldownUntil: null });

function stateOf(r: Selectable<BreakersTable>): BreakerState {
  return r.state === "open"
    ? { state: "open", consecutiveFailures: r.consecutive_failures, openedAt: r.opened_at ?? 0, cooldownUntil: r.cooldown_until ?? 0 }
    : { state: "closed", consecutiveFailures: r.consecutive_failures, cooldownUntil: r.cooldown_until };
}

/**
 * Reads and writes of `breakers`. Times are milliseconds since the epoch.
 *
 * Breakers are shared counters: instances and the concurrent jobs of one
 * worker batch move them at the same time. Every decision is therefore taken
 * inside a transaction on a row this transaction has already written —
 * {@link BreakerRepository.countFault} (an atomic `+ 1`) or
 * {@link BreakerRepository.lock} — so the row is locked (PostgreSQL) or the
 * store's write lock held (SQLite) until the decision is stored: two writers
 * never decide from the same state, and no increment is lost.
 */
export class BreakerRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Breakers of several targets at once (closed when never seen). Unlocked: for reading, not for deciding. */
  async breakers(targets: string[]): Promise<Map<string, BreakerState>> {
    const out = new Map<string, BreakerState>();
    for (const t of targets) out.set(t, NEVER_SEEN);
    if (targets.length === 0) return out;
    const rows = await runPrepared(this.db, this.db.selectFrom("breakers").selectAll().where("target", "in", targets));
    for (const r of rows) out.set(r.target, stateOf(r));
    return out;
  }

  /** A target's breaker (closed when never seen). Unlocked: for reading, not for deciding. */
  async breaker(target: string, db: Db = this.db): Promise<BreakerState> {
    const r = await db.selectFrom("breakers").selectAll().where("target", "=", target).executeTakeFirst();
    return r ? stateOf(r) : NEVER_SEEN;
  }

  /**
   * Count one fault atomically (`consecutive_failures + 1`, creating the row
   * for a target never seen) and lock the row for the rest of `db`'s
   * transaction. Only the count is written here; the caller stores what
   * `onFault` makes of the state returned.
   * @returns the breaker as it was before this fault (its count one less than the stored one)
   */
  async countFault(target: string, nowMs: number, db: Transaction<Database>): Promise<BreakerState> {
    const r = await db
      .insertInto("breakers")
      .values({ target, state: "closed", consecutive_failures: 1, opened_at: null, cooldown_until: null, updated_at: nowMs })
      .onConflict((oc) => oc.column("target").doUpdateSet((eb) => ({ consecutive_failures: eb("breakers.consecutive_failures", "+", 1), updated_at: nowMs })))
      .returningAll()
      .executeTakeFirstOrThrow();
    const s = stateOf(r);
    return { ...s, consecutiveFailures: s.consecutiveFailures - 1 };
  }

  /**
   * Read a target's breaker under a lock held until `db`'s transaction ends:
   * a no-op UPDATE, which locks the row on PostgreSQL and takes the write
   * lock on SQLite, with the same SQL on both.
   * @returns the breaker, or undefined for a target never seen (nothing to lock, nothing to reset)
   */
  async lock(target: string, db: Transaction<Database>): Promise<BreakerState | undefined> {
    const r = await db.updateTable("breakers").set((eb) => ({ updated_at: eb.ref("updated_at") })).where("target", "=", target).returningAll().executeTakeFirst();
    return r ? stateOf(r) : undefined;
  }

  /** Store a target's breaker. */
  async saveBreaker(target: string, s: BreakerState, nowMs: number, db: Db = this.db): Promise<void> {
    const row: BreakersTable = { target, state: s.state, consecutive_failures: s.consecutiveFailures, opened_at: s.state === "open" ? s.openedAt : null, cooldown_until: s.cooldownUntil, updated_at: nowMs };
    await db.insertInto("breakers").values(row).onConflict((oc) => oc.column("target").doUpdateSet({ state: row.state, consecutive_failures: row.consecutive_failures, opened_at: row.opened_at, cooldown_until: row.cooldown_until, updated_at: nowMs })).execute();
  }

  /** Open breakers whose cooldown has passed: exactly those `probeDue` (domain/breaker.ts) says may send a probe. */
  async breakersDueForProbe(nowMs: number): Promise<string[]> {
    const rows = await this.db.selectFrom("breakers").select("target").where("state", "=", "open").where("cooldown_until", "<=", nowMs).execute();
    return rows.map((r) => r.target);
  }

  /** How many breakers are open (the `grantkeeper_breakers_open` gauge). */
  async countOpen(): Promise<number> {
    const r = await this.db.selectFrom("breakers").select((eb) => eb.fn.countAll<number>().as("n")).where("state", "=", "open").executeTakeFirstOrThrow();
    return Number(r.n);
  }
}
