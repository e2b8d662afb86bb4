/**
 * How ingress hands jobs to the worker, on a real store: every accepted job
 * runs without waiting for the poll (the clock is manual and never advanced,
 * so the poll never fires); a group the worker has room for is claimed at
 * accept (no pass over the queue at all), and a bigger one is written queued
 * and costs one pass instead of one per accept.
 */
import { afterEach, describe, expect, it } from "vitest";
import { testDatabase, testKey, type TestDatabase } from "../../test/support/backend.js";
import { waitFor } from "../../test/support/wait.js";
import { ManualClock } from "../domain/clock.js";
import { internalsOf } from "../internals.js";
import { createGrantkeeper, type Grantkeeper } from "../grantkeeper.js";

const json = new Headers({ "content-type": "application/json" });
const body = (n: number) => new TextEncoder().encode(JSON.stringify({ n }));

describe("worker wake-ups from ingress", () => {
  let tdb: TestDatabase | undefined;
  let gk: Grantkeeper | undefined;
  afterEach(async () => {
    await gk?.close();
    await tdb?.cleanup();
  });

  async function start(): Promise<Grantkeeper> {
    tdb = await testDatabase();
    gk = await createGrantkeeper({ databaseUrl: tdb.url, encryptionKey: testKey(), clock: new ManualClock(Date.now()), jobs: { pollMs: 3_600_000, concurrency: 4 } });
    return gk;
  }

  it("runs every accepted job, claimed at accept when the worker has room and with one pass per group otherwise, in arrival order", async () => {
    const gk = await start();
    const { integration } = await gk.integrations.create({ name: "wake", entityId: "e", connectionIds: [], webhook: { signing: "none" } });
    const ran: number[] = [];
    gk.handle("wake", async (job) => void ran.push(job.json<{ n: number }>().n));
    await gk.start();
    await waitFor("the start-up pass to end", async () => (await gk.worker.runDue()) === 0);
    let n = 0;
    // SQLite: 16 fit in the worker's room (batchSize 64): handed over. 80 do not: queued, and one pass claims them (64 + 16).
    // PostgreSQL claims nothing at accept (it costs there, docs/architecture.md): every group is queued and one pass claims it.
    const sqlite = internalsOf(gk).store.dialect === "sqlite";
    for (const [size, handed, passes] of [
      [16, sqlite ? 16 : 0, sqlite ? 0 : 1],
      [80, 0, 1],
      [16, sqlite ? 16 : 0, sqlite ? 0 : 1],
    ] as const) {
      const before = { ...gk.worker.stats };
      const accepted = await Promise.all(Array.from({ length: size }, () => gk.ingress.accept(integration.id, body(n++), json)));
      expect(accepted.every((a) => a.disposition === "queued")).toBe(true);
      await waitFor(`${n} jobs to run`, async () => ran.length === n);
      await waitFor(`${n} outcomes`, async () => (await gk.jobs.list({ integrationId: integration.id, state: "succeeded" }, { limit: 500 })).items.length === n);
      expect({ handed: gk.worker.stats.handedOver - before.handedOver, passes: gk.worker.stats.passes - before.passes }).toEqual({ handed, passes });
    }
    // One integration's jobs run one at a time, in arrival order.
    expect(ran).toEqual(Array.from({ length: n }, (_, k) => k));
  });

  it("runs a job accepted while a pass is running (its wake-up is not skipped)", async () => {
    const gk = await start();
    const first = (await gk.integrations.create({ name: "outer", entityId: "e", connectionIds: [], webhook: { signing: "none" } })).integration;
    const second = (await gk.integrations.create({ name: "inner", entityId: "e", connectionIds: [], webhook: { signing: "none" } })).integration;
    const ran: string[] = [];
    // The outer job accepts the inner one and waits for its commit, so that commit lands after the pass's claim began.
    gk.handle("outer", async () => {
      ran.push("outer");
      expect((await gk.ingress.accept(second.id, body(2), json)).disposition).toBe("queued");
    });
    gk.handle("inner", async () => void ran.push("inner"));
    await gk.start();
    await waitFor("the start-up pass to end", async () => (await gk.worker.runDue()) === 0);
    await gk.ingress.accept(first.id, body(1), json);
    await waitFor("both jobs to run", async () => ran.length === 2);
    expect(ran).toEqual(["outer", "inner"]);
  });
});
