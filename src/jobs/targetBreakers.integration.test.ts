/**
 * Target breakers on a real store, under concurrency: integrations sharing a
 * target fault at the same time (several jobs of one worker batch, several
 * instances), and every fault must count — a lost increment keeps a failing
 * target's breaker closed for longer than `maxConsecutiveFailures` says.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { testDatabase, type TestDatabase } from "../../test/support/backend.js";
import { LifecycleHooks } from "../lifecycle/hooks.js";
import { BreakerRepository } from "../store/breakers.js";
import { openStore, type Store } from "../store/database.js";
import { IntegrationRepository } from "../store/integrations.js";
import { JobRepository } from "../store/jobs.js";
import { migrateToLatest } from "../store/migrations.js";
import { UnitsOfWork } from "../store/unitOfWork.js";
import { silentLogger } from "../telemetry/logger.js";
import { createTelemetry } from "../telemetry/telemetry.js";
import { TargetBreakers } from "./targetBreakers.js";

const T = 1_700_000_000_000;
const TARGET = "http://127.0.0.1:9/shared";

describe("TargetBreakers on a real store", () => {
  let tdb: TestDatabase | undefined;
  const stores: Store[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await tdb?.cleanup();
  });

  /** One instance's breakers over its own store handle (PostgreSQL: its own pool). */
  async function instance(maxConsecutiveFailures: number) {
    const store = await openStore(tdb!.url);
    stores.push(store);
    const integrations = new IntegrationRepository(store.db);
    const jobs = new JobRepository(store.db, store.dialect, store.workerDb);
    const breakerStore = new BreakerRepository(store.db);
    const hooks = new LifecycleHooks(silentLogger());
    const opened: number[] = [];
    hooks.on("breaker.opened", (e) => void opened.push(e.integrations));
    const breakers = new TargetBreakers({ units: new UnitsOfWork(store.db, { integrations, jobs, breakers: breakerStore }), breaker: { maxConsecutiveFailures, cooldownMs: 60_000 }, parkWhenDisabled: true, logger: silentLogger(), hooks, telemetry: createTelemetry() });
    return { store, breakers, breakerStore, opened };
  }

  async function setup(maxConsecutiveFailures: number, instances = 1) {
    tdb = await testDatabase();
    const all = [];
    for (let i = 0; i < instances; i++) all.push(await instance(maxConsecutiveFailures));
    await migrateToLatest(all[0]!.store);
    await sql`insert into integrations (id, name, entity_id, status, delivery_target, created_at, updated_at) values ('int_b', 'b', 'e', 'ENABLED', ${TARGET}, ${T}, ${T})`.execute(all[0]!.store.db);
    return all;
  }

  it("counts N concurrent faults as N (one instance, one batch)", async () => {
    const [a] = await setup(1_000);
    const n = 24;
    // Every fault starts from the state the batch read before any of them (as the worker does).
    await Promise.all(Array.from({ length: n }, (_, k) => a!.breakers.fault(TARGET, T + k, new Map())));
    expect((await a!.breakerStore.breaker(TARGET)).consecutiveFailures).toBe(n);
  });

  // Several instances share a store on PostgreSQL only: on SQLite one process works the queue.
  it.skipIf(process.env.GK_TEST_BACKEND !== "postgres")("counts concurrent faults from several instances, and opens the breaker exactly once", async () => {
    const all = await setup(10, 3);
    await Promise.all(all.flatMap((x, i) => Array.from({ length: 8 }, (_, k) => x.breakers.fault(TARGET, T + i * 8 + k, new Map()))));
    const b = await all[0]!.breakerStore.breaker(TARGET);
    expect(b).toMatchObject({ state: "open", consecutiveFailures: 24 });
    expect(all.flatMap((x) => x.opened)).toEqual([1]);
    expect((await sql<{ status: string }>`select status from integrations where id = 'int_b'`.execute(all[0]!.store.db)).rows[0]?.status).toBe("ERROR");
  });
});
