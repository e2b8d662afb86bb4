import { describe, expect, it } from "vitest";
import { renderAlert } from "./messages.js";

const facts = { subject: { connectionId: "conn_1" }, providerId: "github", providerName: "GitHub", entityId: "team-7", lastErrorCode: "invalid_grant" };

describe("grant_invalidated texts carry no live connect link", () => {
  it("with alerts.reconnectUrl: both texts point at the host app's page", () => {
    const r = renderAlert("grant_invalidated", { ...facts, reconnectUrl: "https://app.example.com/reconnect?provider=github" });
    expect(r.userMessage).toBe("Your GitHub connection has stopped working. Please reconnect your GitHub account: https://app.example.com/reconnect?provider=github");
    expect(r.message).toContain("Reconnect page: https://app.example.com/reconnect?provider=github");
  });

  it("without it: the user is told to reconnect in the app, operators how to link them there", () => {
    const r = renderAlert("grant_invalidated", facts);
    expect(r.userMessage).toBe("Your GitHub connection has stopped working. Please reconnect your GitHub account in the app.");
    expect(r.message).toContain("configure alerts.reconnectUrl");
    expect(`${r.message} ${r.userMessage}`).not.toMatch(/https?:/);
  });
});
