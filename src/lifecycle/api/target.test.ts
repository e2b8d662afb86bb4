import { describe, expect, it } from "vitest";
import { isGrantkeeperError, isMethodNotAllowedError } from "../../domain/errors.js";
import { ALLOW_HEADER, apiMethod, resolveApiTarget, type ApiPathRefusal } from "./target.js";

const BASE = "https://api.x.com/v2";

describe("resolveApiTarget", () => {
  it.each<[string, string, string | undefined, string]>([
    ["a path", "records", undefined, "https://api.x.com/v2/records"],
    ["one leading slash is ignored", "/records", undefined, "https://api.x.com/v2/records"],
    ["nested, with a trailing slash", "a/b/", undefined, "https://api.x.com/v2/a/b/"],
    ["the base itself", "", undefined, "https://api.x.com/v2"],
    ["a lone slash is the base too", "/", undefined, "https://api.x.com/v2"],
    ["a query in the path", "records?limit=3&x=a%2Fb", undefined, "https://api.x.com/v2/records?limit=3&x=a%2Fb"],
    ["a fragment is dropped", "records?a=1#frag", undefined, "https://api.x.com/v2/records?a=1"],
    ["a given search wins", "records", "?cursor=..%2F..", "https://api.x.com/v2/records?cursor=..%2F.."],
    ["escapes other than separators and dots stay", "users/a%20b/%E2%9C%93", undefined, "https://api.x.com/v2/users/a%20b/%E2%9C%93"],
    ["dots inside a segment are fine", "files/a..b/.well", undefined, "https://api.x.com/v2/files/a..b/.well"],
    ["a scheme-looking segment stays a segment", "https:evil.example/x", undefined, "https://api.x.com/v2/https:evil.example/x"],
    ["an @ stays in the path", "@evil.example/x", undefined, "https://api.x.com/v2/@evil.example/x"],
  ])("%s: %s", (_name, path, search, expected) => {
    expect(resolveApiTarget(BASE, path, search).href).toBe(expected);
  });

  it("keeps a base with a trailing slash and ignores the base's query", () => {
    expect(resolveApiTarget("https://api.x.com/v2/", "a").href).toBe("https://api.x.com/v2/a");
    expect(resolveApiTarget("https://api.x.com/v2?key=1", "a").href).toBe("https://api.x.com/v2/a");
    expect(resolveApiTarget("https://api.x.com", "a").href).toBe("https://api.x.com/a");
  });

  it.each<[string, ApiPathRefusal]>([
    ["../admin", "dot_segment"],
    ["a/../../admin", "dot_segment"],
    ["./a", "dot_segment"],
    ["a/..", "dot_segment"],
    ["%2e%2e/admin", "dot_segment"],
    ["%2E%2E/admin", "dot_segment"],
    [".%2e/admin", "dot_segment"],
    ["%2e/admin", "dot_segment"],
    ["..%2Fadmin", "encoded_separator"],
    ["a%2F..%2F..%2Fadmin", "encoded_separator"],
    ["%2Fadmin", "encoded_separator"],
    ["//evil.example/x", "empty_segment"],
    ["///admin", "empty_segment"],
    ["a//b", "empty_segment"],
    ["..\\admin", "control_character"],
    ["a%5C..%5Cadmin", "control_character"],
    ["a%00b", "control_character"],
    ["a\nb", "control_character"],
    ["%E0%A4%A", "malformed_escape"],
    ["%zz", "malformed_escape"],
  ])("refuses %j (%s) and never leaves /v2", (path, reason) => {
    let thrown: unknown;
    try {
      resolveApiTarget(BASE, path);
    } catch (e) {
      thrown = e;
    }
    expect(isGrantkeeperError(thrown, "invalid_proxy_path")).toBe(true);
    expect((thrown as { details: { reason: string } }).details.reason).toBe(reason);
  });

  it("never resolves outside the base for any absolute-looking input", () => {
    for (const path of ["https://evil.example/steal", "http://127.0.0.1:1/x", "//evil.example", "mailto:x@y", "javascript:alert(1)"]) {
      let url: URL | undefined;
      try {
        url = resolveApiTarget(BASE, path);
      } catch {
        continue;
      }
      expect(url.origin).toBe("https://api.x.com");
      expect(url.pathname.startsWith("/v2/")).toBe(true);
    }
  });
});

describe("apiMethod", () => {
  it.each(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "patch"])("accepts %s", (m) => {
    expect(apiMethod(m)).toBe(m.toUpperCase());
  });

  it.each(["TRACE", "CONNECT", "PROPFIND", "MKCOL", "LOCK", "PURGE", "BREW"])("refuses %s with 405 and the Allow list", (m) => {
    let thrown: unknown;
    try {
      apiMethod(m);
    } catch (e) {
      thrown = e;
    }
    expect(isMethodNotAllowedError(thrown)).toBe(true);
    expect(thrown).toMatchObject({ code: "method_not_allowed", details: { allow: ALLOW_HEADER } });
  });
});
