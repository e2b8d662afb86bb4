/**
 * Webhook ingress: size limit, signature per integration (constant time;
 * signing settings cached per instance for ≤ 5 s, a rotated secret accepted
 * beside the new one for the overlap), idempotency, disposition by the
 * integration's status as the INSERT reads it, and a durable write before
 * the 202 — grouped with other concurrent deliveries into one transaction.
 */
import DataLoader from "dataloader";
import type { Clock } from "../domain/clock.js";
import { ErrorCode, GrantkeeperError, isGrantkeeperError } from "../domain/errors.js";
import { serializeJobLastError } from "../domain/jobLastError.js";
import { setOwnField } from "../domain/records.js";
import { acceptJob, type Disposition } from "../domain/jobLifecycle.js";
import { INTEGRATION_STATUSES, type IntegrationStatus } from "../domain/states.js";
import type { Encryptor } from "../store/encryption.js";
import { isInternalIntegrationId } from "../integrations/internal.js";
import type { WebhookSigning, WebhookSigningCache } from "../integrations/signingCache.js";
import { WEBHOOK_NOT_CONFIGURED } from "../integrations/view.js";
import type { IntegrationRepository, IntegrationRow } from "../store/integrations.js";
import type { JobRepository } from "../store/jobs.js";
import { newJobId, type AcceptClaim, type AcceptedDelivery, type AcceptResult, type ClaimedJob, type JobPayload } from "../store/jobRows.js";
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

/**
 * What a job stores of a delivery (`job_payloads`): the kept headers as a JSON
 * object (lower-case names, credentials and hop-by-hop headers dropped) and
 * the raw body bytes exactly as received, in base64 — in plaintext: ingress
 * seals it under the job id (`sealPayload`, src/store/payloadCipher.ts)
 * before the store sees it, and hands the plaintext to a worker that claims
 * the job at accept.
 */
export function payloadOf(headers: Headers, rawBody: Uint8Array): JobPayload {
  const kept: Record<string, string> = {};
  headers.forEach((v, k) => {
    const name = k.toLowerCase();
    // Keyed by the sender's names: a header named `__proto__` is kept like any other.
    if (!DROPPED_HEADERS.has(name)) setOwnField(kept, name, v);
  });
  return { headers: JSON.stringify(kept), body: Buffer.from(rawBody).toString("base64") };
}

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
  /** Signing settings by integration, shared with `IntegrationService` (which drops an entry when it changes them). */
  signingCache: WebhookSigningCache;
  /**
   * How long a rotated-out webhook secret is still accepted beside the new one,
   * ms (config `webhook.secretOverlapSeconds`; Stripe's practice). @defaultValue 86 400 000
   */
  secretOverlapMs: number;
  /**
   * Called after a new queued job committed (wakes the worker), with the
   * number of groups committed so far — this job's group included — so a
   * worker whose claim already began after that commit can ignore the call
   * (see {@link IngressService.committedGroups}).
   */
  onQueued: (committedGroups: number) => void;
  /**
   * Claim at accept: the local worker, which may take a group's jobs straight
   * from the INSERT (`JobWorker.offerHandoff` / `takeHandoff`). Without it
   * every accepted job is written queued for a claim to find.
   */
  handoff?: {
    offerHandoff(n: number, nowMs: number): AcceptClaim | undefined;
    releaseHandoff(n: number): void;
    takeHandoff(jobs: ClaimedJob[], offered: number): void;
  };
  /**
   * The local worker, which keeps the plaintext payload of each job written
   * queued for its own claim of it (`JobWorker.keepPayload`,
   * src/jobs/recentPayloads.ts): no payload read or decryption then.
   */
  localWorker?: { keepPayload(jobId: string, payload: JobPayload): void };
}

/** A delivery on its way to the store: the row (payload sealed) and its plaintext payload, for a hand-over at accept. */
type IngressDelivery = AcceptedDelivery & { plain: JobPayload };

/** Accepts webhook deliveries for integrations. */
export class IngressService {
  private readonly group: GroupCommit<IngressDelivery, AcceptResult>;
  /** Integration reads of deliveries arriving together (signing-cache misses), batched into one query. */
  private readonly integrationLoader: DataLoader<string, IntegrationRow | undefined>;

  constructor(private readonly d: IngressDeps) {
    this.group = new GroupCommit((rows) => this.write(rows));
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
   *
   * The signature is checked against signing settings cached for ≤ 5 s; a
   * webhook they reject is checked again against the store before it is
   * refused. Within `secretOverlapMs` of a rotation the previous secret is
   * accepted too. The disposition (queued, parked, discarded) is decided by
   * the INSERT from the integration's status at commit.
   * @throws {@link GrantkeeperError} 404 `integration_not_found`, 413 `payload_too_large`,
   *   401 `webhook_signing_not_configured`, 401 `invalid_signature`, 400 `invalid_idempotency_key`
   */
  async accept(integrationId: string, rawBody: Uint8Array, headers: Headers): Promise<Accepted> {
    const { clock } = this.d;
    if (rawBody.byteLength > this.d.maxBodyBytes) throw new GrantkeeperError(ErrorCode.payloadTooLarge, `webhook bodies are limited to ${this.d.maxBodyBytes} bytes`);
    if (isInternalIntegrationId(integrationId)) {
      throw new GrantkeeperError(ErrorCode.webhookSigningNotConfigured, "this integration is grantkeeper's own and outbound only: it accepts no inbound webhooks");
    }
    if (!/^int_[a-zA-Z0-9]{1,64}$/.test(integrationId)) throw notFound(integrationId);
    const now = clock.now();
    const cached = this.d.signingCache.get(integrationId);
    let signing = cached ?? (await this.readSigning(integrationId));
    try {
      this.verify(integrationId, signing, rawBody, headers, now);
    } catch (e) {
      if (!cached) throw e;
      // The cache only ever accepts: settings changed on another instance within its lifetime are read before refusing.
      signing = await this.readSigning(integrationId);
      this.verify(integrationId, signing, rawBody, headers, now);
    }
    const scheme = signing!.signing as SigningScheme;
    const key = idempotencyKeyOf(scheme, headers, rawBody);
    const recordFor = {} as AcceptedDelivery["recordFor"];
    for (const status of INTEGRATION_STATUSES) {
      const { record } = acceptJob(status as IntegrationStatus, now, this.d);
      recordFor[status] = { state: record.state, finishedAtMs: record.finishedAtMs, lastError: serializeJobLastError(record.lastError) };
    }
    // The row as an ENABLED integration's job; the INSERT swaps in the record of the status it reads.
    const first = acceptJob("ENABLED", now, this.d).record;
    // Headers and body sealed together, under the job id (one encryption; src/store/payloadCipher.ts).
    const plain = payloadOf(headers, rawBody);
    const withId = (id: string): IngressDelivery => ({ ...delivery, job: { ...delivery.job, id, ...sealPayload(this.d.encryptor, id, plain) } });
    const delivery: IngressDelivery = {
      plain,
      job: {
        // Each submit writes the job under an id of its own (withId).
        id: "",
        integration_id: integrationId,
        state: first.state,
        attempts: first.attempts,
        idempotency_key: key?.value ?? null,
        headers: "",
        body: "",
        run_at: first.runAtMs,
        lease_owner: null,
        lease_until: null,
        last_error: null,
        probe: first.probe ? 1 : 0,
        received_at: now,
        created_at: now,
        updated_at: now,
        finished_at: first.finishedAtMs,
      },
      recordFor,
    };
    let result = await this.group.submit(withId(newJobId(now)));
    const windowStart = now - signedBodyReplayWindowMs;
    if ("duplicate" in result && result.duplicate && key?.source === "signed_body" && result.receivedAt < windowStart) {
      // The same signed body was last accepted more than the replay window ago: this is a new delivery.
      await this.d.jobs.retireIdempotencyKey(integrationId, key.value, windowStart);
      result = await this.group.submit(withId(newJobId(now)));
    }
    if ("integrationMissing" in result) {
      this.d.signingCache.invalidate(integrationId);
      throw notFound(integrationId);
    }
    if (result.duplicate) return { jobId: result.id, disposition: "duplicate" };
    // `running`: claimed at accept by this instance's worker — queued, and already taken.
    const disposition: Disposition = result.state === "queued" || result.state === "running" ? "queued" : result.state === "parked" ? "parked" : "discarded";
    if (result.state === "running") return { jobId: result.id, disposition };
    if (disposition === "queued") this.d.onQueued(this.group.stats.groups);
    return { jobId: result.id, disposition };
  }

  /**
   * Write one group. When the local worker has room, the INSERT may write jobs
   * as claimed by it; those are handed over (with their payloads, from
   * memory) once the group committed and before the next group is written,
   * so they join their integrations' lanes in arrival order. The payloads of
   * the jobs written queued are kept for the local worker's claim.
   */
  private async write(rows: IngressDelivery[]): Promise<AcceptResult[]> {
    const { handoff, localWorker } = this.d;
    const claim = handoff?.offerHandoff(rows.length, this.d.clock.now());
    let results: AcceptResult[];
    try {
      results = await this.d.jobs.acceptGroup(rows, claim);
    } catch (e) {
      if (claim) handoff!.releaseHandoff(rows.length);
      throw e;
    }
    const handed: ClaimedJob[] = [];
    if (claim || localWorker) {
      results.forEach((r, i) => {
        if ("integrationMissing" in r || r.duplicate) return;
        const row = rows[i]!;
        if (claim && r.state === "running") {
          handed.push({ ...row.job, ...row.plain, seq: r.seq!, state: "running", attempts: row.job.attempts + 1, lease_owner: claim.owner, lease_until: claim.leaseUntilMs, last_error: null, finished_at: null, probe: 0 });
        } else if (r.state === "queued") localWorker?.keepPayload(r.id, row.plain);
      });
    }
    if (claim) handoff!.takeHandoff(handed, rows.length);
    return results;
  }

  /** The integration's signing settings read from the store now (and cached), or undefined when it does not exist. */
  private async readSigning(integrationId: string): Promise<WebhookSigning | undefined> {
    const row = await this.integrationLoader.load(integrationId);
    if (!row) return undefined;
    const signing = signingOf(row, this.d.encryptor, this.d.secretOverlapMs);
    this.d.signingCache.set(integrationId, signing);
    return signing;
  }

  /**
   * Check a delivery's signature against `signing`: the current secret, then,
   * within the rotation overlap, the previous one.
   * @throws {@link GrantkeeperError} 404 `integration_not_found` when `signing` is undefined, 401 `webhook_signing_not_configured`, 401 `invalid_signature`
   */
  private verify(integrationId: string, signing: WebhookSigning | undefined, rawBody: Uint8Array, headers: Headers, nowMs: number): void {
    if (!signing) throw notFound(integrationId);
    if (signing.signing === WEBHOOK_NOT_CONFIGURED) {
      throw new GrantkeeperError(ErrorCode.webhookSigningNotConfigured, 'this integration accepts no inbound webhooks: give it a webhook block (PUT /v1/integrations/{id}/webhook) with a signing scheme, or signing "none" by name');
    }
    const scheme = signing.signing as SigningScheme;
    try {
      verifyWebhookSignature({ scheme, secret: signing.secret, rawBody, headers, nowMs });
    } catch (e) {
      if (signing.previousSecret === undefined || nowMs >= signing.previousUntilMs || !isGrantkeeperError(e, ErrorCode.invalidSignature)) throw e;
      try {
        verifyWebhookSignature({ scheme, secret: signing.previousSecret, rawBody, headers, nowMs });
      } catch {
        throw e;
      }
    }
  }
}

function notFound(integrationId: string): GrantkeeperError {
  return new GrantkeeperError(ErrorCode.integrationNotFound, `no integration ${JSON.stringify(integrationId)}`);
}

/**
 * An integration row's signing settings, secrets decrypted. The previous
 * secret's ciphertext was moved from the current-secret column at rotation,
 * so it decrypts under the same context.
 * @param overlapMs how long after a rotation the previous secret is accepted, ms
 */
export function signingOf(row: IntegrationRow, encryptor: Encryptor, overlapMs: number): WebhookSigning {
  const context = `integration:${row.id}:webhook_secret`;
  const previous = row.webhook_previous_secret_ct && row.webhook_secret_rotated_at !== null ? { ct: row.webhook_previous_secret_ct, until: Number(row.webhook_secret_rotated_at) + overlapMs } : undefined;
  return {
    signing: row.webhook_signing,
    secret: row.webhook_secret_ct ? encryptor.decrypt(row.webhook_secret_ct, context) : undefined,
    previousSecret: previous ? encryptor.decrypt(previous.ct, context) : undefined,
    previousUntilMs: previous?.until ?? 0,
  };
}
