import { describe, expect, it } from "vitest";
import { scopeSchema } from "./connectSessions.js";

describe("scopes (RFC 6749 §3.3 scope-token)", () => {
  it.each(["openid", "https://www.googleapis.com/auth/drive.readonly", "repo:status", "read_api"])("accepts %s", (s) => expect(scopeSchema.safeParse(s).success).toBe(true));
  it.each(["", "two words", 'quo"te', "back\\slash", "tab\there", "é"])("refuses %j", (s) => expect(scopeSchema.safeParse(s).success).toBe(false));
});
