/**
 * Retention sweeps (issue 13) on a real store, with a manual clock: exactly
 * the finished rows past their windows go, each table, both sides of each
 * window; queued, running, faulted and parked jobs stay whatever their age;
 * parked jobs replay after a sweep with their payloads; a started instance
 * sweeps on its interval; on PostgreSQL one instance sweeps at a time; on
 * SQLite the freed pages go back to the file system.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { testDatabase, testKey, type TestDatabase } from "../../test/support/backend.js";
import { ManualClock } from "../domain/clock.js";
import { CONNECT_SESSION_GRACE_MS, defaultRetentionPolicy } from "../domain/retention.js";
import { JOB_STATES, type JobState } from "../domain/states.js";
import { createGrantkeeper, type Grantkeeper } from "../grantkeeper.js";
import { internalsOf } from "../internals.js";
import { openStore } from "../store/database.js";
import { RetentionRepository } from "../store/retention.js";
import { createLogger, silentLogger } from "../telemetry/logger.js";
import { RetentionSweeper } from "./retention.js";

const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const P = defaultRetentionPolicy;

describe("retention sweeps", () => {
  let db: TestDatabase | undefined;
  const open: Grantkeeper[] = [];
  afterEach(async () => {
    for (const gk of open.splice(0)) await gk.close();
    await db?.cleanup();
    db = undefined;
  });

  /** A grantkeeper on a fresh store with a manual clock at NOW; `sweeper` is its own, or one with a tiny batch size. */
  async function start(opts: { batchSize?: number } = {}): Promise<{ gk: Grantkeeper; clock: ManualClock; sweeper: RetentionSweeper; kdb: ReturnType<typeof internalsOf>["store"]["db"] }> {
    db ??= await testDatabase();
    const clock = new ManualClock(NOW);
    const gk = await createGrantkeeper({ databaseUrl: db.url, encryptionKey: testKey(), clock });
    open.push(gk);
    const { store, retention } = internalsOf(gk);
    // A tiny batch makes every table take several batches: the loop must go on until a short one.
    const sweeper = opts.batchSize ? new RetentionSweeper({ repo: new RetentionRepository(store), clock, logger: silentLogger(), policy: P, metrics: gk.telemetry.metrics, batchSize: opts.batchSize }) : retention;
    return { gk, clock, sweeper, kdb: store.db };
  }

  let seq = 0;
  /** One job (and its payload) in `state`, finished at `finishedAt` (null for unfinished states). */
  async function job(kdb: Awaited<ReturnType<typeof start>>["kdb"], integrationId: string, state: JobState, finishedAt: number | null, receivedAt = finishedAt ?? NOW - 400 * DAY): Promise<string> {
    const id = `job_${state}_${seq++}`;
    await kdb.insertInto("jobs").values({ id, integration_id: integrationId, state, attempts: 1, idempotency_key: null, run_at: receivedAt, lease_owner: state === "running" ? "someone" : null, lease_until: state === "running" ? NOW + 60_000 : null, last_error: null, probe: 0, received_at: receivedAt, created_at: receivedAt, updated_at: finishedAt ?? receivedAt, finished_at: finishedAt }).execute();
    await kdb.insertInto("job_payloads").values({ job_id: id, headers: "{}", body: Buffer.from(`{"id":"${id}"}`).toString("base64") }).execute();
    return id;
  }

  it("deletes exactly the finished rows past their windows, in every table, and counts them", async () => {
    const { gk, kdb, sweeper } = await start({ batchSize: 2 });
    await sql`insert into integrations (id, name, entity_id, status, delivery, delivery_target, webhook_signing, created_at, updated_at) values ('int_r', 'r', 'e', 'ENABLED', null, 'handler:r', 'none', ${NOW}, ${NOW})`.execute(kdb);
    const windowOf: Record<string, number> = { succeeded: P.succeededJobsMs, failed: P.failedJobsMs, dead: P.failedJobsMs, discarded: P.failedJobsMs };
    const gone: string[] = [];
    const kept: string[] = [];
    for (const state of JOB_STATES) {
      const window = windowOf[state];
      if (window === undefined) {
        // Never deleted, however old: a job that may still run or waits for a replay is not history.
        kept.push(await job(kdb, "int_r", state, null, NOW - 400 * DAY));
        continue;
      }
      // Three past the window (more than one batch), one exactly at its edge, one recent.
      for (let i = 0; i < 3; i++) gone.push(await job(kdb, "int_r", state, NOW - window - 1 - i));
      kept.push(await job(kdb, "int_r", state, NOW - window));
      kept.push(await job(kdb, "int_r", state, NOW - 1));
    }
    for (const [at, label] of [[NOW - P.alertsMs - 1, "old"], [NOW - P.alertsMs - 2, "old"], [NOW - P.alertsMs - 3, "old"], [NOW - P.alertsMs, "edge"], [NOW, "new"]] as const) {
      await kdb.insertInto("alerts").values({ kind: "k", subject_type: "connection", subject_id: label, severity: "info", message: label, user_message: null, detail: null, at }).execute();
    }
    for (const [at, label] of [[NOW - P.eventsMs - 1, "old"], [NOW - P.eventsMs - 5, "old"], [NOW - P.eventsMs, "edge"], [NOW, "new"]] as const) {
      await kdb.insertInto("connection_events").values({ connection_id: "c", at, type: "t", class: null, code: null, message: label, detail: null }).execute();
    }
    const state = (hash: string, expiresAt: number, usedAt: number | null) =>
      kdb.insertInto("oauth_states").values({ state_hash: hash, provider_id: "p", entity_id: "e", code_verifier_ct: "x", return_to: null, created_at: expiresAt - 600_000, expires_at: expiresAt, used_at: usedAt, session_id: null, binding_hash: null }).execute();
    await state("expired_unused", NOW - 1, null);
    await state("expired_now", NOW, null);
    await state("expired_used", NOW - DAY, NOW - DAY - 1000);
    await state("live_used", NOW + 1, NOW - 1000);
    await state("live", NOW + 600_000, null);
    const session = (id: string, expiresAt: number, completedAt: number | null) =>
      kdb.insertInto("connect_sessions").values({ id, token_hash: `h_${id}`, provider_id: "p", entity_id: "e", scopes: null, return_to: null, connection_config: null, created_at: expiresAt - 1_800_000, expires_at: expiresAt, completed_at: completedAt, connection_id: null }).execute();
    await session("cs_old", NOW - CONNECT_SESSION_GRACE_MS - 1, null);
    await session("cs_old_completed", NOW - CONNECT_SESSION_GRACE_MS - 2, NOW - 2 * DAY);
    await session("cs_edge", NOW - CONNECT_SESSION_GRACE_MS, null);
    await session("cs_expired_recently", NOW - 1, null);
    await session("cs_live", NOW + 1_800_000, null);

    // Before the sweep, the gauge shows the oldest finished row of each table.
    const before = await gk.telemetry.metrics.render();
    expect(gauge(before, "jobs")).toBeCloseTo((P.failedJobsMs + 3) / 1000, 3);
    expect(gauge(before, "alerts")).toBeCloseTo((P.alertsMs + 3) / 1000, 3);
    expect(gauge(before, "connect_sessions")).toBeCloseTo((CONNECT_SESSION_GRACE_MS + 2) / 1000, 3);

    const report = await sweeper.sweep();
    expect(report).toMatchObject({ skipped: false, interrupted: false, deleted: { jobs: 12, job_payloads: 12, alerts: 3, connection_events: 2, oauth_states: 3, connect_sessions: 2 } });

    const jobIds = (await kdb.selectFrom("jobs").select("id").execute()).map((r) => r.id);
    expect(jobIds.sort()).toEqual([...kept].sort());
    const payloadIds = (await kdb.selectFrom("job_payloads").select("job_id").execute()).map((r) => r.job_id);
    expect(payloadIds.sort()).toEqual([...kept].sort());
    expect((await kdb.selectFrom("alerts").select("message").orderBy("at").execute()).map((r) => r.message)).toEqual(["edge", "new"]);
    expect((await kdb.selectFrom("connection_events").select("message").orderBy("at").execute()).map((r) => r.message)).toEqual(["edge", "new"]);
    expect((await kdb.selectFrom("oauth_states").select("state_hash").orderBy("state_hash").execute()).map((r) => r.state_hash)).toEqual(["live", "live_used"]);
    expect((await kdb.selectFrom("connect_sessions").select("id").orderBy("id").execute()).map((r) => r.id)).toEqual(["cs_edge", "cs_expired_recently", "cs_live"]);

    // The counter counts what went; the gauge now shows the rows at the edge.
    const after = await gk.telemetry.metrics.render();
    expect(after).toContain('grantkeeper_retention_deleted_rows_total{table="jobs"} 12');
    expect(after).toContain('grantkeeper_retention_deleted_rows_total{table="oauth_states"} 3');
    expect(gauge(after, "jobs")).toBeCloseTo(P.failedJobsMs / 1000, 3);

    // A second sweep finds nothing more.
    expect((await sweeper.sweep()).deleted).toEqual({ jobs: 0, job_payloads: 0, alerts: 0, connection_events: 0, oauth_states: 0, connect_sessions: 0 });
  });

  it("parked jobs survive any number of sweeps and replay afterwards with their payloads; then they age out", async () => {
    const { gk, clock, kdb } = await start();
    const seen: string[] = [];
    gk.handle("parking", async (j) => {
      seen.push(new TextDecoder().decode(j.body));
    });
    const { integration } = await gk.integrations.create({ name: "parking", entityId: "e", connectionIds: [], webhook: { signing: "none" } });
    await gk.integrations.disable(integration.id);
    for (const n of [1, 2, 3]) expect((await gk.ingress.accept(integration.id, new TextEncoder().encode(`{"n":${n}}`), new Headers())).disposition).toBe("parked");
    // A year later, after sweeps: every parked job and its payload is still there.
    for (let i = 0; i < 3; i++) {
      clock.advance(120 * DAY);
      await internalsOf(gk).retention.sweep();
    }
    expect(Number((await kdb.selectFrom("jobs").select(({ fn }) => fn.countAll<number>().as("n")).where("state", "=", "parked").executeTakeFirstOrThrow()).n)).toBe(3);
    await gk.integrations.enable(integration.id);
    await gk.worker.runDue();
    expect(seen).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
    expect(Number((await kdb.selectFrom("jobs").select(({ fn }) => fn.countAll<number>().as("n")).where("state", "=", "succeeded").executeTakeFirstOrThrow()).n)).toBe(3);
    // Succeeded now: kept for the succeeded window, gone one millisecond after it.
    clock.advance(P.succeededJobsMs);
    expect((await internalsOf(gk).retention.sweep()).deleted.jobs).toBe(0);
    clock.advance(1);
    expect((await internalsOf(gk).retention.sweep()).deleted).toMatchObject({ jobs: 3, job_payloads: 3 });
  });

  it("holds maxRowsPerSecond: 600 jobs at 2,000 rows/s take at least a quarter of a second (PostgreSQL's default caps its WAL)", async () => {
    const { kdb, clock } = await start();
    await sql`insert into integrations (id, name, entity_id, status, delivery, delivery_target, webhook_signing, created_at, updated_at) values ('int_rate', 'r', 'e', 'ENABLED', null, 'handler:r', 'none', ${NOW}, ${NOW})`.execute(kdb);
    for (let i = 0; i < 600; i++) await job(kdb, "int_rate", "succeeded", NOW - P.succeededJobsMs - 1 - i);
    const sweeper = new RetentionSweeper({ repo: new RetentionRepository(internalsOf(open[0]!).store), clock, logger: silentLogger(), policy: P, batchSize: 100, maxRowsPerSecond: 2_000 });
    const report = await sweeper.sweep();
    expect(report.deleted.jobs).toBe(600);
    // Every full batch is followed by a pause long enough for its rows at the cap (the last, short one is not):
    // at least 500 rows / 2,000 per second. A lower bound only: a slow machine takes longer, never shorter.
    expect(report.durationMs).toBeGreaterThanOrEqual(250);
    expect(() => new RetentionSweeper({ repo: new RetentionRepository(internalsOf(open[0]!).store), clock, logger: silentLogger(), policy: P, maxRowsPerSecond: 0 })).toThrow(RangeError);
  });

  it("a long sweep logs how far it got as it goes (info, counts only)", async () => {
    const { kdb, clock } = await start();
    await sql`insert into integrations (id, name, entity_id, status, delivery, delivery_target, webhook_signing, created_at, updated_at) values ('int_log', 'r', 'e', 'ENABLED', null, 'handler:r', 'none', ${NOW}, ${NOW})`.execute(kdb);
    for (let i = 0; i < 30; i++) await job(kdb, "int_log", "succeeded", NOW - P.succeededJobsMs - 1 - i);
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({ level: "info", destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
    // Every batch past the interval logs: 0 ms makes each one do so.
    const sweeper = new RetentionSweeper({ repo: new RetentionRepository(internalsOf(open[0]!).store), clock, logger, policy: P, batchSize: 10, maxRowsPerSecond: 100_000, progressLogEveryMs: 0 });
    expect((await sweeper.sweep()).deleted.jobs).toBe(30);
    const progress = lines.filter((l) => l.msg === "retention sweep in progress").map((l) => (l.deleted as { jobs: number }).jobs);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)).toBe(30);
  });

  it("a started instance sweeps every sweepIntervalSeconds", async () => {
    const { gk, clock, kdb } = await start();
    await kdb.insertInto("alerts").values({ kind: "k", subject_type: "connection", subject_id: "c", severity: "info", message: "old", user_message: null, detail: null, at: NOW - P.alertsMs - 1 }).execute();
    const { retention } = internalsOf(gk);
    await gk.start();
    clock.advance(P.sweepIntervalMs - 1);
    expect(retention.inProgress).toBe(false);
    clock.advance(1);
    expect(retention.inProgress).toBe(true);
    await retention.sweep(); // joins the sweep the timer started
    expect(await kdb.selectFrom("alerts").select("message").execute()).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve)); // the timer's callback re-arms after the sweep settles
    // The next one comes one interval later.
    clock.advance(P.sweepIntervalMs - 1);
    expect(retention.inProgress).toBe(false);
    clock.advance(1);
    expect(retention.inProgress).toBe(true);
    await gk.stop();
    expect(retention.inProgress).toBe(false);
    expect(await gk.telemetry.metrics.render()).toContain('grantkeeper_retention_deleted_rows_total{table="alerts"} 1');
  });

  it("PostgreSQL: while one instance sweeps, another skips; SQLite: freed pages go back to the file system", async () => {
    const { gk, kdb } = await start();
    await sql`insert into integrations (id, name, entity_id, status, delivery, delivery_target, webhook_signing, created_at, updated_at) values ('int_r', 'r', 'e', 'ENABLED', null, 'handler:r', 'none', ${NOW}, ${NOW})`.execute(kdb);
    const big = Buffer.alloc(4096, 7).toString("base64");
    for (let i = 0; i < 300; i++) {
      const id = await job(kdb, "int_r", "succeeded", NOW - P.succeededJobsMs - 1 - i);
      await kdb.updateTable("job_payloads").set({ body: big }).where("job_id", "=", id).execute();
    }
    if (db!.backend === "postgres") {
      const other = await openStore(db!.url);
      try {
        const otherSweeper = new RetentionSweeper({ repo: new RetentionRepository(other), clock: new ManualClock(NOW), logger: silentLogger(), policy: P });
        const held = await new RetentionRepository(internalsOf(gk).store).withSweepLock(() => otherSweeper.sweep());
        expect(held).toMatchObject({ acquired: true, value: { skipped: true, deleted: { jobs: 0 } } });
        expect(Number((await kdb.selectFrom("jobs").select(({ fn }) => fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n)).toBe(300);
        // Two at once: exactly one of them deletes, the other skips or finds nothing left.
        const [a, b] = await Promise.all([internalsOf(gk).retention.sweep(), otherSweeper.sweep()]);
        expect(a.deleted.jobs + b.deleted.jobs).toBe(300);
        // Once the lock is free the other instance sweeps again.
        expect((await otherSweeper.sweep()).skipped).toBe(false);
      } finally {
        await other.close();
      }
    } else {
      const repo = new RetentionRepository(internalsOf(gk).store);
      expect(await repo.autoVacuumMode()).toBe(2);
      const pages = async () => Number((await sql<{ page_count: number }>`pragma page_count`.execute(kdb)).rows[0]!.page_count);
      const before = await pages();
      const report = await internalsOf(gk).retention.sweep();
      expect(report.deleted.jobs).toBe(300);
      expect(report.reclaimedPages).toBeGreaterThan(200);
      expect(await repo.freePages()).toBe(0);
      expect(await pages()).toBeLessThan(before - 200);
    }
  });
});

/** The value of `grantkeeper_retention_oldest_finished_age_seconds{table=…}` in an exposition. */
function gauge(text: string, table: string): number {
  const m = new RegExp(`^grantkeeper_retention_oldest_finished_age_seconds\\{table="${table}"\\} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`no gauge for ${table} in:\n${text.split("\n").filter((l) => l.includes("retention")).join("\n")}`);
  return Number(m[1]);
}
