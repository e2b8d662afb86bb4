/**
 * Signed, expiring connect links for end users who hold no API key
 * (api-contract.md: `GET /v1/connect/{providerId}` with a `connectToken`).
 * HMAC-SHA256 over the claims, checked in constant time.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { ErrorCode, GrantkeeperError } from "../domain/errors.js";

/** What a connect token authorizes: one provider, one entity, until `exp` (seconds since the epoch). */
export interface ConnectClaims {
  providerId: string;
  entityId: string;
  returnTo?: string;
  /** Expiry, seconds since the Unix epoch. */
  exp: number;
}

/** Derive the signing key from the encryption key (HKDF-SHA256, purpose-bound). */
export function deriveConnectKey(encryptionKey: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", encryptionKey, Buffer.alloc(0), "grantkeeper connect-token v1", 32));
}

/** Make a token: `base64url(JSON claims).base64url(HMAC)`. */
export function signConnectToken(key: Buffer, claims: ConnectClaims): string {
  const body = Buffer.from(JSON.stringify(claims)).toString("base64url");
  return `${body}.${createHmac("sha256", key).update(body).digest("base64url")}`;
}

/**
 * Verify a token for a provider.
 * @param nowMs current time, milliseconds since the epoch
 * @throws {@link GrantkeeperError} 401 `invalid_connect_token` (bad signature, wrong provider, expired)
 */
export function verifyConnectToken(key: Buffer, token: string, providerId: string, nowMs: number): ConnectClaims {
  const fail = (why: string) => new GrantkeeperError(ErrorCode.invalidConnectToken, why);
  const [body, sig] = token.split(".");
  if (!body || !sig) throw fail("malformed connect token");
  const expected = createHmac("sha256", key).update(body).digest();
  const given = Buffer.from(sig, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw fail("connect token signature does not match");
  let claims: ConnectClaims;
  try {
    claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as ConnectClaims;
  } catch {
    throw fail("malformed connect token");
  }
  if (claims.providerId !== providerId) throw fail("connect token is for another provider");
  if (typeof claims.exp !== "number" || claims.exp * 1000 <= nowMs) throw fail("connect link has expired; ask for a new one");
  return claims;
}
