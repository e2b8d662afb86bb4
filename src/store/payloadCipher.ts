/**
 * Job payloads at rest (issue 10 item 7): a webhook's headers and body are
 * sealed together in ONE AES-256-GCM ciphertext (src/store/encryption.ts, the
 * same keys and key ids as tokens) bound to the job id, so ingress pays one
 * encryption per payload and no extra query.
 *
 * Stored form in `job_payloads`: `headers = ""`, `body = v1.<keyId>.…` over
 * the plaintext `<headers JSON>\n<body base64>`. A row written before this
 * (headers a JSON object, body plain base64) is a *legacy* row: base64 has no
 * `.`, so a body starting with `v1.` is always a ciphertext. Legacy rows are
 * still read as they are, and `grantkeeper keys rotate` seals them
 * (src/store/keyRotation.ts).
 */
import type { Encryptor } from "./encryption.js";
import type { JobPayload } from "./jobRows.js";

/** Associated data of a job's payload ciphertext: a payload copied to another job does not decrypt. */
export function payloadContext(jobId: string): string {
  return `job:${jobId}:payload`;
}

/** True when a stored payload is sealed (its body a `v1.` ciphertext), false for a legacy plaintext row. */
export function isSealedPayload(stored: JobPayload): boolean {
  return stored.body.startsWith("v1.");
}

/**
 * Seal a payload for storage: one encryption with the current key.
 * @param payload headers (JSON object text) and body (base64), as ingress builds them
 * @returns the row values to store (`headers` empty, `body` the ciphertext)
 */
export function sealPayload(encryptor: Encryptor, jobId: string, payload: JobPayload): JobPayload {
  return { headers: "", body: encryptor.encrypt(`${payload.headers}\n${payload.body}`, payloadContext(jobId)) };
}

/**
 * The original payload of a stored row: a sealed one decrypted (current or
 * retired key), a legacy plaintext row as it is.
 * @throws {@link DecryptionError} when no configured key opens it, or it was tampered with or copied from another job
 */
export function openPayload(encryptor: Encryptor, jobId: string, stored: JobPayload): JobPayload {
  if (!isSealedPayload(stored)) return stored;
  const plain = encryptor.decrypt(stored.body, payloadContext(jobId));
  // Headers are JSON text: JSON.stringify escapes every newline, so the first one is the separator.
  const cut = plain.indexOf("\n");
  return { headers: plain.slice(0, cut), body: plain.slice(cut + 1) };
}
