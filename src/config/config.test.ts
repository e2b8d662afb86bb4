import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

const dir = mkdtempSync(join(tmpdir(), "grantkeeper-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Write a config file into the temp dir and return its path. */
function configFile(text: string, ext = "yaml"): string {
  const path = join(dir, `config-${n++}.${ext}`);
  writeFileSync(path, text);
  return path;
}

function expectConfigError(env: NodeJS.ProcessEnv, mentions: RegExp): void {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  expect((caught as ConfigError).code).toBe("invalid_config");
  expect((caught as ConfigError).message).toMatch(mentions);
}

describe("loadConfig", () => {
  it("without a file or environment gives the contract defaults", () => {
    const cfg = loadConfig({});
    expect(cfg.configPath).toBeUndefined(); // no ./grantkeeper.config.yaml in the package root
    expect(cfg).toMatchObject({
      port: 7420,
      host: "127.0.0.1",
      databaseUrl: "sqlite:./data/grantkeeper.db",
      publicUrl: "http://127.0.0.1:7420",
      apiKey: undefined,
      encryptionKey: undefined,
    });
    expect(cfg.refresh).toMatchObject({
      marginMs: 300_000,
      recoveryIntervalMs: 1_800_000,
      minIntervalMs: 5_000,
      timeoutMs: 30_000,
      maxRetries: 5,
      assumedLifetimeMs: 3_600_000,
      keepAliveMs: 86_400_000,
    });
  });

  it("reads the retention windows (seconds in the file) with the contract's defaults", () => {
    expect(loadConfig({}).retention).toEqual({ succeededJobsMs: 604_800_000, failedJobsMs: 2_592_000_000, alertsMs: 7_776_000_000, eventsMs: 7_776_000_000, sweepIntervalMs: 300_000 });
    const cfg = loadConfig({ GRANTKEEPER_CONFIG: configFile("retention:\n  succeededJobsSeconds: 3600\n  sweepIntervalSeconds: 0.5\n") });
    expect(cfg.retention).toMatchObject({ succeededJobsMs: 3_600_000, failedJobsMs: 2_592_000_000, sweepIntervalMs: 500 });
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("retention:\n  eventsSeconds: -1\n") }, /retention\.eventsSeconds/);
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("retention:\n  sweepIntervalSeconds: 0\n") }, /retention\.sweepIntervalSeconds/);
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("retention:\n  jobsSeconds: 5\n") }, /retention/);
  });

  it("reads the proxy keys (seconds in the file) with their defaults", () => {
    expect(loadConfig({}).proxy).toEqual({ timeoutMs: 30_000, authFailuresToDegrade: 3, connectionsPerOrigin: 64 });
    const cfg = loadConfig({ GRANTKEEPER_CONFIG: configFile("proxy:\n  timeoutSeconds: 2.5\n  authFailuresToDegrade: 5\n") });
    expect(cfg.proxy).toEqual({ timeoutMs: 2_500, authFailuresToDegrade: 5, connectionsPerOrigin: 64 });
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("proxy:\n  timeoutSeconds: 0\n") }, /proxy\.timeoutSeconds/);
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("proxy:\n  authFailuresToDegrade: 0\n") }, /proxy\.authFailuresToDegrade/);
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("proxy:\n  timeout: 5\n") }, /proxy/);
  });

  it("reads seconds from a YAML file and converts them to milliseconds", () => {
    const path = configFile("refresh:\n  marginSeconds: 60\n");
    const cfg = loadConfig({ GRANTKEEPER_CONFIG: path });
    expect(cfg.configPath).toBe(path);
    expect(cfg.refresh.marginMs).toBe(60_000);
    expect(cfg.refresh.recoveryIntervalMs).toBe(1_800_000); // untouched keys keep their defaults
  });

  it("server limits: defaults, seconds converted, headers no longer than the request", () => {
    expect(loadConfig({}).server).toEqual({ requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxConnections: 1024, lingerMs: 5_000, lingerMaxBytes: 67_108_864 });
    const path = configFile("server:\n  requestTimeoutSeconds: 2.5\n  headersTimeoutSeconds: 2.5\n  maxConnections: 16\n  lingerSeconds: 0.5\n");
    expect(loadConfig({ GRANTKEEPER_CONFIG: path }).server).toMatchObject({ requestTimeoutMs: 2_500, headersTimeoutMs: 2_500, maxConnections: 16, lingerMs: 500 });
    expect(loadConfig({ GRANTKEEPER_CONFIG: configFile("server:\n  requestTimeoutSeconds: 5\n") }).server).toMatchObject({ requestTimeoutMs: 5_000, headersTimeoutMs: 5_000 });
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("server:\n  requestTimeoutSeconds: 5\n  headersTimeoutSeconds: 6\n") }, /server\.headersTimeoutSeconds: headersTimeoutSeconds must not exceed requestTimeoutSeconds/);
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("server:\n  requestTimeoutSeconds: 0\n") }, /server\.requestTimeoutSeconds/);
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("server:\n  maxConnections: 0\n") }, /server\.maxConnections/);
  });

  it("reads a JSON file", () => {
    const path = configFile(JSON.stringify({ port: 8123, refresh: { timeoutSeconds: 2.5 } }), "json");
    const cfg = loadConfig({ GRANTKEEPER_CONFIG: path });
    expect(cfg.port).toBe(8123);
    expect(cfg.refresh.timeoutMs).toBe(2_500);
  });

  it("refuses an unknown key and names it (a typo must not fall back to the default)", () => {
    const path = configFile("refresh:\n  marginSecs: 1\n");
    expectConfigError({ GRANTKEEPER_CONFIG: path }, /marginSecs/);
  });

  it("refuses an unknown top-level key and names it", () => {
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("prot: 8080\n") }, /prot/);
  });

  it("refuses a value of the wrong type and names its key", () => {
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("refresh:\n  maxRetries: 2.5\n") }, /refresh\.maxRetries/);
  });

  it("lets the environment override the file", () => {
    const path = configFile("port: 8000\nhost: 0.0.0.0\ndatabaseUrl: sqlite:/tmp/file.db\n");
    const cfg = loadConfig({
      GRANTKEEPER_CONFIG: path,
      GRANTKEEPER_PORT: "9100",
      GRANTKEEPER_HOST: "::1",
      GRANTKEEPER_DATABASE_URL: "postgres://db/gk",
    });
    expect(cfg).toMatchObject({ port: 9100, host: "::1", databaseUrl: "postgres://db/gk", publicUrl: "http://127.0.0.1:9100" });
  });

  it("uses the file's port when the environment has none", () => {
    expect(loadConfig({ GRANTKEEPER_CONFIG: configFile("port: 8000\n") }).port).toBe(8000);
  });

  it("accepts the port range edges", () => {
    expect(loadConfig({ GRANTKEEPER_PORT: "65535" }).port).toBe(65535);
    expect(loadConfig({ GRANTKEEPER_PORT: "1" }).port).toBe(1);
  });

  it.each(["abc", "65536", "-1", "80.5"])("refuses GRANTKEEPER_PORT=%s with a ConfigError naming the variable", (value) => {
    expectConfigError({ GRANTKEEPER_PORT: value }, /GRANTKEEPER_PORT/);
  });

  it("does not turn an empty GRANTKEEPER_PORT into port 0 (a random port and a publicUrl ending in :0)", () => {
    // Either an error or the default is acceptable; silently binding an ephemeral port is not.
    let port: number | undefined;
    try {
      port = loadConfig({ GRANTKEEPER_PORT: "" }).port;
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return;
    }
    expect(port).toBe(7420);
  });

  it("refuses malformed YAML with a ConfigError naming the file", () => {
    const path = configFile("refresh: {marginSeconds: 60\n");
    expectConfigError({ GRANTKEEPER_CONFIG: path }, new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*not valid YAML`));
  });

  it("refuses a config file that does not exist", () => {
    expectConfigError({ GRANTKEEPER_CONFIG: join(dir, "missing.yaml") }, /cannot read config file/);
  });

  it("refuses a GRANTKEEPER_PUBLIC_URL that is not an absolute URL", () => {
    expectConfigError({ GRANTKEEPER_PUBLIC_URL: "not a url" }, /GRANTKEEPER_PUBLIC_URL/);
  });

  it("treats empty secrets in the environment as unset", () => {
    const cfg = loadConfig({ GRANTKEEPER_API_KEY: "", GRANTKEEPER_ENCRYPTION_KEY: "" });
    expect(cfg.apiKey).toBeUndefined();
    expect(cfg.encryptionKey).toBeUndefined();
  });
});

describe("alerts.reconnectUrl", () => {
  it("is null by default and takes a host-app URL template", () => {
    expect(loadConfig({}).file.alerts.reconnectUrl).toBeNull();
    const path = configFile("alerts:\n  reconnectUrl: https://app.example.com/reconnect?provider={providerId}&entity={entityId}\n");
    expect(loadConfig({ GRANTKEEPER_CONFIG: path }).file.alerts.reconnectUrl).toBe("https://app.example.com/reconnect?provider={providerId}&entity={entityId}");
  });

  it("refuses an unknown placeholder, a relative URL or a connect link, naming the key", () => {
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("alerts:\n  reconnectUrl: https://app.example.com/r?u={userId}\n") }, /alerts\.reconnectUrl: unknown placeholder \{userId\}/);
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("alerts:\n  reconnectUrl: /reconnect\n") }, /alerts\.reconnectUrl: must be an absolute URL/);
    expectConfigError({ GRANTKEEPER_CONFIG: configFile("alerts:\n  reconnectUrl: https://gk.example.com/v1/connect/x?connectToken=gkcs_a\n") }, /alerts\.reconnectUrl: must be a page of the host app/);
  });
});
