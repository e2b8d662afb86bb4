import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";

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
