/**
 * Webhook ingress: size limit, signature per integration (constant time),
 * idempotency, disposition by integration status, and a durable write before
 * the 202 — grouped with other concurrent deliveries into one transaction.
 */
import DataLoader from "dataloader";
import type { Clock } from "../domain/clock.js";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";
import { serializeJobLastError } from "../domain/jobLastError.js";
import { acceptJob, type Disposition } from "../domain/jobLifecycle.js";
import type { Encryptor } from "../store/encryption.js";
import { isInternalIntegrationId } from "../integrations/internal.js";
import { WEBHOOK_NOT_CONFIGURED } from "../integrations/view.js";
import type { IntegrationRepository, IntegrationRow } from "../store/integrations.js";
import { newJobId, type InsertResult, type JobRepository, type NewJob } from "../store/jobs.js";
import { sealPayload } from "../store/payloadCipher.js";
import type { Logger } from "../telemetry/logger.js";
import { GroupCommit } from "./groupCommit.js";
import { idempotencyKeyOf, signedBodyReplayWindowMs, verifyWebhookSignature, type SigningScheme } from "./signatures.js";

/** What `POST /v1/webhooks/{integrationId}` answers with its 202. */
export interface Accepted {
  jobId: string;
  /** `queued` (will run), `parked` (kept until the integration is ENABLED), `discarded` (DISABLED and parkWhenDisabled is false; recorded), `duplicate` (already stored). */
  disposition: Disposition;
}

/** Headers never stored with a job (credentials and hop-by-hop headers). */
const DROPPED_HEADERS = new Set(["authorization", "proxy-authorization", "cookie", "host", "connection", "content-length", "transfer-encoding", "keep-alive", "upgrade"]);

/** Dependencies of {@link IngressService}. */
export interface IngressDeps {
  integrations: IntegrationRepository;
  jobs: JobRepository;
  encryptor: Encryptor;
  clock: Clock;
  logger: Logger;
  /** Jobs of a DISABLED integration: park (true) or discard with a record (false). */
  parkWhenDisabled: boolean;
  /** Largest accepted body, bytes. @defaultValue 1 048 576 */
  maxBodyBytes: number;
  /**
   * Called after a new queued job committed (wakes the worker), with the
   * number of groups committed so far — this job's group included — so a
   * worker whose claim already began after that commit can ignore the call
   * (see {@link IngressService.committedGroups}).
   */
  onQueued: (committedGroups: number) => void;
}

/** Accepts webhook deliveries for integrations. */
export class IngressService {
  private readonly group: GroupCommit<NewJob, InsertResult>;
  /** Integration reads of deliveries arriving together, batched into one query (never cached: status is read fresh). */
  private readonly integrationLoader: DataLoader<string, IntegrationRow | undefined>;

  constructor(private readonly d: IngressDeps) {
    this.group = new GroupCommit((rows) => d.jobs.insertGroup(rows));
    this.integrationLoader = new DataLoader(
      async (ids) => {
        const rows = await d.integrations.getMany([...new Set(ids)]);
        return ids.map((id) => rows.get(id));
      },
      { cache: false, maxBatchSize: 256 },
    );
  }

  /** Group commit statistics (groups written, items in them). */
  get stats(): { groups: number; items: number } {
    return this.group.stats;
  }

  /**
   * Groups committed so far by this instance; it grows by one as each group's
   * transaction commits, before any of that group's callers resume. A claim
   * that starts after reading N sees every job of the first N groups.
   */
  committedGroups(): number {
    return this.group.stats.groups;
  }

  /**
   * Accept one delivery. Resolves only after the job is committed.
   *
   * Deny by default: an integration created without a `webhook` block, and
   * grantkeeper's own outbound-only integrations (the alert sinks' carriers,
   * whatever their stored scheme), take no inbound webhook. A repeat of a
   * signed body whose scheme signs no timestamp is a `duplicate` for
   * {@link signedBodyReplayWindowMs} (see `idempotencyKeyOf`).
   * @throws {@link GrantkeeperError} 404 `integration_not_found`, 413 `payload_too_large`,
   *   401 `webhook_signing_not_configured`, 401 `invalid_signature`, 400 `invalid_idempotency_key`
   */
  async accept(integrationId: string, rawBody: Uint8Array, headers: Headers): Promise<Accepted> {
    const { clock } = this.d;
    if (rawBody.byteLength > this.d.maxBodyBytes) throw new GrantkeeperError(ErrorCode.payloadTooLarge, `webhook bodies are limited to ${this.d.maxBodyBytes} bytes`);
    if (isInternalIntegrationId(integrationId)) {
      throw new GrantkeeperError(ErrorCode.webhookSigningNotConfigured, "this integration is grantkeeper's own and outbound only: it accepts no inbound webhooks");
    }
    const integration = /^int_[a-zA-Z0-9]{1,64}$/.test(integrationId) ? await this.integrationLoader.load(integrationId) : undefined;
    if (!integration) throw new GrantkeeperError(ErrorCode.integrationNotFound, `no integration ${JSON.stringify(integrationId)}`);
    if (integration.webhook_signing === WEBHOOK_NOT_CONFIGURED) {
      throw new GrantkeeperError(ErrorCode.webhookSigningNotConfigured, 'this integration accepts no inbound webhooks: give it a webhook block (PUT /v1/integrations/{id}/webhook) with a signing scheme, or signing "none" by name');
    }
    const scheme = integration.webhook_signing as SigningScheme;
    const secret = integration.webhook_secret_ct ? this.d.encryptor.decrypt(integration.webhook_secret_ct, `integration:${integration.id}:webhook_secret`) : undefined;
    const now = clock.now();
    verifyWebhookSignature({ scheme, secret, rawBody, headers, nowMs: now });
    const key = idempotencyKeyOf(scheme, headers, rawBody);
    const { record, disposition } = acceptJob(integration.status, now, this.d);
    const kept: Record<string, string> = {};
    headers.forEach((v, k) => {
      if (!DROPPED_HEADERS.has(k.toLowerCase())) kept[k.toLowerCase()] = v;
    });
    // Headers and body sealed together, under the job id (one encryption; src/store/payloadCipher.ts).
    const plain = { headers: JSON.stringify(kept), body: Buffer.from(rawBody).toString("base64") };
    const withId = (id: string): NewJob => ({ ...job, id, ...sealPayload(this.d.encryptor, id, plain) });
    const job: NewJob = {
      id: "",
      integration_id: integration.id,
      state: record.state,
      attempts: record.attempts,
      idempotency_key: key?.value ?? null,
      headers: "",
      body: "",
      run_at: record.runAtMs,
      lease_owner: null,
      lease_until: null,
      last_error: serializeJobLastError(record.lastError),
      probe: 0,
      received_at: now,
      created_at: now,
      updated_at: now,
      finished_at: record.finishedAtMs,
    };
    let result = await this.group.submit(withId(newJobId(now)));
    const windowStart = now - signedBodyReplayWindowMs;
    if (result.duplicate && key?.source === "signed_body" && result.receivedAt < windowStart) {
      // The same signed body was last accepted more than the replay window ago: this is a new delivery.
      await this.d.jobs.retireIdempotencyKey(integration.id, key.value, windowStart);
      result = await this.group.submit(withId(newJobId(now)));
    }
    if (result.duplicate) return { jobId: result.id, disposition: "duplicate" };
    if (disposition === "queued") this.d.onQueued(this.group.stats.groups);
    return { jobId: result.id, disposition };
  }
}
