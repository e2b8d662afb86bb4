/**
 * Integrations: units of the host app's work that depend on connections.
 * Status propagation runs inside the connection's own transaction (see
 * {@link IntegrationService.attach}): a dead grant moves every dependent
 * ENABLED integration to ERROR(`credential_invalidated`) atomically (the
 * Frigg incident: 94k error lines a day from integrations left ENABLED).
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Transaction } from "kysely";
import type { Clock } from "../domain/clock.js";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import type { LifecycleHooks } from "../lifecycle/hooks.js";
import type { ConnectionRepository } from "../store/connections.js";
import type { Encryptor } from "../store/encryption.js";
import type { IntegrationRepository } from "../store/integrations.js";
import type { JobRepository } from "../store/jobs.js";
import type { Database } from "../store/schema.js";
import type { Logger } from "../telemetry/logger.js";
import { isInternalIntegrationId, newUserIntegrationId } from "./internal.js";
import type { WebhookSigningCache } from "./signingCache.js";
import { toIntegration, toIntegrationEvent, WEBHOOK_NOT_CONFIGURED, type Integration, type IntegrationEvent, type IntegrationStatus, type WEBHOOK_SIGNING } from "./view.js";
import { seqCursor } from "../domain/cursor.js";

/** Input of {@link IntegrationService.create}. */
export interface NewIntegration {
  name: string;
  entityId: string;
  connectionIds: string[];
  delivery?: { url: string; timeoutMs?: number; secret?: string };
  /** Inbound webhooks; without it the integration accepts none (`none` must be asked for by name). */
  webhook?: WebhookSettings;
}

/** An integration's inbound webhook settings: a signing scheme and its secret (required unless `none`). */
export interface WebhookSettings {
  signing: (typeof WEBHOOK_SIGNING)[number];
  secret?: string;
}

/** @throws {@link GrantkeeperError} 422 `validation_failed` for a signing scheme without a secret */
function checkWebhookSettings(webhook: WebhookSettings | undefined): void {
  if (webhook && webhook.signing !== "none" && !webhook.secret) {
    throw new GrantkeeperError(ErrorCode.validationFailed, `webhook.signing ${webhook.signing} needs webhook.secret`, { fields: [{ path: "webhook.secret", message: "required unless signing is none" }] });
  }
}

/** Policy of integrations (config `integrations`). */
export interface IntegrationPolicy {
  /** Statuses that reset to ENABLED when a connection is re-authorized. @defaultValue ["ERROR"] */
  resetOnReauth: ReadonlyArray<"ERROR" | "DISABLED">;
  /** Jobs of a DISABLED integration are parked (true) or discarded with a record (false). @defaultValue true */
  parkWhenDisabled: boolean;
}

/** Dependencies of {@link IntegrationService}. */
export interface IntegrationServiceDeps {
  repo: IntegrationRepository;
  jobs: JobRepository;
  connections: ConnectionRepository;
  encryptor: Encryptor;
  clock: Clock;
  logger: Logger;
  hooks: LifecycleHooks;
  policy: IntegrationPolicy;
  /** Ingress's cache of signing settings: {@link IntegrationService.setWebhook} drops the integration's entry, so this instance uses new settings at once. */
  signingCache?: WebhookSigningCache;
}

/** Two secrets compared in constant time (for their length). */
function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function notFound(id: string): GrantkeeperError {
  return new GrantkeeperError(ErrorCode.integrationNotFound, `no integration ${JSON.stringify(id)}`);
}

/** The integration API (`gk.integrations`). */
export class IntegrationService {
  constructor(private readonly d: IntegrationServiceDeps) {}

  /** Register the in-transaction propagation with the connection lifecycle. Called once at start. */
  attach(): void {
    const { hooks, policy, logger } = this.d;
    hooks.participate("invalidated", async (uow, e) => {
      const n = await uow.integrations.invalidateDependents(e.connectionId, "credential_invalidated", `connection ${e.connectionId} is dead (${e.lastError.code}); the user must reconnect`, e.nowMs);
      await uow.jobs.syncWithIntegrations(e.nowMs, policy.parkWhenDisabled);
      if (n > 0) logger.warn({ connectionId: e.connectionId, integrations: n }, "integrations moved to ERROR: credential invalidated");
    });
    hooks.participate("reauthorized", async (uow, e) => {
      const n = await uow.integrations.resetAfterReauth(e.connectionId, policy.resetOnReauth, e.nowMs);
      const { replayed } = await uow.jobs.syncWithIntegrations(e.nowMs, policy.parkWhenDisabled);
      if (replayed > 0) logger.info({ connectionId: e.connectionId, jobs: replayed }, "parked jobs replayed after re-authorization");
      if (n > 0) logger.info({ connectionId: e.connectionId, integrations: n }, "integrations re-enabled after re-authorization");
    });
    hooks.participate("deleted", async (uow, e) => {
      await uow.integrations.invalidateDependents(e.connectionId, "connection_deleted", `connection ${e.connectionId} was deleted`, e.nowMs);
      await uow.jobs.syncWithIntegrations(e.nowMs, policy.parkWhenDisabled);
    });
  }

  /**
   * Create an integration. It is ENABLED — or ERROR(`credential_invalidated`)
   * if one of its connections is already dead, so the invariant "a dead grant
   * means its integrations are in ERROR" holds from the start.
   * @returns the integration, plus the delivery secret when one was generated (shown once)
   * @throws {@link GrantkeeperError} 422 `connection_not_found` listing unknown connection ids; 422 `validation_failed` for a signing scheme without a secret
   */
  async create(input: NewIntegration): Promise<{ integration: Integration; deliverySecret?: string }> {
    const { repo, connections, encryptor, clock } = this.d;
    const ids = [...new Set(input.connectionIds)];
    const missing: string[] = [];
    for (const id of ids) if (!(await connections.getSummary(id))) missing.push(id);
    if (missing.length) throw new GrantkeeperError(ErrorCode.connectionNotFound, `unknown connectionIds: ${missing.join(", ")}`, { kind: "invalid_input", details: { missing } });
    checkWebhookSettings(input.webhook);
    const signing = input.webhook?.signing ?? WEBHOOK_NOT_CONFIGURED;
    const id = newUserIntegrationId();
    const generated = input.delivery && !input.delivery.secret ? `whsec_${randomBytes(24).toString("base64url")}` : undefined;
    const deliverySecret = input.delivery ? (input.delivery.secret ?? generated) : undefined;
    const now = clock.now();
    await repo.transaction(async (trx) => {
      const dead = await firstDead(trx, ids);
      await repo.insert(
        {
          id,
          name: input.name,
          entity_id: input.entityId,
          status: dead ? "ERROR" : "ENABLED",
          status_reason: dead ? "credential_invalidated" : null,
          status_cause_connection_id: dead ?? null,
          status_cause_target: null,
          delivery: input.delivery ? JSON.stringify({ url: input.delivery.url, timeoutMs: input.delivery.timeoutMs ?? 10_000 }) : null,
          delivery_secret_ct: deliverySecret ? encryptor.encrypt(deliverySecret, `integration:${id}:delivery_secret`) : null,
          webhook_signing: signing,
          delivery_target: input.delivery ? input.delivery.url : `handler:${input.name}`,
          webhook_secret_ct: input.webhook?.secret ? encryptor.encrypt(input.webhook.secret, `integration:${id}:webhook_secret`) : null,
          created_at: now,
          updated_at: now,
        },
        ids,
        dead ? `created; connection ${dead} is already dead` : "created",
        trx,
      );
    });
    return { integration: await this.get(id), ...(generated ? { deliverySecret: generated } : {}) };
  }

  /** One integration. @throws {@link GrantkeeperError} 404 `integration_not_found` */
  async get(id: string): Promise<Integration> {
    const row = await this.d.repo.get(id);
    if (!row) throw notFound(id);
    return toIntegration(row, (await this.d.repo.connectionIdsOf([id])).get(id) ?? [], (await this.d.jobs.parkedCounts([id])).get(id) ?? 0);
  }

  /** A page of integrations. `limit` 1..500 (default 100). */
  async list(filter: { entityId?: string; status?: IntegrationStatus; connectionId?: string } = {}, page: { cursor?: string; limit?: number } = {}): Promise<{ items: Integration[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 500);
    const rows = await this.d.repo.list(filter, page.cursor, limit + 1);
    const shown = rows.slice(0, limit);
    const deps = await this.d.repo.connectionIdsOf(shown.map((r) => r.id));
    const parked = await this.d.jobs.parkedCounts(shown.map((r) => r.id));
    const items = shown.map((r) => toIntegration(r, deps.get(r.id) ?? [], parked.get(r.id) ?? 0));
    return rows.length > limit ? { items, nextCursor: items[items.length - 1]!.id } : { items };
  }

  /** User intent: off, keep settings. Never set by the system. @throws {@link GrantkeeperError} 404 */
  async disable(id: string): Promise<Integration> {
    const { repo, clock } = this.d;
    await repo.transaction(async (trx) => {
      const row = await repo.get(id, trx);
      if (!row) throw notFound(id);
      if (row.status === "DISABLED") return;
      await repo.setStatus(id, row.status, { actor: "user", to: "DISABLED", reason: null, causeConnectionId: null, message: "disabled by the user", nowMs: clock.now() }, trx);
      await this.d.jobs.syncWithIntegrations(trx, clock.now(), this.d.policy.parkWhenDisabled);
    });
    return this.get(id);
  }

  /**
   * User intent: on. Refused while a dependency is dead (the user must
   * reconnect it first).
   * @throws {@link GrantkeeperError} 404; 409 `connection_error` naming the dead connection
   */
  async enable(id: string): Promise<Integration> {
    const { repo, clock } = this.d;
    await repo.transaction(async (trx) => {
      const row = await repo.get(id, trx);
      if (!row) throw notFound(id);
      if (row.status === "ENABLED") return;
      const dead = await repo.deadDependency(id, trx);
      if (dead) {
        throw new GrantkeeperError(ErrorCode.connectionError, `connection ${dead} is dead; reconnect it and the integration is enabled again`, { details: { connectionId: dead } });
      }
      await repo.setStatus(id, row.status, { actor: "user", to: "ENABLED", reason: null, causeConnectionId: null, message: `enabled by the user (was ${row.status}${row.status_reason ? ` ${row.status_reason}` : ""})`, nowMs: clock.now() }, trx);
      await this.d.jobs.syncWithIntegrations(trx, clock.now(), this.d.policy.parkWhenDisabled);
    });
    return this.get(id);
  }

  /**
   * Set (or, with `undefined`, remove) an integration's inbound webhook
   * settings — e.g. for one created before webhook signing was required,
   * which accepts no inbound webhook until it has them (migration
   * `0008_webhook_signing_required`), or to rotate its secret.
   * @throws {@link GrantkeeperError} 404 `integration_not_found`; 422 `validation_failed` for a scheme without a secret;
   *   409 `integration_outbound_only` for grantkeeper's own integrations (alert sinks)
   */
  async setWebhook(id: string, webhook: WebhookSettings | undefined): Promise<Integration> {
    const { repo, encryptor, clock } = this.d;
    if (isInternalIntegrationId(id)) throw new GrantkeeperError(ErrorCode.integrationOutboundOnly, `integration ${id} is grantkeeper's own (an alert sink's queue) and takes no inbound webhooks`);
    checkWebhookSettings(webhook);
    const context = `integration:${id}:webhook_secret`;
    const secretCt = webhook?.secret ? encryptor.encrypt(webhook.secret, context) : null;
    const now = clock.now();
    const found = await repo.transaction(async (trx) => {
      const row = await repo.getForUpdate(id, trx);
      if (!row) return false;
      // Rotation (Stripe's practice): a new secret replacing another keeps the old one, accepted beside it for
      // webhook.secretOverlapSeconds. The same secret again is no rotation; no secret (or no webhook) keeps none.
      let previous = { ct: null as string | null, rotatedAt: null as number | null };
      if (webhook?.secret && row.webhook_secret_ct) {
        const old = encryptor.decrypt(row.webhook_secret_ct, context);
        previous = sameSecret(old, webhook.secret) ? { ct: row.webhook_previous_secret_ct, rotatedAt: row.webhook_secret_rotated_at === null ? null : Number(row.webhook_secret_rotated_at) } : { ct: row.webhook_secret_ct, rotatedAt: now };
      }
      await repo.setWebhook(id, webhook?.signing ?? WEBHOOK_NOT_CONFIGURED, secretCt, now, trx, previous);
      return true;
    });
    if (!found) throw notFound(id);
    this.d.signingCache?.invalidate(id);
    return this.get(id);
  }

  /** An integration's status history, newest first. @throws {@link GrantkeeperError} 404 */
  async events(id: string, page: { cursor?: string; limit?: number } = {}): Promise<{ items: IntegrationEvent[]; nextCursor?: string }> {
    if (!(await this.d.repo.get(id))) throw notFound(id);
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 500);
    const before = seqCursor(page.cursor);
    const rows = await this.d.repo.listEvents(id, before, limit + 1);
    const items = rows.slice(0, limit).map(toIntegrationEvent);
    return rows.length > limit ? { items, nextCursor: String(items[items.length - 1]!.id) } : { items };
  }
}

async function firstDead(trx: Transaction<Database>, ids: string[]): Promise<string | undefined> {
  if (ids.length === 0) return undefined;
  const r = await trx.selectFrom("connections").select("id").where("id", "in", ids).where("state", "=", "error").orderBy("id").limit(1).executeTakeFirst();
  return r?.id;
}
