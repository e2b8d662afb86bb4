import { describe, expect, it } from "vitest";
import { connectionOptions, HOP_BY_HOP_HEADERS, headersForCaller, headersForProvider } from "./headers.js";

const HOP = ["Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization"];

describe("headersForProvider", () => {
  it("drops every RFC 9110 §7.6.1 hop-by-hop header, those named in Connection, and the caller's credentials", () => {
    const sent = headersForProvider(
      new Headers([
        ...HOP.map((h) => [h, h === "Connection" ? "keep-alive, X-Private, x-debug" : "v"] as [string, string]),
        ["X-Private", "internal"],
        ["X-Debug", "1"],
        ["Authorization", "Bearer gk_key"],
        ["Cookie", "session=1"],
        ["Host", "grantkeeper.local"],
        ["Expect", "100-continue"],
        ["Content-Length", "12"],
        ["Content-Type", "application/json"],
        ["Accept", "application/json"],
        ["X-Request-Id", "r1"],
      ]),
    );
    expect(sent).toEqual({ "content-type": "application/json", accept: "application/json", "x-request-id": "r1" });
  });

  it("reads names from Proxy-Connection and from repeated Connection values", () => {
    expect(headersForProvider([["connection", "a"], ["Connection", "B"], ["proxy-connection", "c"], ["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"]])).toEqual({ d: "4" });
  });

  it("joins repeated end-to-end headers", () => {
    expect(headersForProvider([["accept", "a"], ["Accept", "b"]])).toEqual({ accept: "a, b" });
  });

  it("forwards a header whatever its name: constructor, __proto__ and toString are names like any other", () => {
    const sent = headersForProvider([["Constructor", "c1"], ["constructor", "c2"], ["__proto__", "p"], ["toString", "t"]]);
    expect(Object.entries(sent)).toEqual([["constructor", "c1, c2"], ["__proto__", "p"], ["tostring", "t"]]);
  });
});

describe("headersForCaller", () => {
  it("drops hop-by-hop headers, those named in Connection and Set-Cookie; keeps repeated ones", () => {
    const back = headersForCaller({
      connection: "keep-alive, x-upstream-hop",
      "keep-alive": "timeout=5",
      "transfer-encoding": "chunked",
      trailer: "x-checksum",
      upgrade: "h2c",
      "proxy-authenticate": "Basic",
      "x-upstream-hop": "secret",
      "set-cookie": ["a=1", "b=2"],
      "set-cookie2": "c=3",
      "content-type": "application/json",
      "content-length": "12",
      "content-encoding": "gzip",
      link: ["<a>; rel=next", "<b>; rel=prev"],
      "www-authenticate": 'Bearer error="invalid_token"',
      empty: undefined,
    });
    expect(back).toEqual([
      ["content-type", "application/json"],
      ["content-length", "12"],
      ["content-encoding", "gzip"],
      ["link", "<a>; rel=next"],
      ["link", "<b>; rel=prev"],
      ["www-authenticate", 'Bearer error="invalid_token"'],
    ]);
  });
});

describe("connectionOptions", () => {
  it("lower-cases, trims and ignores empty list members", () => {
    expect([...connectionOptions([" Keep-Alive ,,X-A", "x-b"])]).toEqual(["keep-alive", "x-a", "x-b"]);
    expect(connectionOptions(undefined).size).toBe(0);
    expect(HOP_BY_HOP_HEADERS.size).toBe(9);
  });
});
