/**
 * grantkeeper's own integrations: the alert webhook sink's carrier
 * (`src/alerts/sinks.ts` `WebhookSink`) puts each alert on the job queue as a
 * job of an integration whose id starts with {@link INTERNAL_INTEGRATION_PREFIX}.
 * Those integrations are outbound only: ingress refuses every inbound webhook
 * for them, whatever their stored signing scheme says — otherwise anyone could
 * post to `/v1/webhooks/int_alerts…` and have grantkeeper deliver the body to
 * the sink signed with the sink's secret (issue 10 item 5).
 *
 * The rule is decided on the id alone, which no stored column can change:
 * user integrations are `int_` + 24 hexadecimal digits
 * ({@link newUserIntegrationId}), and `l`, `r`, `t`, `s` are not hexadecimal,
 * so no user id can start with `int_alerts`.
 */
import { createHash, randomUUID } from "node:crypto";

/** Prefix of every internal (outbound-only) integration id. */
export const INTERNAL_INTEGRATION_PREFIX = "int_alerts";

/** A new user integration id: `int_` + 24 lowercase hexadecimal digits (never internal). */
export function newUserIntegrationId(): string {
  return `int_${randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

/**
 * The id of the internal integration that carries an alert webhook sink's
 * jobs: stable per sink URL, so a restart finds the same queue.
 * @param sinkUrl the sink's URL
 * @returns `int_alerts` + the first 16 hex digits of SHA-256(url)
 */
export function alertSinkIntegrationId(sinkUrl: string): string {
  return `${INTERNAL_INTEGRATION_PREFIX}${createHash("sha256").update(sinkUrl).digest("hex").slice(0, 16)}`;
}

/** True for grantkeeper's own outbound-only integrations (see the module comment). */
export function isInternalIntegrationId(id: string): boolean {
  return id.startsWith(INTERNAL_INTEGRATION_PREFIX);
}
