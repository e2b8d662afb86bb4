/**
 * Random bytes for the store's hot paths — a nonce per ciphertext (AES-GCM
 * IV, 12 bytes) and the random half of each job id (6 bytes) — drawn from
 * the operating system's CSPRNG (`crypto.randomFillSync`) 4 KiB at a time
 * instead of one system call per value: at thousands of accepted webhooks
 * per second, per-call `randomBytes` was 5 % of the process's CPU
 * (docs/benchmarks.md, issue 16). Node's own `crypto.randomUUID` caches
 * entropy the same way. Every byte is handed out once; nothing is reused.
 */
import { randomFillSync } from "node:crypto";

const POOL_BYTES = 4096;
let pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * `n` fresh random bytes (a copy, safe to keep).
 * @param n bytes wanted, 1 to 4,096 (larger requests get their own fill)
 * @throws RangeError for n < 1 or not an integer
 */
export function randomBytesPooled(n: number): Buffer {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`random byte count must be an integer >= 1, got ${n}`);
  if (n > POOL_BYTES) return randomFillSync(Buffer.allocUnsafe(n));
  if (offset + n > POOL_BYTES) {
    pool = randomFillSync(Buffer.allocUnsafeSlow(POOL_BYTES));
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + n));
  // Zero what was handed out: a later heap dump cannot tell which bytes became which nonce.
  pool.fill(0, offset, offset + n);
  offset += n;
  return out;
}
