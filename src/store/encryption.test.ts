import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DecryptionError, EncryptionKeyError, Encryptor, keyIdOf, parseEncryptionKey } from "./encryption.js";

const CONTEXT = "connection:c_123:access_token";
const SECRET = "ya29.a0AfH6SMBx-very-secret-access-token-value-0123456789";

/** Replace the character at `index` of a base64url string with a different base64url character. */
function flipChar(s: string, index: number): string {
  const c = s[index]!;
  return s.slice(0, index) + (c === "A" ? "B" : "A") + s.slice(index + 1);
}

/** Replace one dot-separated part of a `v1.<keyId>.<iv>.<tag>.<ct>` value. */
function withPart(ciphertext: string, part: number, f: (p: string) => string): string {
  const parts = ciphertext.split(".");
  parts[part] = f(parts[part]!);
  return parts.join(".");
}

function expectDecryptionFailure(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(DecryptionError);
  expect((caught as DecryptionError).code).toBe("decryption_failed");
}

describe("Encryptor", () => {
  const key = randomBytes(32);
  const enc = new Encryptor(key);

  it("round-trips text (including non-ASCII and empty) in the same context", () => {
    for (const text of [SECRET, "", "clé 🔑 ñ"]) {
      expect(enc.decrypt(enc.encrypt(text, CONTEXT), CONTEXT)).toBe(text);
    }
  });

  it("produces a different ciphertext every time for the same plaintext (random IV)", () => {
    const a = enc.encrypt(SECRET, CONTEXT);
    const b = enc.encrypt(SECRET, CONTEXT);
    expect(a).not.toBe(b);
    expect(a.split(".")[2]).not.toBe(b.split(".")[2]);
    expect(enc.decrypt(a, CONTEXT)).toBe(SECRET);
    expect(enc.decrypt(b, CONTEXT)).toBe(SECRET);
  });

  it("never contains the plaintext, raw or base64-encoded", () => {
    const ct = enc.encrypt(SECRET, CONTEXT);
    expect(ct).not.toContain(SECRET);
    expect(ct).not.toContain(Buffer.from(SECRET).toString("base64url").slice(0, 16));
    expect(ct).not.toContain(Buffer.from(SECRET).toString("base64").slice(0, 16));
    expect(ct.startsWith(`v1.${enc.keyId}.`)).toBe(true);
  });

  it("does not decrypt under another context (a ciphertext copied to another row or column)", () => {
    const ct = enc.encrypt(SECRET, CONTEXT);
    expectDecryptionFailure(() => enc.decrypt(ct, "connection:c_123:refresh_token"));
    expectDecryptionFailure(() => enc.decrypt(ct, "connection:c_999:access_token"));
  });

  it("rejects a tampered ciphertext body, tag or IV", () => {
    const ct = enc.encrypt(SECRET, CONTEXT);
    expectDecryptionFailure(() => enc.decrypt(withPart(ct, 4, (p) => flipChar(p, 0)), CONTEXT));
    expectDecryptionFailure(() => enc.decrypt(withPart(ct, 3, (p) => flipChar(p, 0)), CONTEXT));
    expectDecryptionFailure(() => enc.decrypt(withPart(ct, 2, (p) => flipChar(p, 0)), CONTEXT));
  });

  it("rejects malformed values", () => {
    expectDecryptionFailure(() => enc.decrypt("not a ciphertext", CONTEXT));
    expectDecryptionFailure(() => enc.decrypt(enc.encrypt(SECRET, CONTEXT).replace(/^v1\./, "v2."), CONTEXT));
    expectDecryptionFailure(() => enc.decrypt("", CONTEXT));
  });

  it("does not decrypt with a different key", () => {
    const ct = enc.encrypt(SECRET, CONTEXT);
    expectDecryptionFailure(() => new Encryptor(randomBytes(32)).decrypt(ct, CONTEXT));
  });

  describe("key rotation", () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const fromOld = new Encryptor(oldKey).encrypt(SECRET, CONTEXT);

    it("decrypts a ciphertext made with a retired key when that key is in the keyring", () => {
      expect(new Encryptor(newKey, [oldKey]).decrypt(fromOld, CONTEXT)).toBe(SECRET);
    });

    it("fails once the retired key is dropped from the keyring", () => {
      expectDecryptionFailure(() => new Encryptor(newKey).decrypt(fromOld, CONTEXT));
    });

    it("encrypts new values with the current key", () => {
      const rotated = new Encryptor(newKey, [oldKey]);
      const ct = rotated.encrypt(SECRET, CONTEXT);
      expect(Encryptor.keyIdOfCiphertext(ct)).toBe(keyIdOf(newKey));
      expect(Encryptor.keyIdOfCiphertext(fromOld)).toBe(keyIdOf(oldKey));
      expect(new Encryptor(newKey).decrypt(ct, CONTEXT)).toBe(SECRET);
    });
  });

  it("refuses a key that is not 32 bytes", () => {
    expect(() => new Encryptor(randomBytes(16))).toThrow(EncryptionKeyError);
    expect(() => new Encryptor(randomBytes(32), [randomBytes(31)])).toThrow(EncryptionKeyError);
  });
});

describe("parseEncryptionKey", () => {
  it("accepts 32 bytes of base64 or base64url, with surrounding whitespace", () => {
    const raw = randomBytes(32);
    expect(parseEncryptionKey(raw.toString("base64")).equals(raw)).toBe(true);
    expect(parseEncryptionKey(raw.toString("base64url")).equals(raw)).toBe(true);
    expect(parseEncryptionKey(`  ${raw.toString("base64")}\n`).equals(raw)).toBe(true);
  });

  it.each([31, 33, 0])("rejects %i bytes with EncryptionKeyError whose message never contains the key", (length) => {
    const text = randomBytes(length).toString("base64");
    let caught: unknown;
    try {
      parseEncryptionKey(text);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(EncryptionKeyError);
    expect((caught as EncryptionKeyError).code).toBe("invalid_encryption_key");
    if (text.length > 0) expect((caught as Error).message).not.toContain(text);
    expect((caught as Error).message).toContain(`${length} bytes`);
  });
});
