import { describe, expect, it } from "vitest";
import { nonCanonicalReason, rawPathOf } from "./canonicalPath.js";

describe("nonCanonicalReason", () => {
  it.each([
    ["/", undefined],
    ["/v1/connections", undefined],
    ["/v1/connections/", undefined],
    ["/v1/proxy/conn_x/search%20term", undefined],
    ["/v1/proxy/conn_x/a%3Ab", undefined],
    ["/v1/proxy/conn_x/caf%C3%A9", undefined],
    ["/v1/proxy/conn_x/a%2fb", "encoded_separator"],
    ["/v1/proxy/conn_x/a%5Cb", "encoded_separator"],
    ["/%761/connections", "encoded_unreserved"],
    ["/v%31/connections", "encoded_unreserved"],
    ["/v1/%7Ex", "encoded_unreserved"],
    ["/v1/%2e%2e/x", "encoded_unreserved"],
    ["/v1/%2D", "encoded_unreserved"],
    ["/v1/%5F", "encoded_unreserved"],
    ["/v1/%", "malformed_escape"],
    ["/v1/%4", "malformed_escape"],
    ["/v1/%G1", "malformed_escape"],
    ["/v1/a%00", "encoded_nul"],
    ["/v1/./x", "dot_segment"],
    ["/v1/../x", "dot_segment"],
    ["/v1/x/.", "dot_segment"],
    ["/v1/x/..", "dot_segment"],
    ["/v1/.hidden", undefined],
    ["/v1/..x", undefined],
    ["//v1/x", "empty_segment"],
    ["/v1//x", "empty_segment"],
    ["/v1\\x", "backslash"],
    ["v1/x", "not_absolute"],
    ["", "not_absolute"],
    ["*", "not_absolute"],
  ])("%s → %s", (path, reason) => {
    expect(nonCanonicalReason(path)).toBe(reason);
  });
});

describe("rawPathOf", () => {
  it.each([
    ["/v1/x?a=b", "/v1/x"],
    ["/v1/x#f", "/v1/x"],
    ["http://127.0.0.1:7420/%761/x?y", "/%761/x"],
    ["https://h", "/"],
    ["/v1/x", "/v1/x"],
  ])("%s → %s", (target, path) => {
    expect(rawPathOf(target)).toBe(path);
  });
});
