/**
 * The queue's SQL agrees with the pure lifecycle it implements
 * (domain/jobLifecycle.ts, domain/breaker.ts): over a grid of every job
 * state, probe flag, due time, integration status and breaker, the claim
 * takes exactly the jobs `mayClaim` allows, the probe query finds exactly the
 * breakers `probeDue` names, and a status sync moves each job where
 * `jobTransition` says. One source of truth for the rules; the SQL is tested
 * against it rather than restating it.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { migratedStore, type TestDatabase } from "../../test/support/backend.js";
import { probeDue, type BreakerState } from "../domain/breaker.js";
import { jobTransition, mayClaim, resolveJobPolicy } from "../domain/jobLifecycle.js";
import { INTEGRATION_STATUSES, JOB_STATES, type IntegrationStatus, type JobState } from "../domain/states.js";
import { BreakerRepository } from "./breakers.js";
import type { Store } from "./database.js";
import { JobRepository } from "./jobs.js";
import { jobRecordOf, newJobId, type NewJob } from "./jobRows.js";

const NOW = 1_700_000_000_000;
const BREAKERS: Record<string, BreakerState | undefined> = {
  none: undefined,
  clean: { state: "closed", consecutiveFailures: 0, cooldownUntil: null },
  cooling: { state: "closed", consecutiveFailures: 1, cooldownUntil: NOW + 1 },
  cooled: { state: "closed", consecutiveFailures: 1, cooldownUntil: NOW },
  openCooling: { state: "open", consecutiveFailures: 3, openedAt: NOW - 9, cooldownUntil: NOW + 1 },
  openDue: { state: "open", consecutiveFailures: 3, openedAt: NOW - 9, cooldownUntil: NOW },
  openLongDue: { state: "open", consecutiveFailures: 4, openedAt: NOW - 9, cooldownUntil: NOW - 60_000 },
};

describe("the queue's SQL implements the job lifecycle", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  interface Cell {
    id: string;
    integrationId: string;
    status: IntegrationStatus;
    breaker: BreakerState | undefined;
    state: JobState;
    probe: boolean;
    runAt: number;
  }

  /** One integration per (status, breaker); one job per (state, probe, due now or 1 ms later) on each. */
  async function grid(): Promise<{ jobs: JobRepository; breakers: BreakerRepository; cells: Cell[] }> {
    ({ tdb, store } = await migratedStore());
    const jobs = new JobRepository(store.db, store.dialect, store.workerDb);
    const breakers = new BreakerRepository(store.db);
    const cells: Cell[] = [];
    const rows: NewJob[] = [];
    let n = 0;
    for (const status of INTEGRATION_STATUSES) {
      for (const [name, breaker] of Object.entries(BREAKERS)) {
        const integrationId = `int_${status}${name}`;
        const target = `http://127.0.0.1:9/${status}/${name}`;
        await sql`insert into integrations (id, name, entity_id, status, delivery, delivery_target, created_at, updated_at) values (${integrationId}, ${integrationId}, 'e', ${status}, '{"url":"x","timeoutMs":1}', ${target}, ${NOW}, ${NOW})`.execute(store.db);
        if (breaker) await breakers.saveBreaker(target, breaker, NOW);
        for (const state of JOB_STATES) {
          for (const probe of [false, true]) {
            for (const runAt of [NOW, NOW + 1]) {
              const id = newJobId(NOW + n++);
              cells.push({ id, integrationId, status, breaker, state, probe, runAt });
              rows.push({ id, integration_id: integrationId, state, attempts: 1, idempotency_key: null, headers: "{}", body: "", run_at: runAt, lease_owner: null, lease_until: null, last_error: null, probe: probe ? 1 : 0, received_at: NOW, created_at: NOW, updated_at: NOW, finished_at: null });
            }
          }
        }
      }
    }
    await jobs.insertGroup(rows);
    return { jobs, breakers, cells };
  }

  it("claims exactly the jobs mayClaim allows", async () => {
    const { jobs, cells } = await grid();
    const claimed = await jobs.claim("w", NOW, 60_000, 10_000, []);
    const expected = cells.filter((c) => mayClaim({ state: c.state, runAtMs: c.runAt, probe: c.probe }, c.status, c.breaker ?? { state: "closed", consecutiveFailures: 0, cooldownUntil: null }, NOW));
    expect(expected.length).toBeGreaterThan(0);
    expect(claimed.map((j) => j.id).sort()).toEqual(expected.map((c) => c.id).sort());
    expect(new Set(claimed.map((j) => j.state))).toEqual(new Set(["running"]));
  });

  it("finds exactly the breakers probeDue names", async () => {
    const { breakers, cells } = await grid();
    const targets = new Map(cells.map((c) => [c.integrationId, c.breaker]));
    const due = (await breakers.breakersDueForProbe(NOW)).sort();
    const expected = [...new Set(cells.filter((c) => c.breaker !== undefined && probeDue(targets.get(c.integrationId)!, NOW)).map((c) => `http://127.0.0.1:9/${c.status}/${Object.entries(BREAKERS).find(([, b]) => b === c.breaker)![0]}`))].sort();
    expect(due).toEqual(expected);
    expect(expected.length).toBeGreaterThan(0);
  });

  it("replay by hand, a probe and the lease sweep move each job where jobTransition says", async () => {
    const { jobs, cells } = await grid();
    const policy = resolveJobPolicy();
    const later = NOW + 1_000;
    const replayed = cells.filter((c) => c.integrationId === "int_ENABLEDnone");
    await jobs.replay("int_ENABLEDnone", later, 7);
    // A probe takes the oldest parked job of its integration; running jobs with a lease in the past are swept.
    const probed = cells.filter((c) => c.integrationId === "int_ERRORopenDue");
    await jobs.queueProbe("int_ERRORopenDue", later);
    await sql`update jobs set lease_owner = 'w', lease_until = ${later} where state = 'running' and integration_id = 'int_DISABLEDclean'`.execute(store!.db);
    await jobs.sweepExpiredLeases(later);
    const swept = cells.filter((c) => c.integrationId === "int_DISABLEDclean");
    const expectAfter = async (group: Cell[], event: Parameters<typeof jobTransition>[1], only?: (c: Cell) => boolean) => {
      for (const c of group) {
        const before = { state: c.state, attempts: 1, probe: c.probe, runAtMs: c.runAt, finishedAtMs: null, lastError: null };
        const next = only && !only(c) ? before : jobTransition(before, event, later, policy, 0).next;
        expect(jobRecordOf((await jobs.get(c.id))!), `${event.type}: ${c.state}${c.probe ? " probe" : ""}`).toEqual(next);
      }
    };
    await expectAfter(replayed, { type: "replayed" });
    const firstParked = probed.find((c) => c.state === "parked")!;
    await expectAfter(probed, { type: "probeQueued" }, (c) => c === firstParked);
    await expectAfter(swept, { type: "leaseExpired" });
  });

  it.each([true, false])("a status sync (parkWhenDisabled %s) moves each job where jobTransition says", async (parkWhenDisabled) => {
    const { jobs, cells } = await grid();
    const policy = resolveJobPolicy({ parkWhenDisabled });
    const later = NOW + 1_000;
    await store!.db.transaction().execute((trx) => jobs.syncWithIntegrations(trx, later, parkWhenDisabled));
    for (const c of cells) {
      const row = (await jobs.get(c.id))!;
      const before = { state: c.state, attempts: 1, probe: c.probe, runAtMs: c.runAt, finishedAtMs: null, lastError: null };
      const { next } = jobTransition(before, { type: "integrationStatus", status: c.status }, later, policy, 0);
      expect(jobRecordOf(row), `${c.state}${c.probe ? " probe" : ""} of a ${c.status} integration`).toEqual(next);
    }
  });
});
