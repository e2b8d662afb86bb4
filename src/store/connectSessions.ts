/**
 * SQL for connect sessions (`connect_sessions`, migration 0007). Only the
 * SHA-256 of a link's secret is stored; orchestration (minting, expiry,
 * single use) lives in src/lifecycle/connectSessions.ts.
 */
import { randomUUID } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import { hashState } from "./oauthStates.js";
import type { ConnectSessionsTable, Database } from "./schema.js";

/** A `connect_sessions` row. */
export type ConnectSessionRow = Selectable<ConnectSessionsTable>;

/** SHA-256 hex of a link secret: what is stored and looked up (the digest `state`s get too). */
export const hashLinkSecret: (secret: string) => string = hashState;

/** New session id: `cs_` + 26 url-safe characters (not a secret: it names the session, it does not open it). */
export function newConnectSessionId(): string {
  return `cs_${randomUUID().replaceAll("-", "").slice(0, 26)}`;
}

/** Reads and writes of `connect_sessions`. */
export class ConnectSessionRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Store a new session. */
  async insert(row: ConnectSessionRow): Promise<void> {
    await this.db.insertInto("connect_sessions").values(row).execute();
  }

  /** The session a link secret opens, or undefined. */
  async findBySecret(secret: string): Promise<ConnectSessionRow | undefined> {
    return this.db.selectFrom("connect_sessions").selectAll().where("token_hash", "=", hashLinkSecret(secret)).executeTakeFirst();
  }

  /** One session by id, or undefined. */
  async get(id: string): Promise<ConnectSessionRow | undefined> {
    return this.db.selectFrom("connect_sessions").selectAll().where("id", "=", id).executeTakeFirst();
  }

  /**
   * Mark a session completed, once: one atomic UPDATE, so of two connects
   * finishing together exactly one wins.
   * @returns true for the caller that completed it
   */
  async claimCompletion(id: string, nowMs: number): Promise<boolean> {
    const r = await this.db.updateTable("connect_sessions").set({ completed_at: nowMs }).where("id", "=", id).where("completed_at", "is", null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Undo {@link claimCompletion} of this caller (its grant could not be stored), so the link can be used again. */
  async releaseCompletion(id: string, claimedAtMs: number): Promise<void> {
    await this.db.updateTable("connect_sessions").set({ completed_at: null }).where("id", "=", id).where("completed_at", "=", claimedAtMs).where("connection_id", "is", null).execute();
  }

  /** Record which connection the completed session stored. */
  async setConnection(id: string, connectionId: string): Promise<void> {
    await this.db.updateTable("connect_sessions").set({ connection_id: connectionId }).where("id", "=", id).execute();
  }
}
