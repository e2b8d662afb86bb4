/**
 * A private PostgreSQL 15 cluster a test can stop and start (a failover
 * drill) without touching the shared server on 5432: `initdb` into a temp
 * dir, `pg_ctl` on a free 127.0.0.1 port, trust auth. PostgreSQL refuses to
 * run as root, so under root the binaries run as the `postgres` user.
 */
import { execFile } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./gk.js";

const run = promisify(execFile);
const BIN = "/usr/lib/postgresql/15/bin";

/** What {@link startPrivatePostgres} returns. */
export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  /** `pg_ctl stop -m fast`: every session is terminated (SQLSTATE 57P01), new connections are refused. */
  stop(): Promise<void>;
  /** `pg_ctl start` on the same port and data. */
  start(): Promise<void>;
  /** Stop (immediate) and delete the data directory. */
  destroy(): Promise<void>;
}

/** Run a PostgreSQL binary, as `postgres` when we are root. */
async function pgBin(name: string, args: string[]): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", join(BIN, name), ...args]] : [join(BIN, name), args];
  await run(cmd, argv, { timeout: 60_000 });
}

/** True when the PostgreSQL 15 binaries are installed. */
export async function privatePostgresAvailable(): Promise<boolean> {
  try {
    await run(join(BIN, "pg_ctl"), ["--version"]);
    return true;
  } catch {
    return false;
  }
}

/** initdb + start a cluster on a free loopback port. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), "gk-pg-"));
  const data = join(dir, "data");
  if (process.getuid?.() === 0) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  chmodSync(dir, 0o700);
  const port = await freePort();
  await pgBin("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`;
  const start = () => pgBin("pg_ctl", ["-D", data, "-o", opts, "-l", join(dir, "log"), "-w", "start"]);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pgBin("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]),
    start,
    destroy: async () => {
      await pgBin("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
