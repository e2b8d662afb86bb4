import { describe, expect, it } from "vitest";
import { isInvalidInputError } from "../domain/errors.js";
import { parsePreflightProviders } from "./preflightArgs.js";

describe("parsePreflightProviders", () => {
  it.each([
    ["plain ids", "github,slack", ["github", "slack"]],
    ["spaces around", " github , slack ", ["github", "slack"]],
    ["scopes after the first colon, joined by +", "github:repo+read:org,slack", [{ providerId: "github", scopes: ["repo", "read:org"] }, "slack"]],
    ["a URL scope keeps its colons", "google:https://www.googleapis.com/auth/drive.readonly", [{ providerId: "google", scopes: ["https://www.googleapis.com/auth/drive.readonly"] }]],
  ])("%s", (_label, text, expected) => {
    expect(parsePreflightProviders(text)).toEqual(expected);
  });

  it.each([
    ["an empty list", " , "],
    ["an empty provider id", ":repo"],
    ["an empty scope", "github:repo++read:org"],
    ["a colon without scopes", "github:"],
  ])("refuses %s with validation_failed", (_label, text) => {
    let caught: unknown;
    try {
      parsePreflightProviders(text);
    } catch (e) {
      caught = e;
    }
    expect(isInvalidInputError(caught)).toBe(true);
    expect(caught).toMatchObject({ code: "validation_failed" });
  });
});
