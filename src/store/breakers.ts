/** Per delivery target breakers (`breakers`), shared by every instance on the store. */
import type { Kysely, Selectable, Transaction } from "kysely";
import type { BreakerState } from "../domain/breaker.js";
import type { BreakersTable, Database } from "./schema.js";

type Db = Kysely<Database> | Transaction<Database>;

/** A target never seen: closed, no failures. */
const NEVER_SEEN: BreakerState = Object.freeze({ state: "closed", consecutiveFailures: 0, cooldownUntil: null });

function stateOf(r: Selectable<BreakersTable>): BreakerState {
  return r.state === "open"
    ? { state: "open", consecutiveFailures: r.consecutive_failures, openedAt: r.opened_at ?? 0, cooldownUntil: r.cooldown_until ?? 0 }
    : { state: "closed", consecutiveFailures: r.consecutive_failures, cooldownUntil: r.cooldown_until };
}

/** Reads and writes of `breakers`. Times are milliseconds since the epoch. */
export class BreakerRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Breakers of several targets at once (closed when never seen). */
  async breakers(targets: string[]): Promise<Map<string, BreakerState>> {
    const out = new Map<string, BreakerState>();
    for (const t of targets) out.set(t, NEVER_SEEN);
    if (targets.length === 0) return out;
    const rows = await this.db.selectFrom("breakers").selectAll().where("target", "in", targets).execute();
    for (const r of rows) out.set(r.target, stateOf(r));
    return out;
  }

  /** A target's breaker (closed when never seen). */
  async breaker(target: string, db: Db = this.db): Promise<BreakerState> {
    const r = await db.selectFrom("breakers").selectAll().where("target", "=", target).executeTakeFirst();
    return r ? stateOf(r) : NEVER_SEEN;
  }

  /** Store a target's breaker. */
  async saveBreaker(target: string, s: BreakerState, nowMs: number, db: Db = this.db): Promise<void> {
    const row: BreakersTable = { target, state: s.state, consecutive_failures: s.consecutiveFailures, opened_at: s.state === "open" ? s.openedAt : null, cooldown_until: s.cooldownUntil, updated_at: nowMs };
    await db.insertInto("breakers").values(row).onConflict((oc) => oc.column("target").doUpdateSet({ state: row.state, consecutive_failures: row.consecutive_failures, opened_at: row.opened_at, cooldown_until: row.cooldown_until, updated_at: nowMs })).execute();
  }

  /** Open breakers whose cooldown has passed (a probe is due). */
  async breakersDueForProbe(nowMs: number): Promise<string[]> {
    const rows = await this.db.selectFrom("breakers").select("target").where("state", "=", "open").where("cooldown_until", "<=", nowMs).execute();
    return rows.map((r) => r.target);
  }
}
