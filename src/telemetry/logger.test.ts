import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, logAccess, maskConnectLinks } from "./logger.js";

function capture() {
  const lines: any[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: createLogger({ level: "debug", destination }) };
}

describe("logger redaction", () => {
  it("redacts tokens, secrets, keys, Authorization and cookies wherever they sit", () => {
    const { lines, logger } = capture();
    logger.info({ accessToken: "AT", refresh_token: "RT", clientSecret: "CS", apiKey: "AK", nested: { secret: "S", authorization: "Bearer X" }, headers: { authorization: "Bearer Y", cookie: "c=1" } }, "x");
    const text = JSON.stringify(lines[0]);
    for (const s of ["AT", "RT", "CS", "AK", '"S"', "Bearer X", "Bearer Y", "c=1"]) expect(text).not.toContain(s);
    expect(lines[0].accessToken).toBe("[redacted]");
  });

  it("keeps failure codes and connection states readable", () => {
    const { lines, logger } = capture();
    logger.warn({ connectionId: "conn_1", result: "failed", class: "transient", reason: "server_error", code: "http_503", state: "degraded" }, "refresh attempt");
    expect(lines[0]).toMatchObject({ code: "http_503", state: "degraded", reason: "server_error" });
  });
});

describe("live connect links", () => {
  const link = "https://gk.example.com/v1/connect/github?connectToken=gkcs_AbC-_0123456789abcdefghijklmnopqrstuvwxyzABCD&x=1";

  it("masks the token of a link and a bare link secret, and nothing else", () => {
    expect(maskConnectLinks(`open ${link} now`)).toBe("open https://gk.example.com/v1/connect/github?connectToken=[redacted]&x=1 now");
    expect(maskConnectLinks("secret gkcs_AbC-_0123 leaked")).toBe("secret [redacted] leaked");
    expect(maskConnectLinks("connection conn_1 (github) is dead")).toBe("connection conn_1 (github) is dead");
  });

  it("never reach a log line: message strings are masked, connectUrl fields redacted", () => {
    const { lines, logger } = capture();
    logger.info({ connectUrl: link, nested: { connectToken: "gkcs_x" } }, `link ${link}`);
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain("gkcs_");
    expect(lines[0].msg).toBe("link https://gk.example.com/v1/connect/github?connectToken=[redacted]&x=1");
  });
});

describe("access lines", () => {
  it("carry method, path, status and duration, with the service binding, and mask a link secret in the path", () => {
    const { lines, logger } = capture();
    logAccess(logger, { method: "GET", path: "/v1/proxy/conn_1/items", status: 200, durationMs: 3 });
    logAccess(logger, { method: "GET", path: "/v1/x/gkcs_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", status: 404, durationMs: 1 });
    expect(lines[0]).toMatchObject({ level: 30, service: "grantkeeper", msg: "http request", method: "GET", path: "/v1/proxy/conn_1/items", status: 200, durationMs: 3 });
    expect(JSON.stringify(lines[1])).not.toContain("gkcs_abc");
  });

  it("follow the logger's level", () => {
    const lines: unknown[] = [];
    const destination = new Writable({ write: (c, _e, cb) => void (lines.push(String(c)), cb()) });
    logAccess(createLogger({ level: "warn", destination }), { method: "GET", path: "/healthz", status: 200, durationMs: 0 });
    expect(lines).toEqual([]);
  });
});
