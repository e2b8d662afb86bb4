/**
 * SQL for connections and their event history. Orchestration lives in
 * src/lifecycle; this file only reads and writes rows. Ciphertexts pass
 * through untouched: decryption happens in the lifecycle, only when a token
 * is used (lists and status pages never touch ciphertext).
 */
import { randomUUID } from "node:crypto";
import type { Kysely, Selectable, Transaction, Updateable } from "kysely";
import { CONNECTION_STATES, isOneOf, type FailureClass } from "../domain/states.js";
import type { ConnectionEventsTable, ConnectionsTable, Database } from "./schema.js";

/** A `connections` row. */
export type ConnectionRow = Selectable<ConnectionsTable>;
/** A `connection_events` row. */
export type ConnectionEventRow = Selectable<ConnectionEventsTable>;
/** Columns a refresh may change. */
export type ConnectionPatch = Updateable<ConnectionsTable>;

/** A new event of a connection's history. */
export interface NewConnectionEvent {
  connectionId: string;
  atMs: number;
  type: string;
  class?: FailureClass | null;
  code?: string | null;
  message: string;
  detail?: Record<string, unknown> | null;
}

/** Filter for {@link ConnectionRepository.list}. */
export interface ConnectionFilter {
  entityId?: string;
  providerId?: string;
  state?: string;
}

const LIST_COLUMNS = [
  "id",
  "provider_id",
  "entity_id",
  "state",
  "token_type",
  "scope",
  "expires_at",
  "expires_at_assumed",
  "last_refreshed_at",
  "last_attempt_at",
  "next_refresh_at",
  "consecutive_failures",
  "last_error",
  "token_version",
  "lease_owner",
  "lease_until",
  "api_auth_rejections",
  "created_at",
  "updated_at",
  "connection_config",
] as const;

/** A row without ciphertext columns (what lists read). */
export type ConnectionSummaryRow = Pick<ConnectionRow, (typeof LIST_COLUMNS)[number]>;

/** A connection as {@link ConnectionRepository.makeDue} compares it: its id, tokens version and last error when it was read. */
export type RescheduleCandidate = Pick<ConnectionRow, "id" | "token_version"> & { last_error: string };

/** Candidates per compare-and-set statement of {@link ConnectionRepository.makeDue}. */
const RESCHEDULE_CHUNK = 100;

/** New connection id: `conn_` + 26 url-safe characters. */
export function newConnectionId(): string {
  return `conn_${randomUUID().replaceAll("-", "").slice(0, 26)}`;
}

/** Reads and writes of `connections` and `connection_events`. */
export class ConnectionRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Run `fn` in one transaction. */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  /** Full row, ciphertext included; undefined when absent. */
  async get(id: string, db: Kysely<Database> = this.db): Promise<ConnectionRow | undefined> {
    return db.selectFrom("connections").selectAll().where("id", "=", id).executeTakeFirst();
  }

  /** Row without ciphertext; undefined when absent. */
  async getSummary(id: string): Promise<ConnectionSummaryRow | undefined> {
    return this.db.selectFrom("connections").select(LIST_COLUMNS).where("id", "=", id).executeTakeFirst();
  }

  /** The entity's connection at a provider, ciphertext included. */
  async findByEntity(providerId: string, entityId: string, db: Kysely<Database> = this.db): Promise<ConnectionRow | undefined> {
    return db.selectFrom("connections").selectAll().where("provider_id", "=", providerId).where("entity_id", "=", entityId).executeTakeFirst();
  }

  /**
   * Page of connections ordered by id, without ciphertext.
   * @param after cursor: the last id of the previous page
   * @param limit 1..500
   */
  async list(filter: ConnectionFilter, after: string | undefined, limit: number): Promise<ConnectionSummaryRow[]> {
    let q = this.db.selectFrom("connections").select(LIST_COLUMNS).orderBy("id").limit(limit);
    if (filter.entityId !== undefined) q = q.where("entity_id", "=", filter.entityId);
    if (filter.providerId !== undefined) q = q.where("provider_id", "=", filter.providerId);
    if (filter.state !== undefined) {
      // A state that does not exist matches no connection.
      if (!isOneOf(CONNECTION_STATES, filter.state)) return [];
      q = q.where("state", "=", filter.state);
    }
    if (after !== undefined) q = q.where("id", ">", after);
    return q.execute();
  }

  /** Insert a new row. */
  async insert(row: ConnectionRow, db: Kysely<Database> = this.db): Promise<void> {
    await db.insertInto("connections").values(row).execute();
  }

  /** Update columns of one row unconditionally. @returns rows changed (0 or 1) */
  async update(id: string, patch: ConnectionPatch, db: Kysely<Database> = this.db): Promise<number> {
    const r = await db.updateTable("connections").set(patch).where("id", "=", id).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /**
   * Take the refresh lease of one connection when it is free or expired: one
   * atomic UPDATE, so two instances can never both hold it.
   * @param nowMs current time (milliseconds since the epoch)
   * @param ttlMs lease lifetime in milliseconds; a crashed holder's lease frees itself after it
   * @returns the row as it is now (re-read under the lease), or undefined when someone else holds it
   */
  async acquireLease(id: string, owner: string, nowMs: number, ttlMs: number): Promise<ConnectionRow | undefined> {
    return this.db
      .updateTable("connections")
      .set({ lease_owner: owner, lease_until: nowMs + ttlMs })
      .where("id", "=", id)
      .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<=", nowMs)]))
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Take the refresh leases of many connections in one statement (the
   * scheduler's batch: one commit instead of one per connection).
   * @returns the rows whose lease this call took (others are held elsewhere)
   */
  async acquireLeases(ids: string[], owner: string, nowMs: number, ttlMs: number): Promise<ConnectionRow[]> {
    if (ids.length === 0) return [];
    return this.db
      .updateTable("connections")
      .set({ lease_owner: owner, lease_until: nowMs + ttlMs })
      .where("id", "in", ids)
      .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<=", nowMs)]))
      .returningAll()
      .execute();
  }

  /**
   * Extend the refresh lease `owner` holds to `nowMs + ttlMs`, only while it
   * still holds it (a fenced write: an instance whose lease expired and was
   * taken by another gets `false` and must not call the token endpoint).
   * @returns false when another instance holds the lease now
   */
  async renewLease(id: string, owner: string, nowMs: number, ttlMs: number): Promise<boolean> {
    const r = await this.db.updateTable("connections").set({ lease_until: nowMs + ttlMs }).where("id", "=", id).where("lease_owner", "=", owner).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * Write `patch` and release the lease in one statement, only while `owner`
   * still holds it.
   * @returns false when the lease was lost (expired and taken by another instance)
   */
  async releaseLease(id: string, owner: string, patch: ConnectionPatch, db: Kysely<Database> = this.db): Promise<boolean> {
    const r = await db
      .updateTable("connections")
      .set({ ...patch, lease_owner: null, lease_until: null })
      .where("id", "=", id)
      .where("lease_owner", "=", owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * Ids of connections due for the scheduler: `next_refresh_at <= nowMs`, not
   * in `error`, lease free. Reads the `next_refresh_at` index only.
   */
  async due(nowMs: number, limit: number): Promise<Array<{ id: string; next_refresh_at: number | null }>> {
    return this.db
      .selectFrom("connections")
      .select(["id", "next_refresh_at"])
      .where("next_refresh_at", "<=", nowMs)
      .where("state", "!=", "error")
      .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<=", nowMs)]))
      .orderBy("next_refresh_at")
      .limit(limit)
      .execute();
  }

  /**
   * Earliest `next_refresh_at` of a connection not in `error` whose lease is
   * free at `nowMs`, or undefined. Leased rows are left out like `due()` does:
   * counting them would arm the timer in the past and spin while another
   * instance holds the lease.
   */
  async nextDueAt(nowMs: number): Promise<number | undefined> {
    const r = await this.db
      .selectFrom("connections")
      .select("next_refresh_at")
      .where("next_refresh_at", "is not", null)
      .where("state", "!=", "error")
      .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<=", nowMs)]))
      .orderBy("next_refresh_at")
      .limit(1)
      .executeTakeFirst();
    return r?.next_refresh_at ?? undefined;
  }

  /**
   * Make due at `nowMs` the provider's `degraded` connections whose last error
   * has one of `onlyCodes` (after its definition was fixed, or its token
   * endpoint breaker closed): {@link ConnectionRepository.rescheduleCandidates}
   * then {@link ConnectionRepository.makeDue}, so a connection that moved on
   * between the read and the write keeps its own schedule.
   * @returns rows changed
   */
  async rescheduleProvider(providerId: string, nowMs: number, onlyCodes: string[]): Promise<number> {
    return this.makeDue(await this.rescheduleCandidates(providerId, onlyCodes), nowMs);
  }

  /**
   * The provider's `degraded` connections whose last error has one of
   * `onlyCodes`, as they are now (the codes are read from the JSON in
   * process: one query for both engines).
   */
  async rescheduleCandidates(providerId: string, onlyCodes: string[]): Promise<RescheduleCandidate[]> {
    if (onlyCodes.length === 0) return [];
    const rows = await this.db.selectFrom("connections").select(["id", "token_version", "last_error"]).where("provider_id", "=", providerId).where("state", "=", "degraded").execute();
    return rows.filter((r): r is RescheduleCandidate => r.last_error !== null && onlyCodes.includes((JSON.parse(r.last_error) as { code?: string }).code ?? ""));
  }

  /**
   * Set `next_refresh_at = nowMs` on the candidates that are still as they
   * were read — `degraded`, same last error (the same deferral or failure),
   * same tokens — in a compare-and-set per row. A connection another instance
   * refreshed meanwhile (new `token_version`) keeps its new schedule: made due,
   * it would be refreshed a second time (21 token calls for 20 connections
   * after a breaker closed on PostgreSQL, issue 12); one that failed again
   * (new last error) keeps its backoff. The lease is not checked: the holder
   * writes its own schedule when it ends, and one that ends without writing
   * (nothing to do) leaves this one in place.
   * @param nowMs milliseconds since the epoch
   * @returns rows changed
   */
  async makeDue(candidates: RescheduleCandidate[], nowMs: number): Promise<number> {
    let changed = 0;
    // A bounded OR of (id, token_version, last_error) per statement: row values with an IN list are not SQLite syntax.
    for (let i = 0; i < candidates.length; i += RESCHEDULE_CHUNK) {
      const chunk = candidates.slice(i, i + RESCHEDULE_CHUNK);
      const r = await this.db
        .updateTable("connections")
        .set({ next_refresh_at: nowMs })
        .where("state", "=", "degraded")
        .where((eb) => eb.or(chunk.map((c) => eb.and([eb("id", "=", c.id), eb("token_version", "=", c.token_version), eb("last_error", "=", c.last_error)]))))
        .executeTakeFirst();
      changed += Number(r.numUpdatedRows);
    }
    return changed;
  }

  /**
   * Move a connection's next refresh to `atMs` only while its tokens and
   * schedule are what the caller read (compare-and-set): used after a
   * refresh crashed, so that a connection another instance refreshed
   * meanwhile is not pulled back to an early refresh.
   * @param expected `token_version` and `next_refresh_at` as read (the leased row)
   * @param atMs milliseconds since the epoch
   * @returns false when the row changed meanwhile (nothing written)
   */
  async postpone(id: string, expected: Pick<ConnectionRow, "token_version" | "next_refresh_at">, atMs: number): Promise<boolean> {
    const r = await this.db
      .updateTable("connections")
      .set({ next_refresh_at: atMs })
      .where("id", "=", id)
      .where("token_version", "=", expected.token_version)
      .where("next_refresh_at", expected.next_refresh_at === null ? "is" : "=", expected.next_refresh_at)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Delete one connection and its history (plus what `participants` do in the same transaction). @returns true when a row was deleted */
  async delete(id: string, participants?: (trx: Transaction<Database>) => Promise<void>): Promise<boolean> {
    return this.transaction(async (trx) => {
      await participants?.(trx);
      await trx.deleteFrom("connection_events").where("connection_id", "=", id).execute();
      const r = await trx.deleteFrom("connections").where("id", "=", id).executeTakeFirst();
      return Number(r.numDeletedRows) === 1;
    });
  }

  /** Append to a connection's history. */
  async appendEvent(e: NewConnectionEvent, db: Kysely<Database> = this.db): Promise<void> {
    await db
      .insertInto("connection_events")
      .values({
        connection_id: e.connectionId,
        at: e.atMs,
        type: e.type,
        class: e.class ?? null,
        code: e.code ?? null,
        message: e.message,
        detail: e.detail ? JSON.stringify(e.detail) : null,
      })
      .execute();
  }

  /**
   * A connection's history, newest first.
   * @param before cursor: only events with a smaller id
   */
  async listEvents(connectionId: string, before: number | undefined, limit: number): Promise<ConnectionEventRow[]> {
    let q = this.db.selectFrom("connection_events").selectAll().where("connection_id", "=", connectionId).orderBy("id", "desc").limit(limit);
    if (before !== undefined) q = q.where("id", "<", before);
    return q.execute();
  }

  /** Count of connections by state (for `status` and readiness). */
  async countByState(): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom("connections").select(["state", (eb) => eb.fn.countAll<number>().as("n")]).groupBy("state").execute();
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  /**
   * Count one more rejection of a connection's token by the provider's API,
   * in one atomic statement (concurrent calls and instances each count).
   * @returns the count after it, with the state and last error it was counted against; undefined when the connection is gone
   */
  async countApiAuthRejection(id: string): Promise<Pick<ConnectionRow, "api_auth_rejections" | "state" | "last_error"> | undefined> {
    return this.db
      .updateTable("connections")
      .set((eb) => ({ api_auth_rejections: eb("api_auth_rejections", "+", 1) }))
      .where("id", "=", id)
      .returning(["api_auth_rejections", "state", "last_error"])
      .executeTakeFirst();
  }

  /** The provider's API accepted a token: the rejection count goes back to 0 (no write when it is 0 already). */
  async resetApiAuthRejections(id: string): Promise<void> {
    await this.db.updateTable("connections").set({ api_auth_rejections: 0 }).where("id", "=", id).where("api_auth_rejections", ">", 0).execute();
  }

  /**
   * Write `patch` and append `event` in one transaction, only while the
   * connection's state and last error are still what the caller decided on
   * (compare-and-set: a refresh or another instance may have moved it).
   * @returns false when they changed meanwhile, and nothing was written
   */
  async updateIfUnchanged(id: string, expected: Pick<ConnectionRow, "state" | "last_error">, patch: ConnectionPatch, event: NewConnectionEvent): Promise<boolean> {
    return this.transaction(async (trx) => {
      const r = await trx
        .updateTable("connections")
        .set(patch)
        .where("id", "=", id)
        .where("state", "=", expected.state)
        .where((eb) => (expected.last_error === null ? eb("last_error", "is", null) : eb("last_error", "=", expected.last_error)))
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await this.appendEvent(event, trx);
      return true;
    });
  }
}
