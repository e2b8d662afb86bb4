/**
 * SQL for integrations, their dependencies and their status history. Every
 * status fan-out (one connection, thousands of integrations) is a pair of
 * set-based statements — one INSERT … SELECT for the history, one UPDATE —
 * never a loop of round trips (design.md "Storage and scale").
 */
import type { Kysely, Selectable, Transaction } from "kysely";
import type { IntegrationStatus } from "../domain/states.js";
import type { Database, IntegrationActor, IntegrationEventsTable, IntegrationsTable } from "./schema.js";
import { runPrepared } from "./database.js";

/** An `integrations` row. */
export type IntegrationRow = Selectable<IntegrationsTable>;
/** An `integration_events` row. */
export type IntegrationEventRow = Selectable<IntegrationEventsTable>;

type Db = Kysely<Database> | Transaction<Database>;

/** One status change to record. */
export interface StatusChange {
  actor: IntegrationActor;
  to: IntegrationStatus;
  reason: string | null;
  causeConnectionId: string | null;
  message: string;
  nowMs: number;
}

/** Reads and writes of integrations. */
export class IntegrationRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Run `fn` in one transaction. */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  /** Insert an integration with its dependencies and its first history entry (a new integration has no rotated webhook secret). */
  async insert(row: Omit<IntegrationRow, "webhook_previous_secret_ct" | "webhook_secret_rotated_at">, connectionIds: string[], message: string, db: Db): Promise<void> {
    await db.insertInto("integrations").values(row).execute();
    if (connectionIds.length > 0) await db.insertInto("integration_connections").values(connectionIds.map((connection_id) => ({ integration_id: row.id, connection_id }))).execute();
    await db
      .insertInto("integration_events")
      .values({ integration_id: row.id, at: row.created_at, actor: "user", from_status: null, to_status: row.status, reason: row.status_reason, cause: causeJson(row.status_cause_connection_id), message })
      .execute();
  }

  /** One row, or undefined. */
  async get(id: string, db: Db = this.db): Promise<IntegrationRow | undefined> {
    return db.selectFrom("integrations").selectAll().where("id", "=", id).executeTakeFirst();
  }

  /** Several rows by id (missing ids are absent from the map). */
  async getMany(ids: string[]): Promise<Map<string, IntegrationRow>> {
    if (ids.length === 0) return new Map();
    const rows = await runPrepared(this.db, this.db.selectFrom("integrations").selectAll().where("id", "in", ids));
    return new Map(rows.map((r) => [r.id, r]));
  }

  /**
   * One row, locked for the rest of the transaction: a no-op UPDATE takes the
   * row lock on PostgreSQL and the write lock on SQLite (both engines, no
   * `FOR UPDATE`, which SQLite lacks), so two concurrent read-modify-writes of
   * the row run one after the other.
   */
  async getForUpdate(id: string, trx: Transaction<Database>): Promise<IntegrationRow | undefined> {
    await trx.updateTable("integrations").set((eb) => ({ updated_at: eb.ref("updated_at") })).where("id", "=", id).execute();
    return trx.selectFrom("integrations").selectAll().where("id", "=", id).executeTakeFirst();
  }

  /**
   * Replace an integration's inbound webhook settings.
   * @param signing a scheme, or `not_configured` to take no inbound webhooks
   * @param secretCt the encrypted secret, or null
   * @param previous the rotated-out secret still accepted (its ciphertext as stored under `webhook_secret_ct`) and when it was rotated out, ms since the epoch; nulls for none
   * @returns false when no such integration exists
   */
  async setWebhook(id: string, signing: string, secretCt: string | null, nowMs: number, db: Db = this.db, previous: { ct: string | null; rotatedAt: number | null } = { ct: null, rotatedAt: null }): Promise<boolean> {
    const r = await db
      .updateTable("integrations")
      .set({ webhook_signing: signing, webhook_secret_ct: secretCt, webhook_previous_secret_ct: previous.ct, webhook_secret_rotated_at: previous.rotatedAt, updated_at: nowMs })
      .where("id", "=", id)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** A page ordered by id. */
  async list(filter: { entityId?: string; status?: IntegrationStatus; connectionId?: string }, after: string | undefined, limit: number): Promise<IntegrationRow[]> {
    let q = this.db.selectFrom("integrations").selectAll().orderBy("id").limit(limit);
    if (filter.entityId !== undefined) q = q.where("entity_id", "=", filter.entityId);
    if (filter.status !== undefined) q = q.where("status", "=", filter.status);
    if (filter.connectionId !== undefined) {
      const cid = filter.connectionId;
      q = q.where("id", "in", (eb) => eb.selectFrom("integration_connections").select("integration_id").where("connection_id", "=", cid));
    }
    if (after !== undefined) q = q.where("id", ">", after);
    return q.execute();
  }

  /** Dependencies of the given integrations, by integration id. */
  async connectionIdsOf(ids: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return out;
    const rows = await runPrepared(this.db, this.db.selectFrom("integration_connections").select(["integration_id", "connection_id"]).where("integration_id", "in", ids).orderBy("connection_id"));
    for (const r of rows) out.get(r.integration_id)?.push(r.connection_id);
    return out;
  }

  /** The first dependency of an integration that is in state `error`, if any. */
  async deadDependency(integrationId: string, db: Db = this.db): Promise<string | undefined> {
    const r = await db
      .selectFrom("integration_connections as ic")
      .innerJoin("connections as c", "c.id", "ic.connection_id")
      .select("c.id")
      .where("ic.integration_id", "=", integrationId)
      .where("c.state", "=", "error")
      .orderBy("c.id")
      .limit(1)
      .executeTakeFirst();
    return r?.id;
  }

  /** Change one integration's status, with its history entry. */
  async setStatus(id: string, from: IntegrationStatus, change: StatusChange, db: Db): Promise<void> {
    await db
      .updateTable("integrations")
      .set({ status: change.to, status_reason: change.reason, status_cause_connection_id: change.causeConnectionId, status_cause_target: null, updated_at: change.nowMs })
      .where("id", "=", id)
      .execute();
    await db
      .insertInto("integration_events")
      .values({ integration_id: id, at: change.nowMs, actor: change.actor, from_status: from, to_status: change.to, reason: change.reason, cause: causeJson(change.causeConnectionId), message: change.message })
      .execute();
  }

  /**
   * Move every integration matching `where` to a new status, with one history
   * entry each: one INSERT … SELECT and one UPDATE, whatever the fan-out.
   * @returns how many changed
   */
  private async bulkTransition(db: Db, where: (eb: any) => any, change: Omit<StatusChange, "causeConnectionId"> & { causeConnectionId?: string | null; causeTarget?: string | null }): Promise<number> {
    const cause = change.causeConnectionId ? JSON.stringify({ connectionId: change.causeConnectionId }) : change.causeTarget ? JSON.stringify({ target: change.causeTarget }) : null;
    await db
      .insertInto("integration_events")
      .columns(["integration_id", "at", "actor", "from_status", "to_status", "reason", "cause", "message"])
      .expression((eb) =>
        eb
          .selectFrom("integrations")
          .select((s) => ["id", s.val(change.nowMs).as("at"), s.val(change.actor).as("actor"), "status", s.val(change.to).as("to_status"), s.val(change.reason).as("reason"), s.val(cause).as("cause"), s.val(change.message).as("message")])
          .where(where),
      )
      .execute();
    const r = await db
      .updateTable("integrations")
      .set({ status: change.to, status_reason: change.reason, status_cause_connection_id: change.causeConnectionId ?? null, status_cause_target: change.causeTarget ?? null, updated_at: change.nowMs })
      .where(where)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /**
   * Every ENABLED integration that depends on `connectionId` → ERROR(`reason`),
   * caused by that connection.
   * @returns how many changed
   */
  async invalidateDependents(connectionId: string, reason: string, message: string, nowMs: number, db: Db): Promise<number> {
    return this.bulkTransition(
      db,
      (eb) => eb.and([eb("status", "=", "ENABLED"), eb("id", "in", eb.selectFrom("integration_connections").select("integration_id").where("connection_id", "=", connectionId))]),
      { actor: "system", to: "ERROR", reason, causeConnectionId: connectionId, message, nowMs },
    );
  }

  /**
   * Pause one integration because of a connection: ENABLED → ERROR(`reason`),
   * caused by `connectionId`, so re-authorizing that connection resets it
   * (see {@link IntegrationRepository.resetAfterReauth}). Any other status is left alone.
   * @returns 1 when it changed, else 0
   */
  async pauseForConnection(integrationId: string, reason: string, connectionId: string, message: string, nowMs: number, db: Db): Promise<number> {
    return this.bulkTransition(db, (eb) => eb.and([eb("id", "=", integrationId), eb("status", "=", "ENABLED")]), { actor: "system", to: "ERROR", reason, causeConnectionId: connectionId, message, nowMs });
  }

  /** A delivery target's breaker opened: its ENABLED integrations → ERROR(`circuit_open`, target). @returns how many changed */
  async openCircuit(target: string, nowMs: number, db: Db): Promise<number> {
    return this.bulkTransition(db, (eb) => eb.and([eb("status", "=", "ENABLED"), eb("delivery_target", "=", target)]), {
      actor: "system",
      to: "ERROR",
      reason: "circuit_open",
      causeTarget: target,
      message: `delivery target failed repeatedly; paused until a probe succeeds`,
      nowMs,
    });
  }

  /** A delivery target's breaker closed: integrations in ERROR(`circuit_open`) for it → ENABLED. @returns how many changed */
  async closeCircuit(target: string, nowMs: number, db: Db): Promise<number> {
    return this.bulkTransition(db, (eb) => eb.and([eb("status", "=", "ERROR"), eb("status_reason", "=", "circuit_open"), eb("status_cause_target", "=", target)]), {
      actor: "system",
      to: "ENABLED",
      reason: "circuit_closed",
      causeTarget: target,
      message: "delivery target answered a probe; resumed",
      nowMs,
    });
  }

  /** Integrations in ERROR(`circuit_open`) for a target (to pick a probe). */
  async openCircuitIntegrations(target: string): Promise<string[]> {
    const rows = await this.db.selectFrom("integrations").select("id").where("status", "=", "ERROR").where("status_reason", "=", "circuit_open").where("status_cause_target", "=", target).orderBy("id").execute();
    return rows.map((r) => r.id);
  }

  /**
   * After `connectionId` got a working grant: integrations in ERROR *because
   * of it* (and DISABLED dependents when the policy says so) go back to
   * ENABLED — unless another dependency is still dead, in which case the
   * ERROR now names that one. An ERROR with another cause is untouched.
   * @param statuses which statuses reset (`resetOnReauth`)
   * @returns how many became ENABLED
   */
  async resetAfterReauth(connectionId: string, statuses: ReadonlyArray<"ERROR" | "DISABLED">, nowMs: number, db: Db): Promise<number> {
    const candidates = (eb: any) => {
      const ors = [];
      if (statuses.includes("ERROR")) ors.push(eb.and([eb("status", "=", "ERROR"), eb("status_cause_connection_id", "=", connectionId)]));
      if (statuses.includes("DISABLED")) ors.push(eb.and([eb("status", "=", "DISABLED"), eb("id", "in", eb.selectFrom("integration_connections").select("integration_id").where("connection_id", "=", connectionId))]));
      return ors.length ? eb.or(ors) : eb.val(false);
    };
    const otherDead = (eb: any) =>
      eb.exists(
        eb
          .selectFrom("integration_connections as ic")
          .innerJoin("connections as c", "c.id", "ic.connection_id")
          .select("ic.connection_id")
          .whereRef("ic.integration_id", "=", "integrations.id")
          .where("c.state", "=", "error"),
      );
    const firstDead = (eb: any) =>
      eb
        .selectFrom("integration_connections as ic")
        .innerJoin("connections as c", "c.id", "ic.connection_id")
        .select("c.id")
        .whereRef("ic.integration_id", "=", "integrations.id")
        .where("c.state", "=", "error")
        .orderBy("c.id")
        .limit(1);

    // 1. Still blocked by another dead dependency: stay (or become) ERROR, caused by that one.
    await db
      .insertInto("integration_events")
      .columns(["integration_id", "at", "actor", "from_status", "to_status", "reason", "cause", "message"])
      .expression((eb) =>
        eb
          .selectFrom("integrations")
          .select((s) => ["id", s.val(nowMs).as("at"), s.val("reauthorization").as("actor"), "status", s.val("ERROR").as("to_status"), s.val("credential_invalidated").as("reason"), s.val(null).as("cause"), s.val(`${connectionId} was re-authorized but another connection is still dead`).as("message")])
          .where((eb2) => eb2.and([candidates(eb2), otherDead(eb2)])),
      )
      .execute();
    await db
      .updateTable("integrations")
      .set((eb) => ({ status: "ERROR", status_reason: "credential_invalidated", status_cause_connection_id: firstDead(eb), updated_at: nowMs }))
      .where((eb) => eb.and([candidates(eb), otherDead(eb)]))
      .execute();
    // 2. Everything else among the candidates: ENABLED.
    await db
      .insertInto("integration_events")
      .columns(["integration_id", "at", "actor", "from_status", "to_status", "reason", "cause", "message"])
      .expression((eb) =>
        eb
          .selectFrom("integrations")
          .select((s) => ["id", s.val(nowMs).as("at"), s.val("reauthorization").as("actor"), "status", s.val("ENABLED").as("to_status"), s.val("reauthorized").as("reason"), s.val(causeJson(connectionId)).as("cause"), s.val(`${connectionId} was re-authorized`).as("message")])
          .where(candidates),
      )
      .execute();
    const r = await db
      .updateTable("integrations")
      .set({ status: "ENABLED", status_reason: null, status_cause_connection_id: null, status_cause_target: null, updated_at: nowMs })
      .where(candidates)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** An integration's history, newest first. */
  async listEvents(integrationId: string, before: number | undefined, limit: number): Promise<IntegrationEventRow[]> {
    let q = this.db.selectFrom("integration_events").selectAll().where("integration_id", "=", integrationId).orderBy("id", "desc").limit(limit);
    if (before !== undefined) q = q.where("id", "<", before);
    return q.execute();
  }

  /** Counts by status (for `status`). */
  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db.selectFrom("integrations").select(["status", (eb) => eb.fn.countAll<number>().as("n")]).groupBy("status").execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }
}

function causeJson(connectionId: string | null): string | null {
  return connectionId === null ? null : JSON.stringify({ connectionId });
}
