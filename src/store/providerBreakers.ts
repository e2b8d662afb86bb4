/** Per provider token endpoint breakers (`provider_breakers`, migration 0012), shared by every instance on the store. */
import type { Expression, ExpressionBuilder, Kysely, Selectable, SqlBool } from "kysely";
import type { BreakerState } from "../domain/breaker.js";
import type { Dialect } from "./database.js";
import type { Database, ProviderBreakersTable } from "./schema.js";

/** A provider never seen: closed, no failures. */
const NEVER_SEEN: BreakerState = Object.freeze({ state: "closed", consecutiveFailures: 0, cooldownUntil: null });

function stateOf(r: Selectable<ProviderBreakersTable>): BreakerState {
  return r.state === "open"
    ? { state: "open", consecutiveFailures: Number(r.consecutive_failures), openedAt: Number(r.opened_at ?? 0), cooldownUntil: Number(r.cooldown_until ?? 0) }
    : { state: "closed", consecutiveFailures: Number(r.consecutive_failures), cooldownUntil: r.cooldown_until === null ? null : Number(r.cooldown_until) };
}

/**
 * Reads and writes of `provider_breakers`. Times are milliseconds since the epoch.
 *
 * As with the delivery breakers (`breakers.ts`), every decision is taken in a
 * transaction on a row that transaction has already written (an atomic
 * `+ 1`, or a no-op update that locks it), so concurrent refreshes on several
 * instances each count once and only one of them opens or closes the breaker.
 * The half-open probe is claimed with one conditional UPDATE: exactly one
 * caller per cooldown gets it. A write elsewhere that is only right while the
 * breaker is open (a connection's deferral) is fenced with
 * {@link ProviderBreakerRepository.whileOpen}.
 */
export class ProviderBreakerRepository {
  /**
   * @param db the store
   * @param dialect its engine: PostgreSQL's fence takes a row lock SQLite has no syntax for (and no need of)
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /** A provider's breaker (closed when never seen). Unlocked: for reading and gating, not for deciding a transition. */
  async get(providerId: string): Promise<BreakerState> {
    const r = await this.db.selectFrom("provider_breakers").selectAll().where("provider_id", "=", providerId).executeTakeFirst();
    return r ? stateOf(r) : NEVER_SEEN;
  }

  /**
   * Every provider breaker the store has seen (providers never seen are closed and absent), by provider id:
   * for the dashboard, `GET /v1/providers/{id}` and the metrics gauge.
   */
  async providerBreakers(): Promise<Map<string, BreakerState>> {
    const rows = await this.db.selectFrom("provider_breakers").selectAll().orderBy("provider_id").execute();
    return new Map(rows.map((r) => [r.provider_id, stateOf(r)]));
  }

  /**
   * Count one endpoint fault and store what `decide` makes of it, in one
   * transaction: the increment locks the row, so `decide` sees the state
   * every earlier fault left and no other writer decides meanwhile.
   * @param decide from the state before this fault to the state to store
   * @returns what `decide` returned
   */
  async countFault<T extends { next: BreakerState }>(providerId: string, nowMs: number, decide: (before: BreakerState) => T): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .insertInto("provider_breakers")
        .values({ provider_id: providerId, state: "closed", consecutive_failures: 1, opened_at: null, cooldown_until: null, updated_at: nowMs })
        .onConflict((oc) => oc.column("provider_id").doUpdateSet((eb) => ({ consecutive_failures: eb("provider_breakers.consecutive_failures", "+", 1), updated_at: nowMs })))
        .returningAll()
        .executeTakeFirstOrThrow();
      const s = stateOf(r);
      const t = decide({ ...s, consecutiveFailures: s.consecutiveFailures - 1 });
      await this.write(trx, providerId, t.next, nowMs);
      return t;
    });
  }

  /**
   * After an answer from the endpoint: lock the row, and when it is not clean
   * store what `decide` makes of it. A provider never seen, or one already
   * closed with no failures, costs one UPDATE that matches nothing.
   * @returns what `decide` returned, or undefined when there was nothing to reset
   */
  async settle<T extends { next: BreakerState }>(providerId: string, nowMs: number, decide: (current: BreakerState) => T): Promise<T | undefined> {
    return this.db.transaction().execute(async (trx) => {
      // A no-op update: it locks the row on PostgreSQL and takes the write lock on SQLite, with the same SQL.
      const r = await trx
        .updateTable("provider_breakers")
        .set((eb) => ({ updated_at: eb.ref("updated_at") }))
        .where("provider_id", "=", providerId)
        .where((eb) => eb.or([eb("state", "=", "open"), eb("consecutive_failures", ">", 0)]))
        .returningAll()
        .executeTakeFirst();
      if (!r) return undefined;
      const t = decide(stateOf(r));
      await this.write(trx, providerId, t.next, nowMs);
      return t;
    });
  }

  /**
   * Claim the half-open probe of an open breaker whose cooldown is over: one
   * conditional UPDATE moves `cooldown_until` to `nowMs + cooldownMs`, so
   * every other caller (any instance) sees the cooldown running again until
   * the probe's result is stored.
   * @returns true for the one caller that got the probe
   */
  async claimProbe(providerId: string, nowMs: number, cooldownMs: number): Promise<boolean> {
    const r = await this.db
      .updateTable("provider_breakers")
      .set({ cooldown_until: nowMs + cooldownMs, updated_at: nowMs })
      .where("provider_id", "=", providerId)
      .where("state", "=", "open")
      .where("cooldown_until", "<=", nowMs)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * A condition for an UPDATE of `connections`: true while the provider's
   * breaker is open, and it stays open until that UPDATE's transaction ends.
   * A deferral decided on an open breaker must not land after the breaker
   * closed: the close reschedules the deferred connections, and a deferral
   * written after that would hold its connection back for a whole cooldown
   * (seen on PostgreSQL with two instances, issue 12). On PostgreSQL the
   * breaker row is share-locked (`FOR SHARE`): a close (an UPDATE of that row)
   * waits for the deferral's commit, and a deferral that waited for a close
   * re-reads the row and finds it closed. On SQLite the UPDATE holds the
   * store's write lock, so no close can land between its check and its write.
   * @param providerId the connection's provider
   */
  whileOpen(providerId: string): (eb: ExpressionBuilder<Database, "connections">) => Expression<SqlBool> {
    return (eb) => {
      const open = eb.selectFrom("provider_breakers").select("provider_breakers.provider_id").where("provider_breakers.provider_id", "=", providerId).where("provider_breakers.state", "=", "open");
      return eb.exists(this.dialect === "postgres" ? open.forShare() : open);
    };
  }

  /** Forget a provider's breaker (the provider was redefined or deleted: a new configuration starts closed). */
  async remove(providerId: string): Promise<void> {
    await this.db.deleteFrom("provider_breakers").where("provider_id", "=", providerId).execute();
  }

  private async write(db: Kysely<Database>, providerId: string, s: BreakerState, nowMs: number): Promise<void> {
    await db
      .updateTable("provider_breakers")
      .set({ state: s.state, consecutive_failures: s.consecutiveFailures, opened_at: s.state === "open" ? s.openedAt : null, cooldown_until: s.cooldownUntil, updated_at: nowMs })
      .where("provider_id", "=", providerId)
      .execute();
  }
}
