/**
 * The payloads of jobs this instance just accepted, in memory, for its own
 * worker's claim of them (issue 16). Ingress has a job's headers and body in
 * plaintext when it writes the job; the worker that claims the job a few
 * milliseconds later used to read the sealed payload back from the store and
 * decrypt it — 8–10 µs of node's CPU per job for the decryption alone, and
 * the payload rows' transfer. A job's payload never changes once accepted,
 * so what ingress had is what the store holds.
 *
 * Bounded both ways, so memory stays flat and no plaintext lingers:
 * - at most {@link RecentPayloadsOptions.maxBytes} in all: when full, a new
 *   payload is not kept (the oldest ones are the next to be claimed, in
 *   arrival order; a job without an entry is read from the store as before);
 * - each entry at most {@link RecentPayloadsOptions.maxAgeMs}: a job another
 *   instance claimed, or one the worker reaches late, is forgotten.
 * An entry is handed out once ({@link RecentPayloads.take}): a job that runs
 * again (a retry, an expired lease) reads its payload from the store.
 * Process memory only: the store keeps payloads sealed (src/store/payloadCipher.ts).
 */
import type { Clock } from "../domain/clock.js";
import type { JobPayload } from "../store/jobRows.js";

/** Bounds of {@link RecentPayloads}. */
export interface RecentPayloadsOptions {
  /** Size of all entries together, counted as the characters of their headers and body (1 byte each for the ASCII of JSON headers and a base64 body). @defaultValue 16 MiB */
  maxBytes: number;
  /** Age after which an entry is dropped, milliseconds. @defaultValue 10 000 */
  maxAgeMs: number;
}

/** Defaults of {@link RecentPayloadsOptions}. Frozen. */
export const defaultRecentPayloadsOptions: Readonly<RecentPayloadsOptions> = Object.freeze({ maxBytes: 16 * 2 ** 20, maxAgeMs: 10_000 });

interface Entry {
  payload: JobPayload;
  /** When it was kept, ms since the epoch (the injected clock). */
  at: number;
  size: number;
}

/** Plaintext payloads of jobs accepted here, by job id, until the local worker takes them (see the module comment). */
export class RecentPayloads {
  /** In insertion order, so the oldest entries are first. */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  /** @throws RangeError for a bound that is not a positive number */
  constructor(
    private readonly clock: Pick<Clock, "now">,
    private readonly options: RecentPayloadsOptions = defaultRecentPayloadsOptions,
  ) {
    if (!(options.maxBytes > 0) || !(options.maxAgeMs > 0)) throw new RangeError(`recent payloads bounds must be > 0, got maxBytes ${options.maxBytes}, maxAgeMs ${options.maxAgeMs}`);
  }

  /** Entries held now (for tests and status). */
  get size(): number {
    return this.entries.size;
  }

  /** Keep a just-committed job's payload, unless that would go over {@link RecentPayloadsOptions.maxBytes}. */
  put(jobId: string, payload: JobPayload): void {
    const now = this.clock.now();
    this.dropExpired(now);
    const size = payload.headers.length + payload.body.length;
    if (this.bytes + size > this.options.maxBytes || this.entries.has(jobId)) return;
    this.entries.set(jobId, { payload, at: now, size });
    this.bytes += size;
  }

  /** The payload kept for a job (and forget it), or undefined when none is kept, or it was older than {@link RecentPayloadsOptions.maxAgeMs}. */
  take(jobId: string): JobPayload | undefined {
    const now = this.clock.now();
    this.dropExpired(now);
    const entry = this.entries.get(jobId);
    if (entry === undefined) return undefined;
    this.entries.delete(jobId);
    this.bytes -= entry.size;
    return entry.payload;
  }

  /** Forget every entry (the worker stopped: another instance may run these jobs, and nothing should linger). */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private dropExpired(now: number): void {
    for (const [id, entry] of this.entries) {
      if (now - entry.at <= this.options.maxAgeMs) return;
      this.entries.delete(id);
      this.bytes -= entry.size;
    }
  }
}
