/** SQL for pending authorization requests (`state` → verifier). Single use, with expiry. */
import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import type { Dialect } from "./database.js";
import type { Database, OAuthStatesTable } from "./schema.js";

/** SHA-256 hex of a `state` value: only the hash is stored, so a database read cannot forge a callback. */
export function hashState(state: string): string {
  return createHash("sha256").update(state).digest("hex");
}

/** Why a state cannot be used. */
export type StateRefusal = "unknown" | "used" | "expired";

/** A state's row, or why it cannot be used. */
export type StateLookup = { ok: true; row: OAuthStatesTable } | { ok: false; reason: StateRefusal };

/** Reads and writes of `oauth_states`. */
export class OAuthStateRepository {
  /**
   * @param db the store
   * @param dialect its engine (PostgreSQL takes a row lock in {@link insertCapped})
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect = "sqlite",
  ) {}

  /**
   * Read a state without using it up (the callback checks its browser
   * binding first, so a callback from another browser changes nothing).
   * @returns the row when it exists, is unused and unexpired; else why not
   */
  async lookup(state: string, nowMs: number): Promise<StateLookup> {
    const row = await this.db.selectFrom("oauth_states").selectAll().where("state_hash", "=", hashState(state)).executeTakeFirst();
    if (!row) return { ok: false, reason: "unknown" };
    if (row.used_at !== null) return { ok: false, reason: "used" };
    if (row.expires_at <= nowMs) return { ok: false, reason: "expired" };
    return { ok: true, row };
  }

  /**
   * Consume a state: marks it used in one atomic UPDATE and returns it, only
   * if it exists, is unused and unexpired.
   * @returns the row, or a reason it cannot be used
   */
  async consume(state: string, nowMs: number): Promise<StateLookup> {
    const hash = hashState(state);
    const row = await this.db
      .updateTable("oauth_states")
      .set({ used_at: nowMs })
      .where("state_hash", "=", hash)
      .where("used_at", "is", null)
      .where("expires_at", ">", nowMs)
      .returningAll()
      .executeTakeFirst();
    if (row) return { ok: true, row };
    const existing = await this.db.selectFrom("oauth_states").select(["used_at", "expires_at"]).where("state_hash", "=", hash).executeTakeFirst();
    if (!existing) return { ok: false, reason: "unknown" };
    return { ok: false, reason: existing.used_at !== null ? "used" : "expired" };
  }

  /**
   * Store a pending authorization request of a session, keeping at most
   * `keep` live (unused, unexpired) states for that session: the oldest are
   * deleted in the same transaction, oldest by arrival (`created_at` is kept
   * strictly increasing within a session). A link opened a thousand times thus
   * holds `keep` live states, not a thousand. On PostgreSQL the session's row
   * is locked first, so concurrent opens of one link cannot overshoot;
   * SQLite serializes writers anyway.
   * @returns states evicted
   */
  async insertCapped(row: OAuthStatesTable & { session_id: string }, keep: number, nowMs: number): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      if (this.dialect === "postgres") await trx.selectFrom("connect_sessions").select("id").where("id", "=", row.session_id).forUpdate().execute();
      const live = await trx
        .selectFrom("oauth_states")
        .select(["state_hash", "created_at"])
        .where("session_id", "=", row.session_id)
        .where("used_at", "is", null)
        .where("expires_at", ">", nowMs)
        .orderBy("created_at", "desc")
        .orderBy("state_hash")
        .execute();
      const evict = live.slice(Math.max(0, keep - 1)).map((r) => r.state_hash);
      if (evict.length > 0) await trx.deleteFrom("oauth_states").where("state_hash", "in", evict).execute();
      // `created_at` orders a session's states by arrival (the writes are serialized, see above): a state opened in
      // the same millisecond as the newest live one goes one after it. Otherwise such ties fell to the random hash,
      // and an older state could outlive newer ones (a link opened 250 times kept its first state in ~2 % of runs).
      const newest = live.length > 0 ? Number(live[0]!.created_at) : undefined;
      await trx.insertInto("oauth_states").values(newest !== undefined && newest >= row.created_at ? { ...row, created_at: newest + 1 } : row).execute();
      return evict.length;
    });
  }
}
