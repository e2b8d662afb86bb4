import { describe, expect, it } from "vitest";
import { reconnectUrlProblem, renderReconnectUrl } from "./reconnectUrl.js";

describe("alerts.reconnectUrl", () => {
  it("fills in the placeholders, URL-encoded", () => {
    const t = "https://app.example.com/reconnect?provider={providerId}&entity={entityId}&c={connectionId}";
    expect(renderReconnectUrl(t, { providerId: "github", entityId: "team a&b/c", connectionId: "conn_1" })).toBe("https://app.example.com/reconnect?provider=github&entity=team%20a%26b%2Fc&c=conn_1");
    expect(renderReconnectUrl("https://app.example.com/settings/{providerId}", { providerId: "slack", entityId: "e", connectionId: "c" })).toBe("https://app.example.com/settings/slack");
  });

  it.each([
    ["https://app.example.com/reconnect?p={providerId}", undefined],
    ["http://127.0.0.1:3000/r/{entityId}/{connectionId}", undefined],
    ["https://app.example.com/r?user={userId}", "unknown placeholder {userId}"],
    ["/reconnect?p={providerId}", "must be an absolute URL"],
    ["javascript:alert({providerId})", "must be an http(s) URL"],
    ["https://gk.example.com/v1/connect/{providerId}?connectToken=gkcs_x", "must be a page of the host app, not a connect link"],
  ])("%s → %s", (template, problem) => {
    const got = reconnectUrlProblem(template);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(problem);
  });
});
