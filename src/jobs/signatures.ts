/**
 * Webhook ingress authentication (api-contract.md `POST /v1/webhooks/{integrationId}`,
 * "Inbound signing") and outbound delivery signing ("Delivery to a consumer").
 *
 * Every scheme is HMAC-SHA256 over the raw body bytes exactly as received: the
 * body is never decoded before hashing, because a decode/re-encode round trip
 * changes bytes (invalid UTF-8, BOMs) and breaks valid signatures. Signatures
 * are compared as decoded digests with `crypto.timingSafeEqual`, never as strings.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { GrantkeeperError } from "../domain/errors.js";

/** How an integration's inbound webhooks are signed (api-contract.md `webhook.signing`). */
export type SigningScheme = "github" | "slack" | "stripe" | "hmac-sha256" | "none";

/** Stable codes of the errors this module throws. */
export const SignatureErrorCode = {
  invalidSignature: "invalid_signature",
  signingMisconfigured: "signing_misconfigured",
  invalidIdempotencyKey: "invalid_idempotency_key",
} as const;

/**
 * Which check rejected a request; carried as the `reason` member of an
 * `invalid_signature` problem so callers and tests switch on it, not on `detail`.
 */
export type SignatureFailureReason = "missing_header" | "malformed_header" | "stale_timestamp" | "mismatch";

/**
 * Allowed distance between a signed timestamp and now, in milliseconds (Slack and Stripe both use 5 minutes).
 * @defaultValue 300_000
 */
export const defaultSignatureToleranceMs = 300_000;

/** Longest accepted idempotency key, in characters. */
export const maxIdempotencyKeyLength = 200;

/** Input of {@link verifyWebhookSignature}. */
export interface VerifyInput {
  scheme: SigningScheme;
  /** The integration's webhook secret; `undefined` is only valid with scheme `none`. */
  secret: string | undefined;
  /** The request body exactly as received. */
  rawBody: Uint8Array;
  headers: Headers;
  /** Current time, milliseconds since the Unix epoch. */
  nowMs: number;
  /** Allowed |now − signed timestamp| for `slack` and `stripe`, in milliseconds. @defaultValue 300_000 */
  toleranceMs?: number;
}

interface Failure {
  reason: SignatureFailureReason;
  detail: string;
}

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;
const UNIX_SECONDS = /^\d{1,12}$/;

function hmac(secret: string, ...parts: Array<string | Uint8Array>): Buffer {
  const h = createHmac("sha256", secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Constant-time digest comparison; `given` must already be a 32-byte decoded digest. */
function digestsEqual(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Decode `<prefix><64 hex>` into a digest, or `undefined` when malformed. */
function prefixedDigest(value: string, prefix: string): Buffer | undefined {
  if (!value.startsWith(prefix)) return undefined;
  const hex = value.slice(prefix.length);
  return HEX_SHA256.test(hex) ? Buffer.from(hex, "hex") : undefined;
}

function checkTolerance(name: string, tSeconds: number, nowMs: number, toleranceMs: number): Failure | undefined {
  const skewMs = Math.abs(nowMs - tSeconds * 1000);
  if (skewMs <= toleranceMs) return undefined;
  return { reason: "stale_timestamp", detail: `${name} timestamp is ${Math.round(skewMs / 1000)} s from now; the tolerance is ${toleranceMs / 1000} s` };
}

/** `sha256=<hex HMAC(secret, body)>` in one header (GitHub, generic hmac-sha256). */
function checkPrefixedBodyHmac(header: string, value: string | null, secret: string, body: Uint8Array): Failure | undefined {
  if (value === null) return { reason: "missing_header", detail: `${header} header is missing` };
  const given = prefixedDigest(value.trim(), "sha256=");
  if (!given) return { reason: "malformed_header", detail: `${header} must be "sha256=" followed by 64 hex digits` };
  if (!digestsEqual(given, hmac(secret, body))) return { reason: "mismatch", detail: `${header} does not match the body` };
  return undefined;
}

function checkSlack(headers: Headers, secret: string, body: Uint8Array, nowMs: number, toleranceMs: number): Failure | undefined {
  const ts = headers.get("x-slack-request-timestamp");
  const sig = headers.get("x-slack-signature");
  if (ts === null) return { reason: "missing_header", detail: "X-Slack-Request-Timestamp header is missing" };
  if (sig === null) return { reason: "missing_header", detail: "X-Slack-Signature header is missing" };
  const t = ts.trim();
  if (!UNIX_SECONDS.test(t)) return { reason: "malformed_header", detail: "X-Slack-Request-Timestamp must be Unix seconds" };
  const given = prefixedDigest(sig.trim(), "v0=");
  if (!given) return { reason: "malformed_header", detail: 'X-Slack-Signature must be "v0=" followed by 64 hex digits' };
  // Timestamp first, as Slack's reference does: a replayed request is refused before any HMAC work.
  const stale = checkTolerance("X-Slack-Request-Timestamp", Number(t), nowMs, toleranceMs);
  if (stale) return stale;
  if (!digestsEqual(given, hmac(secret, `v0:${t}:`, body))) return { reason: "mismatch", detail: "X-Slack-Signature does not match the body" };
  return undefined;
}

/** The Stripe scheme, shared by inbound `stripe` and outbound `Grantkeeper-Signature`. */
function checkStripeStyle(header: string, value: string | null, secret: string, body: Uint8Array, nowMs: number, toleranceMs: number): Failure | undefined {
  if (value === null) return { reason: "missing_header", detail: `${header} header is missing` };
  const malformed: Failure = { reason: "malformed_header", detail: `${header} must be "t=<unix seconds>,v1=<64 hex digits>[,v1=…]"` };
  let t: string | undefined;
  const v1: Buffer[] = [];
  for (const item of value.split(",")) {
    const eq = item.indexOf("=");
    if (eq < 0) return malformed;
    const key = item.slice(0, eq).trim();
    const val = item.slice(eq + 1).trim();
    if (key === "t") {
      if (t !== undefined || !UNIX_SECONDS.test(val)) return malformed;
      t = val;
    } else if (key === "v1") {
      if (!HEX_SHA256.test(val)) return malformed;
      v1.push(Buffer.from(val, "hex"));
    } // Other schemes (v0 = Stripe test-mode legacy) are ignored, as Stripe's own libraries do.
  }
  if (t === undefined || v1.length === 0) return malformed;
  const expected = hmac(secret, `${t}.`, body);
  // Compare every candidate so the time taken does not reveal which one matched.
  let matched = false;
  for (const given of v1) matched = digestsEqual(given, expected) || matched;
  if (!matched) return { reason: "mismatch", detail: `no v1 signature in ${header} matches the body` };
  return checkTolerance(header, Number(t), nowMs, toleranceMs);
}

function checkTolerancePositive(toleranceMs: number): void {
  if (!Number.isFinite(toleranceMs) || toleranceMs < 0) throw new RangeError(`toleranceMs must be a finite number ≥ 0, got ${toleranceMs}`);
}

/**
 * Check an inbound webhook's signature under its integration's scheme.
 *
 * - `github`: `X-Hub-Signature-256: sha256=<hex HMAC(secret, body)>`.
 * - `slack`: `X-Slack-Signature: v0=<hex HMAC(secret, "v0:" + ts + ":" + body)>` with `X-Slack-Request-Timestamp` (Unix s).
 * - `stripe`: `Stripe-Signature: t=<Unix s>,v1=<hex HMAC(secret, t + "." + body)>[,v1=…]`; any matching v1 is accepted.
 * - `hmac-sha256`: `X-Signature-256: sha256=<hex HMAC(secret, body)>`.
 * - `none`: accepts everything. For development only: anyone who knows the integration id can post.
 *
 * Slack and Stripe requests are refused when |nowMs − timestamp| > `toleranceMs` (exactly at the tolerance is accepted).
 * The problem's `detail` names the failed check; it never contains the expected signature.
 *
 * @see https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
 * @see https://api.slack.com/authentication/verifying-requests-from-slack
 * @see https://docs.stripe.com/webhooks#verify-manually
 * @throws {@link GrantkeeperError} `invalid_signature` (kind `unauthorized`), with `details.reason`: {@link SignatureFailureReason}
 * @throws {@link GrantkeeperError} `signing_misconfigured` (kind `misconfigured`) when a scheme other than `none` has no (or an empty) secret, or the scheme is unknown
 * @throws RangeError when `toleranceMs` is negative or not finite
 */
export function verifyWebhookSignature(input: VerifyInput): void {
  const { scheme, secret, rawBody, headers, nowMs } = input;
  const toleranceMs = input.toleranceMs ?? defaultSignatureToleranceMs;
  checkTolerancePositive(toleranceMs);
  if (scheme === "none") return;
  // An empty key is as good as none: anyone can compute HMAC("", body).
  if (!secret) {
    throw new GrantkeeperError(SignatureErrorCode.signingMisconfigured, `the integration uses signing scheme ${scheme} but has no webhook secret`);
  }
  let failure: Failure | undefined;
  switch (scheme) {
    case "github":
      failure = checkPrefixedBodyHmac("X-Hub-Signature-256", headers.get("x-hub-signature-256"), secret, rawBody);
      break;
    case "hmac-sha256":
      failure = checkPrefixedBodyHmac("X-Signature-256", headers.get("x-signature-256"), secret, rawBody);
      break;
    case "slack":
      failure = checkSlack(headers, secret, rawBody, nowMs, toleranceMs);
      break;
    case "stripe":
      failure = checkStripeStyle("Stripe-Signature", headers.get("stripe-signature"), secret, rawBody, nowMs, toleranceMs);
      break;
    default:
      // Deny by default: a scheme this code does not know (a corrupted row, a newer version's value) verifies nothing.
      throw new GrantkeeperError(SignatureErrorCode.signingMisconfigured, `unknown webhook signing scheme ${JSON.stringify(scheme satisfies never)}`);
  }
  if (failure) {
    throw new GrantkeeperError(SignatureErrorCode.invalidSignature, failure.detail, { details: { reason: failure.reason } });
  }
}

/** A string member of a JSON object body, or `undefined` when the body is not such JSON. */
function jsonStringMember(rawBody: Uint8Array, member: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(rawBody));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
    const value = (parsed as Record<string, unknown>)[member];
    return typeof value === "string" && value !== "" ? value : undefined;
  } catch {
    return undefined; // e.g. Slack slash commands are form-encoded
  }
}

/**
 * How long a repeat of the same signed body is a duplicate, for the schemes
 * whose signature covers no timestamp (`github`, `hmac-sha256`, Slack bodies
 * without `event_id`): 24 hours (api-contract.md v1.1 "Webhooks"). After that,
 * an identical body is a new delivery again (a sender that posts `{}` daily
 * must not be deduplicated forever).
 * @defaultValue 86_400_000
 */
export const signedBodyReplayWindowMs = 86_400_000;

/**
 * Where a webhook's idempotency key comes from:
 * - `delivery_id`: an id inside the signed body (a Stripe event's `id`, a Slack event's `event_id`);
 * - `signed_body`: `sha256:<hex SHA-256 of the raw body>`, for schemes without a signed timestamp —
 *   their unsigned delivery headers (`X-GitHub-Delivery`, `Idempotency-Key`) cannot be trusted, since
 *   whoever replays a captured body can set them to anything; deduplicated for {@link signedBodyReplayWindowMs};
 * - `header`: the `Idempotency-Key` header (scheme `none`, and Stripe bodies without an `id`).
 */
export type IdempotencyKeySource = "delivery_id" | "signed_body" | "header";

/** A webhook's idempotency key (Job `idempotencyKey`) and where it came from. */
export interface IdempotencyKey {
  value: string;
  source: IdempotencyKeySource;
}

/** The `signed_body` key of a raw body: `sha256:` + 64 hex digits. */
export function signedBodyKey(rawBody: Uint8Array): string {
  return `sha256:${createHash("sha256").update(rawBody).digest("hex")}`;
}

/**
 * The key used to deduplicate a webhook (Job `idempotencyKey`, unique per
 * integration). Call it after {@link verifyWebhookSignature}: the body is only
 * trusted once verified.
 *
 * - `github`, `hmac-sha256`: the signed body (`X-GitHub-Delivery` is not signed: a replayed
 *   body with a fresh delivery id would otherwise be a new job);
 * - `slack`: `event_id` of an Events API JSON body, else the signed body (form-encoded
 *   slash commands and interactions);
 * - `stripe`: the event's `id`, else `Idempotency-Key`;
 * - `none`: `Idempotency-Key`.
 *
 * @returns the key, or `undefined` when the request carries none
 * @see https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
 * @see https://docs.stripe.com/webhooks#handle-duplicate-events
 * @see https://api.slack.com/apis/events-api#retries
 * @throws {@link GrantkeeperError} `invalid_idempotency_key` (kind `malformed_request`) when the key is longer than {@link maxIdempotencyKeyLength} characters or holds a control character
 */
export function idempotencyKeyOf(scheme: SigningScheme, headers: Headers, rawBody: Uint8Array): IdempotencyKey | undefined {
  let key: IdempotencyKey | undefined;
  if (scheme === "github" || scheme === "hmac-sha256") return { value: signedBodyKey(rawBody), source: "signed_body" };
  if (scheme === "slack") {
    const eventId = jsonStringMember(rawBody, "event_id");
    key = eventId !== undefined ? { value: eventId, source: "delivery_id" } : { value: signedBodyKey(rawBody), source: "signed_body" };
  } else if (scheme === "stripe") {
    const id = jsonStringMember(rawBody, "id");
    if (id !== undefined) key = { value: id, source: "delivery_id" };
  }
  if (key === undefined) {
    const header = headers.get("idempotency-key")?.trim();
    if (header) key = { value: header, source: "header" };
  }
  if (key !== undefined && key.value.length > maxIdempotencyKeyLength) {
    throw new GrantkeeperError(SignatureErrorCode.invalidIdempotencyKey, `the idempotency key is ${key.value.length} characters; at most ${maxIdempotencyKeyLength} are allowed`);
  }
  // A body's id may hold any JSON string; a NUL cannot even be stored by PostgreSQL.
  if (key !== undefined && /[\u0000-\u001f\u007f]/.test(key.value)) {
    throw new GrantkeeperError(SignatureErrorCode.invalidIdempotencyKey, "the idempotency key contains control characters");
  }
  return key;
}

/**
 * Sign an outbound delivery (the `Grantkeeper-Signature` header) with the Stripe scheme.
 * @param secret the integration's delivery secret
 * @param body the exact JSON text that is POSTed (hashed as UTF-8)
 * @param nowMs current time, milliseconds since the Unix epoch; the header carries it floored to seconds
 * @returns `t=<Unix s>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`
 * @see https://docs.stripe.com/webhooks#verify-manually
 */
export function signDelivery(secret: string, body: string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${hmac(secret, `${t}.${body}`).toString("hex")}`;
}

/**
 * Verify a `Grantkeeper-Signature` header, as a consumer does: any matching `v1`, and
 * |nowMs − t| ≤ `toleranceMs`.
 * @param nowMs current time, milliseconds since the Unix epoch
 * @param toleranceMs allowed clock distance in milliseconds; @defaultValue 300_000
 * @returns `true` when the header is well-formed, matches `body` and is fresh
 * @throws RangeError when `toleranceMs` is negative or not finite
 * @see https://docs.stripe.com/webhooks#verify-manually
 */
export function verifyDeliverySignature(secret: string, header: string, body: string, nowMs: number, toleranceMs: number = defaultSignatureToleranceMs): boolean {
  checkTolerancePositive(toleranceMs);
  return checkStripeStyle("Grantkeeper-Signature", header, secret, Buffer.from(body, "utf8"), nowMs, toleranceMs) === undefined;
}
