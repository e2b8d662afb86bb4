/**
 * `grantkeeper prune` as an operator runs it: a spawned process against the
 * store, one sweep with the configured windows, what it deleted per table on
 * stdout (lines, or JSON), exit 0.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/database.js";
import { migrateToLatest } from "../../src/store/migrations.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { runCli } from "../support/cli.js";

const DAY = 86_400_000;

describe("grantkeeper prune", () => {
  let db: TestDatabase;
  let env: Record<string, string>;

  const run = (args: string[]) => runCli(args, { env, cwd: db.dir });

  beforeAll(async () => {
    db = await testDatabase();
    // Short windows from the config file: 1 day for succeeded jobs, 2 for failed ones, 3 for alerts and events.
    const config = join(db.dir, "grantkeeper.config.yaml");
    writeFileSync(config, "retention:\n  succeededJobsSeconds: 86400\n  failedJobsSeconds: 172800\n  alertsSeconds: 259200\n  eventsSeconds: 259200\n");
    // No API or encryption key: prune decrypts nothing and needs neither.
    env = { GRANTKEEPER_DATABASE_URL: db.url, GRANTKEEPER_CONFIG: config };
    if (db.backend === "sqlite") {
      // A file made before auto_vacuum=INCREMENTAL was the default: it has tables, so opening it cannot switch modes.
      const legacy = new SQLite(db.url.slice("sqlite:".length));
      legacy.exec("create table legacy_marker (x integer)");
      legacy.close();
    }
    const store = await openStore(db.url);
    try {
      await migrateToLatest(store);
      const now = Date.now();
      await sql`insert into integrations (id, name, entity_id, status, delivery, delivery_target, webhook_signing, created_at, updated_at) values ('int_p', 'p', 'e', 'ENABLED', null, 'handler:p', 'none', ${now}, ${now})`.execute(store.db);
      const jobs: Array<[string, string, number | null]> = [
        ["old_ok_1", "succeeded", now - 2 * DAY],
        ["old_ok_2", "succeeded", now - 1.5 * DAY],
        ["new_ok", "succeeded", now - 0.5 * DAY],
        ["old_failed", "failed", now - 3 * DAY],
        ["young_failed", "failed", now - 1.5 * DAY],
        ["old_parked", "parked", null],
        ["old_queued", "queued", null],
      ];
      for (const [id, state, finishedAt] of jobs) {
        const t = finishedAt ?? now - 30 * DAY;
        await store.db.insertInto("jobs").values({ id, integration_id: "int_p", state: state as "succeeded", attempts: 1, idempotency_key: null, run_at: t, lease_owner: null, lease_until: null, last_error: null, probe: 0, received_at: t, created_at: t, updated_at: t, finished_at: finishedAt }).execute();
        await store.db.insertInto("job_payloads").values({ job_id: id, headers: "{}", body: "e30=" }).execute();
      }
      await store.db.insertInto("alerts").values({ kind: "k", subject_type: "connection", subject_id: "c", severity: "info", message: "old", user_message: null, detail: null, at: now - 4 * DAY }).execute();
      await store.db.insertInto("connection_events").values({ connection_id: "c", at: now - 2 * DAY, type: "t", class: null, code: null, message: "young", detail: null }).execute();
    } finally {
      await store.close();
    }
  });

  afterAll(async () => {
    await db?.cleanup();
  });

  it("deletes the finished rows past the configured windows and prints the count per table; exit 0", async () => {
    const r = await run(["prune"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.slice(0, 6)).toEqual(["jobs: 3 deleted", "job_payloads: 3 deleted", "alerts: 1 deleted", "connection_events: 0 deleted", "oauth_states: 0 deleted", "connect_sessions: 0 deleted"]);
    const store = await openStore(db.url);
    try {
      expect((await store.db.selectFrom("jobs").select("id").orderBy("id").execute()).map((j) => j.id)).toEqual(["new_ok", "old_parked", "old_queued", "young_failed"]);
    } finally {
      await store.close();
    }
  });

  it("--json prints one object; a second run finds nothing", async () => {
    const r = await run(["prune", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ skipped: false, deleted: { jobs: 0, job_payloads: 0, alerts: 0, connection_events: 0, oauth_states: 0, connect_sessions: 0 } });
  });

  it("--vacuum switches an older SQLite file to incremental auto-vacuum (PostgreSQL: nothing to do)", async () => {
    const mode = async () => {
      const store = await openStore(db.url);
      try {
        return (await sql<{ auto_vacuum: number }>`pragma auto_vacuum`.execute(store.db)).rows[0]?.auto_vacuum;
      } finally {
        await store.close();
      }
    };
    if (db.backend === "sqlite") expect(await mode()).toBe(0);
    const r = await run(["prune", "--vacuum"]);
    expect(r.code).toBe(0);
    if (db.backend === "sqlite") {
      expect(r.stdout).toContain("vacuumed: the file now gives freed space back");
      expect(await mode()).toBe(2);
    } else expect(r.stdout).not.toContain("vacuum");
  });

  it("creates no store: a missing SQLite file is exit 1, 'no store here', and stays missing", async () => {
    const missing = join(db.dir, "nothing-here", "grantkeeper.db");
    const saved = env.GRANTKEEPER_DATABASE_URL!;
    env.GRANTKEEPER_DATABASE_URL = `sqlite:${missing}`;
    try {
      const r = await run(["prune"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("no store here");
      expect(existsSync(missing)).toBe(false);
    } finally {
      env.GRANTKEEPER_DATABASE_URL = saved;
    }
  });

  it("a bad retention window stops with exit 2 and names the key", async () => {
    const bad = join(db.dir, "bad.yaml");
    writeFileSync(bad, "retention:\n  alertsSeconds: -1\n");
    const saved = env.GRANTKEEPER_CONFIG!;
    env.GRANTKEEPER_CONFIG = bad;
    try {
      const r = await run(["prune"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("retention.alertsSeconds");
    } finally {
      env.GRANTKEEPER_CONFIG = saved;
    }
  });

  // PostgreSQL's sweep deletes at most 1,000 jobs a second: 3,000 take about 3 s, long enough to show progress.
  it.runIf(process.env.GK_TEST_BACKEND === "postgres")("a long sweep shows its progress on stderr, and stdout still has only the counts", async () => {
    const store = await openStore(db.url);
    try {
      const t = Date.now() - 5 * DAY;
      for (let k = 0; k < 3_000; k += 500) {
        const ids = Array.from({ length: 500 }, (_, i) => `bulk_${k + i}`);
        await store.db.insertInto("jobs").values(ids.map((id) => ({ id, integration_id: "int_p", state: "succeeded" as const, attempts: 1, idempotency_key: null, run_at: t, lease_owner: null, lease_until: null, last_error: null, probe: 0, received_at: t, created_at: t, updated_at: t, finished_at: t }))).execute();
        await store.db.insertInto("job_payloads").values(ids.map((job_id) => ({ job_id, headers: "{}", body: "e30=" }))).execute();
      }
    } finally {
      await store.close();
    }
    const r = await run(["prune"]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe("jobs: 3000 deleted");
    expect(r.stderr).toMatch(/^prune: \d+ job\(s\) and \d+ other row\(s\) deleted so far$/m);
    expect(r.stderr.trim().split("\n").at(-1)).toBe("prune: 3000 job(s) and 0 other row(s) deleted");
  });
});
