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

  it("a claimed job's payload comes from memory when this instance accepted it while running, from the store otherwise: the handler sees the same bytes either way", async () => {
    const gk = await start();
    const { integration } = await gk.integrations.create({ name: "payloads", entityId: "e", connectionIds: [], webhook: { signing: "none" } });
    const seen = new Map<number, { headers: Record<string, string>; body: number[] }>();
    gk.handle("payloads", async (job) => void seen.set(job.body[0]!, { headers: job.headers, body: [...job.body] }));
    // Not UTF-8 (0xff, 0xfe), a NUL, and a header of the sender's own.
    const sent = (n: number) => ({ body: new Uint8Array([n, 0xff, 0xfe, 0x00, 0x7b]), headers: new Headers({ "content-type": "application/octet-stream", "x-sender-n": String(n) }) });
    const accept = (from: number, count: number) => Promise.all(Array.from({ length: count }, (_, k) => gk.ingress.accept(integration.id, sent(from + k).body, sent(from + k).headers)));
    // Accepted before the worker runs: nothing is kept, the claim reads and opens the sealed payloads.
    await accept(0, 3);
    await gk.start();
    await waitFor("the jobs accepted before start to run", async () => seen.size === 3);
    expect(gk.worker.stats.payloadsFromMemory).toBe(0);
    // Accepted while it runs, 80 at once (more than SQLite's claim at accept takes): written queued, payloads kept.
    await accept(3, 80);
    await waitFor("83 jobs to run", async () => seen.size === 83);
    expect(gk.worker.stats.payloadsFromMemory).toBe(80);
    for (let n = 0; n < 83; n++) {
      expect(seen.get(n)).toEqual({ headers: { "content-type": "application/octet-stream", "x-sender-n": String(n) }, body: [...sent(n).body] });
    }
    // What is kept is plaintext in memory only: the store holds each payload sealed.
    const stored = await internalsOf(gk).store.db.selectFrom("job_payloads").select(["headers", "body"]).execute();
    expect(stored).toHaveLength(83);
    expect(stored.every((r) => r.headers === "" && r.body.startsWith("v1."))).toBe(true);
  });
});
