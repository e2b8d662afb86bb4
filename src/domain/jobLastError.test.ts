import { describe, expect, it } from "vitest";
import { jobAuthError, jobError, MAX_JOB_ERROR_MESSAGE, parseJobLastError, serializeJobLastError, type JobLastError } from "./jobLastError.js";

const NOW = Date.UTC(2026, 0, 1);
const at = new Date(NOW).toISOString();

describe("JobLastError", () => {
  it.each<[string, JobLastError]>([
    ["user", jobError("user", "invalid_record", "the record is invalid", NOW)],
    ["infra", jobError("infra", "http_503", "consumer answered 503", NOW)],
    ["auth with a connection", jobAuthError("auth_rejected", "rejected again", NOW, "con_1")],
    ["auth without one", jobAuthError("no_connection", "nothing to refresh", NOW)],
  ])("%s round-trips through the stored form", (_, e) => {
    expect(parseJobLastError(serializeJobLastError(e))).toEqual(e);
  });

  it("stores the documented shape, fields in a fixed order", () => {
    expect(serializeJobLastError(jobAuthError("auth_failed", "m", NOW, "con_1"))).toBe(`{"class":"auth","code":"auth_failed","message":"m","at":"${at}","connectionId":"con_1"}`);
    expect(serializeJobLastError(jobError("user", "c", "m", NOW))).toBe(`{"class":"user","code":"c","message":"m","at":"${at}"}`);
    expect(serializeJobLastError(null)).toBeNull();
    expect(parseJobLastError(null)).toBeNull();
  });

  it("clips a message at the limit, keeping one at the limit whole", () => {
    expect(jobError("infra", "handler_error", "x".repeat(MAX_JOB_ERROR_MESSAGE), NOW).message).toHaveLength(MAX_JOB_ERROR_MESSAGE);
    const clipped = jobError("infra", "handler_error", "x".repeat(MAX_JOB_ERROR_MESSAGE + 1), NOW).message;
    expect(clipped).toHaveLength(MAX_JOB_ERROR_MESSAGE);
    expect(clipped.endsWith("…")).toBe(true);
  });

  it.each<[string, string, JobLastError]>([
    ["not JSON", "{oops", { class: "infra", code: "unreadable", message: "the stored error is not JSON", at: new Date(0).toISOString() }],
    ["no class", '{"code":"x"}', { class: "infra", code: "x", message: "", at: new Date(0).toISOString() }],
    ["an unknown class", '{"class":"cosmic","code":"x","message":"m","at":"t"}', { class: "infra", code: "x", message: "m", at: "t" }],
    ["an auth class with a code this version does not know", '{"class":"auth","code":"weird","message":"m","at":"t"}', { class: "infra", code: "weird", message: "m", at: "t" }],
    ["a JSON array", "[]", { class: "infra", code: "unreadable", message: "", at: new Date(0).toISOString() }],
  ])("reads a row it did not write (%s) without throwing", (_, stored, expected) => {
    expect(parseJobLastError(stored)).toEqual(expected);
  });
});
