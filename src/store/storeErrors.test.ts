import SQLite from "better-sqlite3";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { isGrantkeeperError } from "../domain/errors.js";
import { isStoreUnreachable, STORE_RETRY_AFTER_MS, storeUnavailable } from "./storeErrors.js";

/** A server error as pg-protocol builds it. */
function serverError(code: string): pg.DatabaseError {
  const e = new pg.DatabaseError("server says no", 0, "error");
  e.code = code;
  return e;
}
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, syscall: "connect" });

describe("isStoreUnreachable", () => {
  it.each([
    ["57P01 admin_shutdown (pg_ctl stop -m fast)", serverError("57P01"), true, true],
    ["57P03 cannot_connect_now (starting up / shutting down)", serverError("57P03"), true, true],
    ["08006 connection_failure", serverError("08006"), true, true],
    ["53100 disk_full", serverError("53100"), true, true],
    ["53300 too_many_connections", serverError("53300"), true, true],
    ["ECONNREFUSED (server down)", socketError("ECONNREFUSED"), true, true],
    ["pg's own 'Connection terminated unexpectedly' (no code)", new Error("Connection terminated unexpectedly"), true, true],
    ["SQLITE_FULL", new SQLite.SqliteError("database or disk is full", "SQLITE_FULL"), false, true],
    ["SQLITE_IOERR_WRITE", new SQLite.SqliteError("disk I/O error", "SQLITE_IOERR_WRITE"), false, true],
    ["SQLITE_BUSY past busy_timeout", new SQLite.SqliteError("database is locked", "SQLITE_BUSY"), false, true],
    // Not outages: the statement or the data is wrong.
    ["23505 unique_violation", serverError("23505"), true, false],
    ["42P01 undefined_table", serverError("42P01"), true, false],
    ["08P01 protocol_violation (a bug, not an outage)", serverError("08P01"), true, false],
    ["SQLITE_CONSTRAINT_UNIQUE", new SQLite.SqliteError("UNIQUE constraint failed", "SQLITE_CONSTRAINT_UNIQUE"), false, false],
    ["a plain Error from SQLite code paths", new Error("boom"), false, false],
    ["a TypeError in pg (bad parameter)", new TypeError("bad"), true, false],
  ])("%s", (_name, e, fromPg, expected) => {
    expect(isStoreUnreachable(e, fromPg)).toBe(expected);
  });

  it("storeUnavailable is a store_unavailable GrantkeeperError of kind unavailable with a Retry-After, naming only the code", () => {
    const e = storeUnavailable(serverError("57P01"));
    expect(isGrantkeeperError(e, "store_unavailable")).toBe(true);
    expect(e.kind).toBe("unavailable");
    expect(e.retryAfterMs).toBe(STORE_RETRY_AFTER_MS);
    expect(e.message).toBe("the store is unavailable (57P01); retry later");
    expect(Object.keys(e)).not.toContain("cause");
  });
});
