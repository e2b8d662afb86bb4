/**
 * Units of work on a real store: the writes of a breaker flip (breaker row,
 * integration statuses, jobs parked) commit together or not at all, whether
 * the unit opened its own transaction or joined the caller's.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { migratedStore, type TestDatabase } from "../../test/support/backend.js";
import { BreakerRepository } from "./breakers.js";
import type { Store } from "./database.js";
import { IntegrationRepository } from "./integrations.js";
import { JobRepository } from "./jobs.js";
import { newJobId } from "./jobRows.js";
import { UnitsOfWork, type UnitOfWork } from "./unitOfWork.js";

const T = 1_700_000_000_000;
const TARGET = "http://127.0.0.1:9/hook";

describe("UnitsOfWork on a real store", () => {
  let tdb: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await tdb?.cleanup();
  });

  async function setup() {
    ({ tdb, store } = await migratedStore());
    await sql`insert into integrations (id, name, entity_id, status, delivery_target, created_at, updated_at) values ('int_u', 'u', 'e', 'ENABLED', ${TARGET}, ${T}, ${T})`.execute(store.db);
    const jobs = new JobRepository(store.db, store.dialect, store.workerDb);
    const jobId = newJobId(T);
    await jobs.insertGroup([{ id: jobId, integration_id: "int_u", state: "queued", attempts: 0, idempotency_key: null, headers: "{}", body: "", run_at: T, lease_owner: null, lease_until: null, last_error: null, probe: 0, received_at: T, created_at: T, updated_at: T, finished_at: null }]);
    const integrations = new IntegrationRepository(store.db);
    const breakers = new BreakerRepository(store.db);
    return { units: new UnitsOfWork(store.db, { integrations, jobs, breakers }), jobs, integrations, breakers, jobId };
  }

  async function openBreaker(uow: UnitOfWork) {
    await uow.breakers.save(TARGET, { state: "open", consecutiveFailures: 3, openedAt: T, cooldownUntil: T + 120_000 }, T);
    expect(await uow.integrations.openCircuit(TARGET, T)).toBe(1);
    expect(await uow.jobs.syncWithIntegrations(T, true)).toEqual({ parked: 1, replayed: 0 });
  }

  it("commits a breaker flip, its integrations' ERROR and their parked jobs together", async () => {
    const { units, jobs, integrations, breakers, jobId } = await setup();
    await units.run(openBreaker);
    expect((await breakers.breaker(TARGET)).state).toBe("open");
    expect(await integrations.get("int_u")).toMatchObject({ status: "ERROR", status_reason: "circuit_open", status_cause_target: TARGET });
    expect(await jobs.get(jobId)).toMatchObject({ state: "parked" });
  });

  it("rolls every write back when the unit fails part way", async () => {
    const { units, jobs, integrations, breakers, jobId } = await setup();
    await expect(
      units.run(async (uow) => {
        await openBreaker(uow);
        throw new Error("a participant failed");
      }),
    ).rejects.toThrow("a participant failed");
    expect(await breakers.breaker(TARGET)).toEqual({ state: "closed", consecutiveFailures: 0, cooldownUntil: null });
    expect(await integrations.get("int_u")).toMatchObject({ status: "ENABLED", status_reason: null });
    expect(await jobs.get(jobId)).toMatchObject({ state: "queued" });
    expect(await integrations.listEvents("int_u", undefined, 10)).toHaveLength(0);
  });

  it("joins a transaction the caller holds: the caller's rollback undoes the unit's writes", async () => {
    const { units, integrations } = await setup();
    await expect(
      store!.db.transaction().execute(async (trx) => {
        await units.of(trx).integrations.openCircuit(TARGET, T);
        expect((await integrations.get("int_u", trx))?.status).toBe("ERROR");
        throw new Error("the caller's change failed");
      }),
    ).rejects.toThrow("the caller's change failed");
    expect((await integrations.get("int_u"))?.status).toBe("ENABLED");
  });
});
