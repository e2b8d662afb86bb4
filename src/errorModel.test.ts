import { describe, expect, it } from "vitest";
import { ConfigError } from "./config/config.js";
import { TokenEndpointError, isTokenEndpointError } from "./oauth/tokenEndpoint.js";
import { DatabaseUrlError } from "./store/database.js";
import { DecryptionError, EncryptionKeyError } from "./store/encryption.js";
import { isGrantkeeperError, isMisconfiguredError, isUpstreamFailedError, isUpstreamTimeoutError } from "./domain/errors.js";

// The core's other error classes are GrantkeeperErrors too: one model, one mapping to HTTP, one guard family.
describe("the core's error classes fit the one error model", () => {
  it.each([
    ["ConfigError", new ConfigError("refresh.marginSeconds: Expected number"), "invalid_config"],
    ["DatabaseUrlError", new DatabaseUrlError("unsupported database URL scheme"), "invalid_database_url"],
    ["EncryptionKeyError", new EncryptionKeyError("encryption key must be 32 bytes"), "invalid_encryption_key"],
    ["DecryptionError", new DecryptionError("ciphertext failed authentication"), "decryption_failed"],
  ] as const)("%s is a misconfigured GrantkeeperError with code %s", (name, e, code) => {
    expect(e.name).toBe(name);
    expect(isGrantkeeperError(e, code)).toBe(true);
    expect(isMisconfiguredError(e)).toBe(true);
  });

  it("TokenEndpointError is upstream_failed, or upstream_timeout when the call timed out, and keeps its observation", () => {
    const http = new TokenEndpointError({ kind: "http", status: 400, error: "invalid_grant", json: true }, "token endpoint answered 400 invalid_grant");
    expect(isTokenEndpointError(http)).toBe(true);
    expect(isUpstreamFailedError(http)).toBe(true);
    expect(http).toMatchObject({ name: "TokenEndpointError", code: "token_endpoint_error", observation: { status: 400, error: "invalid_grant" } });
    const slow = new TokenEndpointError({ kind: "timeout" }, "token endpoint did not answer in time");
    expect(isUpstreamTimeoutError(slow)).toBe(true);
    expect(isTokenEndpointError(new Error("token endpoint"))).toBe(false);
  });
});
