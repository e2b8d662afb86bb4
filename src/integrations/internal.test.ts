import { describe, expect, it } from "vitest";
import { alertSinkIntegrationId, INTERNAL_INTEGRATION_PREFIX, isInternalIntegrationId, newUserIntegrationId } from "./internal.js";

describe("internal (outbound-only) integrations", () => {
  it("are the alert sinks' carriers, one stable id per sink URL", () => {
    const id = alertSinkIntegrationId("https://ops.example.com/alerts");
    expect(id).toMatch(/^int_alerts[0-9a-f]{16}$/);
    expect(alertSinkIntegrationId("https://ops.example.com/alerts")).toBe(id);
    expect(alertSinkIntegrationId("https://ops.example.com/other")).not.toBe(id);
    expect(isInternalIntegrationId(id)).toBe(true);
  });

  it("can never be a user integration's id", () => {
    for (let i = 0; i < 2000; i++) {
      const id = newUserIntegrationId();
      expect(id).toMatch(/^int_[0-9a-f]{24}$/);
      expect(isInternalIntegrationId(id)).toBe(false);
    }
    // The prefix itself is outside the user alphabet.
    expect(/^int_[0-9a-f]*$/.test(INTERNAL_INTEGRATION_PREFIX)).toBe(false);
  });
});
