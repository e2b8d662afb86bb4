/** SQL for pending authorization requests (`state` → verifier). Single use, with expiry. */
import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import type { Database, OAuthStatesTable } from "./schema.js";

/** SHA-256 hex of a `state` value: only the hash is stored, so a database read cannot forge a callback. */
export function hashState(state: string): string {
  return createHash("sha256").update(state).digest("hex");
}

/** Reads and writes of `oauth_states`. */
export class OAuthStateRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Store a pending authorization request. */
  async insert(row: OAuthStatesTable): Promise<void> {
    await this.db.insertInto("oauth_states").values(row).execute();
  }

  /**
   * Consume a state: marks it used in one atomic UPDATE and returns it, only
   * if it exists, is unused and unexpired.
   * @returns the row, or a reason it cannot be used
   */
  async consume(state: string, nowMs: number): Promise<{ ok: true; row: OAuthStatesTable } | { ok: false; reason: "unknown" | "used" | "expired" }> {
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

  /** Delete states that expired before `beforeMs`. @returns rows deleted */
  async purgeExpired(beforeMs: number): Promise<number> {
    const r = await this.db.deleteFrom("oauth_states").where("expires_at", "<", beforeMs).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
