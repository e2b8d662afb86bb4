import { createHash, createHmac } from "node:crypto";
import { sign as githubSign } from "@octokit/webhooks-methods";
import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { GrantkeeperError, isGrantkeeperError } from "../domain/errors.js";
import {
  idempotencyKeyOf,
  signDelivery,
  verifyDeliverySignature,
  verifyWebhookSignature,
  type SignatureFailureReason,
  type SigningScheme,
  type VerifyInput,
} from "./signatures.js";

// Independent signers: GitHub's own @octokit/webhooks-methods and Stripe's SDK (no network: only webhook helpers are used).
const stripe = new Stripe("sk_test_unused");

const SECRET = "whsec_test_secret_0123456789";
const T = 1_700_000_000; // Unix seconds of the signed timestamp
const NOW_MS = T * 1000 + 12_345;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const payload = JSON.stringify({ id: "evt_1NG8Du2eZvKYlo2CUI79vXWy", object: "event", type: "invoice.paid", data: { amount: 4200, note: "café ✓" } });

/** Flip the lowest bit of one byte. */
function tamper(body: Uint8Array, at = 0): Uint8Array {
  const copy = Uint8Array.from(body);
  copy[at] = (copy[at] ?? 0) ^ 1;
  return copy;
}

function caught(fn: () => unknown): GrantkeeperError {
  try {
    fn();
  } catch (e) {
    expect(isGrantkeeperError(e)).toBe(true);
    return e as GrantkeeperError;
  }
  throw new Error("expected a GrantkeeperError");
}

function expectRejected(input: VerifyInput, reason: SignatureFailureReason): GrantkeeperError {
  const e = caught(() => verifyWebhookSignature(input));
  expect(e).toBeInstanceOf(GrantkeeperError);
  expect({ kind: e.kind, code: e.code, reason: e.details.reason }).toEqual({ kind: "unauthorized", code: "invalid_signature", reason });
  return e;
}

const slackSign = (secret: string, ts: string | number, body: Uint8Array): string =>
  `v0=${createHmac("sha256", secret).update(`v0:${ts}:`).update(body).digest("hex")}`;

describe("github (vectors from @octokit/webhooks-methods)", () => {
  const input = async (over: Partial<VerifyInput> = {}): Promise<VerifyInput> => ({
    scheme: "github",
    secret: SECRET,
    rawBody: bytes(payload),
    headers: new Headers({ "X-Hub-Signature-256": await githubSign(SECRET, payload) }),
    nowMs: NOW_MS,
    ...over,
  });

  it("accepts a valid signature", async () => {
    expect(verifyWebhookSignature(await input())).toBeUndefined();
  });

  it("accepts GitHub's published example (docs: 'Validating webhook deliveries')", () => {
    const headers = new Headers({ "x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" });
    expect(verifyWebhookSignature({ scheme: "github", secret: "It's a Secret to Everybody", rawBody: bytes("Hello, World!"), headers, nowMs: NOW_MS })).toBeUndefined();
  });

  it("rejects a body with one byte changed, anywhere", async () => {
    const base = await input();
    expectRejected({ ...base, rawBody: tamper(base.rawBody) }, "mismatch");
    expectRejected({ ...base, rawBody: tamper(base.rawBody, base.rawBody.length - 1) }, "mismatch");
  });

  it("rejects a signature made with another secret", async () => {
    expectRejected(await input({ headers: new Headers({ "X-Hub-Signature-256": await githubSign("other-secret", payload) }) }), "mismatch");
  });

  it("rejects a missing header", async () => {
    expectRejected(await input({ headers: new Headers({ "X-Hub-Signature": "sha1=abc" }) }), "missing_header");
  });

  it("rejects malformed headers: no prefix, short hex, non-hex, the sha1 form", async () => {
    const hex = (await githubSign(SECRET, payload)).slice("sha256=".length);
    for (const value of [hex, `sha256=${hex.slice(2)}`, `sha256=${"z".repeat(64)}`, `sha1=${hex.slice(0, 40)}`]) {
      expectRejected(await input({ headers: new Headers({ "X-Hub-Signature-256": value }) }), "malformed_header");
    }
  });

  it("never puts the expected signature in the problem", async () => {
    const expected = (await githubSign(SECRET, payload)).slice("sha256=".length);
    const e = expectRejected(await input({ rawBody: bytes(payload), headers: new Headers({ "X-Hub-Signature-256": `sha256=${"0".repeat(64)}` }) }), "mismatch");
    expect(JSON.stringify({ ...e, details: e.details }) + e.message).not.toContain(expected);
  });
});

describe("hmac-sha256 (X-Signature-256, same construction as GitHub's, signed by octokit)", () => {
  const headersFor = async (secret: string, body: string) => new Headers({ "X-Signature-256": await githubSign(secret, body) });
  const base = { scheme: "hmac-sha256" as const, secret: SECRET, rawBody: bytes(payload), nowMs: NOW_MS };

  it("accepts a valid signature", async () => {
    expect(verifyWebhookSignature({ ...base, headers: await headersFor(SECRET, payload) })).toBeUndefined();
  });
  it("rejects a tampered body and a wrong secret", async () => {
    expectRejected({ ...base, rawBody: tamper(base.rawBody, 10), headers: await headersFor(SECRET, payload) }, "mismatch");
    expectRejected({ ...base, headers: await headersFor("wrong", payload) }, "mismatch");
  });
  it("rejects a missing header (GitHub's header is not accepted here) and a malformed one", async () => {
    expectRejected({ ...base, headers: new Headers({ "X-Hub-Signature-256": await githubSign(SECRET, payload) }) }, "missing_header");
    expectRejected({ ...base, headers: new Headers({ "X-Signature-256": "sha256=" }) }, "malformed_header");
  });
  it("hashes the raw bytes: a body that is not valid UTF-8 still verifies", () => {
    const raw = Uint8Array.from([0x7b, 0xff, 0xfe, 0xc3, 0x28, 0x7d]);
    const headers = new Headers({ "X-Signature-256": `sha256=${createHmac("sha256", SECRET).update(raw).digest("hex")}` });
    expect(verifyWebhookSignature({ ...base, rawBody: raw, headers })).toBeUndefined();
  });
});

describe("slack", () => {
  // Slack's published example, "Verifying requests from Slack".
  const ex = {
    secret: "8f742231b10e8888abcd99yyyzzz85a5",
    ts: 1531420618,
    body: "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
    sig: "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
  };
  const exInput = (over: Partial<VerifyInput> = {}): VerifyInput => ({
    scheme: "slack",
    secret: ex.secret,
    rawBody: bytes(ex.body),
    headers: new Headers({ "X-Slack-Request-Timestamp": String(ex.ts), "X-Slack-Signature": ex.sig }),
    nowMs: ex.ts * 1000 + 2_000,
    ...over,
  });
  const body = bytes(JSON.stringify({ type: "event_callback", event_id: "Ev08MFMKH6", event: { type: "app_mention", text: "hé" } }));
  const input = (over: Partial<VerifyInput> = {}): VerifyInput => ({
    scheme: "slack",
    secret: SECRET,
    rawBody: body,
    headers: new Headers({ "X-Slack-Request-Timestamp": String(T), "X-Slack-Signature": slackSign(SECRET, T, body) }),
    nowMs: NOW_MS,
    ...over,
  });

  it("the test's signer reproduces Slack's published example", () => {
    expect(slackSign(ex.secret, ex.ts, bytes(ex.body))).toBe(ex.sig);
  });
  it("accepts Slack's published example near its timestamp, and a locally signed request", () => {
    expect(verifyWebhookSignature(exInput())).toBeUndefined();
    expect(verifyWebhookSignature(input())).toBeUndefined();
  });
  it("rejects a tampered body and a wrong secret", () => {
    expectRejected(exInput({ rawBody: tamper(bytes(ex.body), 40) }), "mismatch");
    expectRejected(exInput({ secret: `${ex.secret}x` }), "mismatch");
  });
  it("binds the timestamp: the same signature under another (fresh) timestamp fails", () => {
    const headers = new Headers({ "X-Slack-Request-Timestamp": String(ex.ts + 1), "X-Slack-Signature": ex.sig });
    expectRejected(exInput({ headers }), "mismatch");
  });
  it("rejects either header missing", () => {
    expectRejected(input({ headers: new Headers({ "X-Slack-Signature": slackSign(SECRET, T, body) }) }), "missing_header");
    expectRejected(input({ headers: new Headers({ "X-Slack-Request-Timestamp": String(T) }) }), "missing_header");
  });
  it("rejects a malformed signature or timestamp", () => {
    const good = slackSign(SECRET, T, body);
    expectRejected(input({ headers: new Headers({ "X-Slack-Request-Timestamp": String(T), "X-Slack-Signature": good.replace("v0=", "v1=") }) }), "malformed_header");
    expectRejected(input({ headers: new Headers({ "X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": good }) }), "malformed_header");
  });
  it("tolerance: exactly 300 s either side is accepted, 300.001 s is rejected as stale", () => {
    for (const nowMs of [T * 1000 + 300_000, T * 1000 - 300_000]) expect(verifyWebhookSignature(input({ nowMs }))).toBeUndefined();
    for (const nowMs of [T * 1000 + 300_001, T * 1000 - 300_001]) expectRejected(input({ nowMs }), "stale_timestamp");
  });
  it("honours a custom toleranceMs on both sides", () => {
    expect(verifyWebhookSignature(input({ nowMs: T * 1000 + 60_000, toleranceMs: 60_000 }))).toBeUndefined();
    expectRejected(input({ nowMs: T * 1000 + 60_001, toleranceMs: 60_000 }), "stale_timestamp");
  });
});

describe("stripe (vectors from stripe.webhooks.generateTestHeaderString)", () => {
  const header = (secret = SECRET, timestamp = T, body = payload) => stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
  const input = (over: Partial<VerifyInput> = {}): VerifyInput => ({
    scheme: "stripe",
    secret: SECRET,
    rawBody: bytes(payload),
    headers: new Headers({ "Stripe-Signature": header() }),
    nowMs: NOW_MS,
    ...over,
  });
  const v1Of = (h: string) => h.split(",").find((p) => p.startsWith("v1="))!;

  it("accepts a valid signature", () => {
    expect(verifyWebhookSignature(input())).toBeUndefined();
  });
  it("rejects a tampered body and a wrong secret", () => {
    expectRejected(input({ rawBody: tamper(bytes(payload), 5) }), "mismatch");
    expectRejected(input({ headers: new Headers({ "Stripe-Signature": header("whsec_other") }) }), "mismatch");
  });
  it("accepts when the second of two v1 signatures matches (secret rotation), and ignores v0", () => {
    const value = `t=${T},${v1Of(header("whsec_old"))},${v1Of(header())},v0=${"ab".repeat(32)}`;
    expect(verifyWebhookSignature(input({ headers: new Headers({ "Stripe-Signature": value }) }))).toBeUndefined();
    const none = `t=${T},${v1Of(header("whsec_old"))},${v1Of(header("whsec_older"))}`;
    expectRejected(input({ headers: new Headers({ "Stripe-Signature": none }) }), "mismatch");
  });
  it("rejects a missing header", () => {
    expectRejected(input({ headers: new Headers() }), "missing_header");
  });
  it("rejects malformed headers: no t, no v1, bad t, bad hex, junk", () => {
    const v1 = v1Of(header());
    for (const value of [v1, `t=${T}`, `t=${T},v0=${"ab".repeat(32)}`, `t=abc,${v1}`, `t=${T},v1=xyz`, "garbage", `t=${T},t=${T},${v1}`]) {
      expectRejected(input({ headers: new Headers({ "Stripe-Signature": value }) }), "malformed_header");
    }
  });
  it("tolerance: exactly 300 s old is accepted, 300.001 s is rejected as stale", () => {
    expect(verifyWebhookSignature(input({ nowMs: T * 1000 + 300_000 }))).toBeUndefined();
    expectRejected(input({ nowMs: T * 1000 + 300_001 }), "stale_timestamp");
    expectRejected(input({ nowMs: T * 1000 - 300_001 }), "stale_timestamp");
  });
});

describe("scheme none and misconfiguration", () => {
  it("none accepts anything, with or without a secret", () => {
    for (const secret of [undefined, SECRET]) {
      expect(verifyWebhookSignature({ scheme: "none", secret, rawBody: bytes("x"), headers: new Headers(), nowMs: NOW_MS })).toBeUndefined();
    }
  });
  it("a signing scheme without a secret is a 500 signing_misconfigured", () => {
    for (const scheme of ["github", "slack", "stripe", "hmac-sha256"] as const) {
      for (const secret of [undefined, ""]) {
        const e = caught(() => verifyWebhookSignature({ scheme, secret, rawBody: bytes("x"), headers: new Headers(), nowMs: NOW_MS }));
        expect({ kind: e.kind, code: e.code }).toEqual({ kind: "misconfigured", code: "signing_misconfigured" });
      }
    }
  });
  it("an unknown scheme (a corrupted row, a value this version does not know) verifies nothing: 500 signing_misconfigured", () => {
    for (const scheme of ["not_configured", "GitHub", ""]) {
      const e = caught(() => verifyWebhookSignature({ scheme: scheme as SigningScheme, secret: SECRET, rawBody: bytes("x"), headers: new Headers(), nowMs: NOW_MS }));
      expect({ kind: e.kind, code: e.code }).toEqual({ kind: "misconfigured", code: "signing_misconfigured" });
    }
  });
  it("a negative tolerance is a RangeError", () => {
    expect(() => verifyWebhookSignature({ scheme: "none", secret: undefined, rawBody: bytes(""), headers: new Headers(), nowMs: 0, toleranceMs: -1 })).toThrow(RangeError);
  });
});

describe("idempotencyKeyOf", () => {
  const h = (init: Record<string, string> = {}) => new Headers(init);
  const bodyKey = (body: string) => ({ value: `sha256:${createHash("sha256").update(body).digest("hex")}`, source: "signed_body" });

  it("github and hmac-sha256: the signed body, never an unsigned delivery header (a replay could set any)", () => {
    for (const scheme of ["github", "hmac-sha256"] as const) {
      const a = idempotencyKeyOf(scheme, h({ "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "Idempotency-Key": "k" }), bytes('{"n":1}'));
      expect(a).toEqual(bodyKey('{"n":1}'));
      // Same body, other headers: the same key (a duplicate); one byte changed: another key.
      expect(idempotencyKeyOf(scheme, h({ "X-GitHub-Delivery": "fresh-id" }), bytes('{"n":1}'))).toEqual(a);
      expect(idempotencyKeyOf(scheme, h(), bytes('{"n":2}'))!.value).not.toBe(a!.value);
      expect(idempotencyKeyOf(scheme, h(), bytes(""))).toEqual(bodyKey(""));
    }
  });
  it("stripe: the event id from the body, else Idempotency-Key", () => {
    expect(idempotencyKeyOf("stripe", h({ "Idempotency-Key": "k" }), bytes(payload))).toEqual({ value: "evt_1NG8Du2eZvKYlo2CUI79vXWy", source: "delivery_id" });
    expect(idempotencyKeyOf("stripe", h({ "Idempotency-Key": "k-3" }), bytes("[1]"))).toEqual({ value: "k-3", source: "header" });
    expect(idempotencyKeyOf("stripe", h(), bytes(JSON.stringify({ id: 42 })))).toBeUndefined();
  });
  it("slack: event_id of an Events API payload, else the signed body (slash commands are form-encoded)", () => {
    expect(idempotencyKeyOf("slack", h(), bytes(JSON.stringify({ type: "event_callback", event_id: "Ev08MFMKH6" })))).toEqual({ value: "Ev08MFMKH6", source: "delivery_id" });
    expect(idempotencyKeyOf("slack", h({ "Idempotency-Key": "k-2" }), bytes("token=x&command=%2Fdo"))).toEqual(bodyKey("token=x&command=%2Fdo"));
  });
  it("none: Idempotency-Key, or undefined without one (an empty header counts as none)", () => {
    expect(idempotencyKeyOf("none", h({ "Idempotency-Key": " order-17 " }), bytes("[1,2]"))).toEqual({ value: "order-17", source: "header" });
    expect(idempotencyKeyOf("none", h(), bytes("{}"))).toBeUndefined();
    expect(idempotencyKeyOf("none", h({ "Idempotency-Key": "" }), bytes("{}"))).toBeUndefined();
  });
  it("200 characters are fine; 201, or a control character, is a 400 invalid_idempotency_key, from a header or a body", () => {
    expect(idempotencyKeyOf("none", h({ "Idempotency-Key": "a".repeat(200) }), bytes(""))?.value).toBe("a".repeat(200));
    for (const [scheme, headers, body] of [
      ["none", h({ "Idempotency-Key": "a".repeat(201) }), bytes("")],
      ["stripe", h(), bytes(JSON.stringify({ id: "e".repeat(201) }))],
      ["slack", h(), bytes(JSON.stringify({ event_id: "e".repeat(201) }))],
      ["stripe", h(), bytes(JSON.stringify({ id: "evt_\u0000" }))],
      ["slack", h(), bytes(JSON.stringify({ event_id: "Ev\n1" }))],
    ] as const) {
      const e = caught(() => idempotencyKeyOf(scheme, headers, body));
      expect({ kind: e.kind, code: e.code }).toEqual({ kind: "malformed_request", code: "invalid_idempotency_key" });
    }
  });
});

describe("delivery signing (Grantkeeper-Signature, the Stripe scheme)", () => {
  const body = JSON.stringify({ jobId: "job_1", integrationId: "int_1", receivedAt: "2023-11-14T22:13:20Z", headers: {}, body: "ü" });

  it("round-trips, and the header has the documented shape (t in whole seconds, floored)", () => {
    const header = signDelivery(SECRET, body, NOW_MS); // NOW_MS = T s + 12.345 s
    expect(header).toMatch(new RegExp(`^t=${T + 12},v1=[0-9a-f]{64}$`));
    expect(verifyDeliverySignature(SECRET, header, body, NOW_MS)).toBe(true);
  });
  it("is interoperable with Stripe's SDK in both directions", () => {
    expect(stripe.webhooks.signature!.verifyHeader(body, signDelivery(SECRET, body, NOW_MS), SECRET, 300, undefined, NOW_MS)).toBe(true);
    expect(verifyDeliverySignature(SECRET, stripe.webhooks.generateTestHeaderString({ payload: body, secret: SECRET, timestamp: T }), body, NOW_MS)).toBe(true);
  });
  it("rejects a tampered body, a wrong secret and a malformed header", () => {
    const header = signDelivery(SECRET, body, NOW_MS);
    expect(verifyDeliverySignature(SECRET, header, body.replace("job_1", "job_2"), NOW_MS)).toBe(false);
    expect(verifyDeliverySignature("other", header, body, NOW_MS)).toBe(false);
    expect(verifyDeliverySignature(SECRET, header.replace("v1=", "v2="), body, NOW_MS)).toBe(false);
  });
  it("stale: accepted at exactly the tolerance, rejected 1 ms beyond (default and custom)", () => {
    const header = signDelivery(SECRET, body, T * 1000);
    expect(verifyDeliverySignature(SECRET, header, body, T * 1000 + 300_000)).toBe(true);
    expect(verifyDeliverySignature(SECRET, header, body, T * 1000 + 300_001)).toBe(false);
    expect(verifyDeliverySignature(SECRET, header, body, T * 1000 + 10_000, 10_000)).toBe(true);
    expect(verifyDeliverySignature(SECRET, header, body, T * 1000 + 10_001, 10_000)).toBe(false);
  });
});
