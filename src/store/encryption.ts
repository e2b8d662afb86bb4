/**
 * Encryption at rest for tokens, client secrets and PKCE verifiers:
 * AES-256-GCM with a random 96-bit IV, the row and field as associated data
 * (a ciphertext copied to another row or column does not decrypt), and a key
 * id stored with each ciphertext so keys can rotate.
 *
 * Format: `v1.<keyId>.<iv>.<tag>.<ciphertext>` (base64url parts).
 */
import { createCipheriv, createDecipheriv, createHash } from "node:crypto";
import { randomBytesPooled } from "./randomPool.js";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";

/**
 * A ciphertext cannot be decrypted (unknown key id, tampered data): a
 * {@link GrantkeeperError} with code `decryption_failed`, kind `misconfigured`
 * (the keyring is missing a key, or the row was altered). The message never
 * contains key material or plaintext.
 */
export class DecryptionError extends GrantkeeperError {
  /** @param message what failed (never key material) */
  constructor(message: string) {
    super(ErrorCode.decryptionFailed, message);
    this.name = "DecryptionError";
  }
}

/**
 * An encryption key that is not 32 bytes of base64: a {@link GrantkeeperError}
 * with code `invalid_encryption_key`, kind `misconfigured`. The message never
 * contains the key.
 */
export class EncryptionKeyError extends GrantkeeperError {
  /** @param message what is wrong with the key (its length, never its bytes) */
  constructor(message: string) {
    super(ErrorCode.invalidEncryptionKey, message);
    this.name = "EncryptionKeyError";
  }
}

/**
 * Key id: first 8 base64url characters of SHA-256(key). Not secret; lets a
 * reader pick the right key among current and retired ones.
 */
export function keyIdOf(key: Buffer): string {
  return createHash("sha256").update(key).digest("base64url").slice(0, 8);
}

/**
 * Parse a base64 (or base64url) key of exactly 32 bytes.
 * @throws {@link EncryptionKeyError} otherwise (the message never contains the key)
 */
export function parseEncryptionKey(base64: string): Buffer {
  const key = Buffer.from(base64.trim(), "base64");
  if (key.length !== 32) throw new EncryptionKeyError(`encryption key must be 32 bytes of base64, got ${key.length} bytes`);
  return key;
}

/** Encrypts with the current key; decrypts with any key of the keyring. */
export class Encryptor {
  private readonly current: { id: string; key: Buffer };
  private readonly byId = new Map<string, Buffer>();

  /**
   * @param currentKey 32-byte key used for new ciphertexts
   * @param retiredKeys older keys, still accepted for decryption (rotation)
   */
  constructor(currentKey: Buffer, retiredKeys: Buffer[] = []) {
    for (const k of [currentKey, ...retiredKeys]) {
      if (k.length !== 32) throw new EncryptionKeyError(`encryption key must be 32 bytes, got ${k.length}`);
      this.byId.set(keyIdOf(k), k);
    }
    this.current = { id: keyIdOf(currentKey), key: currentKey };
  }

  /** Id of the key new ciphertexts are made with. */
  get keyId(): string {
    return this.current.id;
  }

  /** Ids of every key that decrypts: the current one first, then the retired ones. */
  get keyIds(): string[] {
    return [this.current.id, ...[...this.byId.keys()].filter((id) => id !== this.current.id)];
  }

  /**
   * @param plaintext UTF-8 text
   * @param context associated data binding the ciphertext to its place, e.g. `connection:<id>:access_token`
   */
  encrypt(plaintext: string, context: string): string {
    const iv = randomBytesPooled(12);
    const cipher = createCipheriv("aes-256-gcm", this.current.key, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return ["v1", this.current.id, iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), ct.toString("base64url")].join(".");
  }

  /**
   * @throws {@link DecryptionError} on an unknown key id, a malformed value, or a failed authentication tag
   */
  decrypt(ciphertext: string, context: string): string {
    const parts = ciphertext.split(".");
    if (parts.length !== 5 || parts[0] !== "v1") throw new DecryptionError("malformed ciphertext");
    const [, keyId, iv, tag, ct] = parts as [string, string, string, string, string];
    const key = this.byId.get(keyId);
    if (!key) throw new DecryptionError(`no key with id ${keyId} in the keyring`);
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
      decipher.setAAD(Buffer.from(context, "utf8"));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([decipher.update(Buffer.from(ct, "base64url")), decipher.final()]).toString("utf8");
    } catch {
      throw new DecryptionError("ciphertext failed authentication");
    }
  }

  /** Id of the key a ciphertext was made with (for re-encryption sweeps), or undefined if malformed. */
  static keyIdOfCiphertext(ciphertext: string): string | undefined {
    const parts = ciphertext.split(".");
    return parts.length === 5 ? parts[1] : undefined;
  }
}
