import { randomBytes } from "node:crypto";
import { expect, it } from "vitest";
import { DecryptionError, Encryptor } from "./encryption.js";
import { isSealedPayload, openPayload, sealPayload } from "./payloadCipher.js";

const enc = new Encryptor(randomBytes(32));
const payload = { headers: JSON.stringify({ "x-note": "line\nbreak", "content-type": "application/json" }), body: Buffer.from([0, 255, 10, 46]).toString("base64") };

it("seals headers and body in one ciphertext bound to the job id, and opens them as they were", () => {
  const sealed = sealPayload(enc, "job_1", payload);
  expect(sealed.headers).toBe("");
  expect(sealed.body.startsWith(`v1.${enc.keyId}.`)).toBe(true);
  expect(sealed.body).not.toContain(payload.body);
  expect(isSealedPayload(sealed)).toBe(true);
  expect(openPayload(enc, "job_1", sealed)).toEqual(payload);
  // A payload copied to another job does not open there.
  expect(() => openPayload(enc, "job_2", sealed)).toThrow(DecryptionError);
});

it("passes a legacy plaintext row (body in base64, never a '.') through as it is", () => {
  expect(isSealedPayload(payload)).toBe(false);
  expect(openPayload(enc, "job_1", payload)).toEqual(payload);
  expect(openPayload(enc, "job_1", { headers: "{}", body: "" })).toEqual({ headers: "{}", body: "" });
});
