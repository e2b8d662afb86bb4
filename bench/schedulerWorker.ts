/**
 * Child process of the scheduler-scale benchmark: one fresh process per
 * design and N, so RSS and CPU are that design's alone.
 *
 * - `ours`: `createGrantkeeper` + `start()` on the seeded store (the
 *   RefreshScheduler: one timer, indexed `next_refresh_at` query).
 * - `naive`: the baseline design — load every grant's `next_refresh_at` into
 *   memory and create one `setTimeout` per grant (handles kept in a Map, as a
 *   scheduler that must cancel or reschedule them would). Its timers only
 *   record when they fire; it does no refresh work.
 *
 * Timeline from the end of start-up (t = 0): RSS; the due set falls due at
 * t = 5 s; RSS at t = 10 s; CPU over t = 10…15 s (idle window).
 *
 * IPC: `run {mode, databaseUrl, encryptionKey, origin, dueCount}` → `result {...}`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createGrantkeeper } from "../src/grantkeeper.js";
import { openStore } from "../src/store/database.js";
import { benchConnectionId, benchProvider, parent, quantile, type ChildMessage } from "./common.js";
import { internalsOf } from "../src/internals.js";

const DUE_IN_MS = 5_000;
const RSS_AT_MS = 10_000;
const IDLE_WINDOW_MS = 5_000;

/** Summary of a list of milliseconds. */
export interface Spread {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

function spread(values: number[]): Spread {
  const v = [...values].sort((a, b) => a - b);
  // No values: zeros, not NaN (the report prints them).
  const at = (q: number) => (v.length === 0 ? 0 : quantile(v, q));
  return { count: v.length, min: at(0), mean: v.reduce((s, x) => s + x, 0) / Math.max(1, v.length), p50: at(0.5), p99: at(0.99), max: at(1) };
}

const rss = () => process.memoryUsage().rss;

/** RSS now and at t = 10 s, then CPU time over the 5 s idle window. */
async function idlePhase(readyAt: number): Promise<{ rss10: number; heap10: number; cpuIdleMs: number }> {
  await sleep(Math.max(0, readyAt + RSS_AT_MS - performance.now()));
  const rss10 = rss();
  const heap10 = process.memoryUsage().heapUsed;
  const cpu0 = process.cpuUsage();
  await sleep(IDLE_WINDOW_MS);
  const cpu = process.cpuUsage(cpu0);
  return { rss10, heap10, cpuIdleMs: (cpu.user + cpu.system) / 1000 };
}

async function ours(m: ChildMessage, dueIds: string[]): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const gk = await createGrantkeeper({ databaseUrl: String(m.databaseUrl), encryptionKey: String(m.encryptionKey), providers: { bench: benchProvider(String(m.origin)) }, instanceId: "bench-scheduler" });
  const createMs = performance.now() - t0;
  // Not part of start-up: make the due set due 5 s from now (another writer would do this).
  const dueAt = Date.now() + DUE_IN_MS;
  await internalsOf(gk).store.db.updateTable("connections").set({ next_refresh_at: dueAt }).where("id", "in", dueIds).execute();
  const t1 = performance.now();
  await gk.start();
  const readyAt = performance.now();
  const startupMs = createMs + (readyAt - t1);
  const rssStart = rss();
  const cpuStart = process.cpuUsage();
  // For the report only: the scheduler options createGrantkeeper chose (a private field; absent if renamed).
  const schedulerOptions = (gk.scheduler as unknown as { options?: Record<string, number> }).options ?? null;
  parent.progress(`ours: started in ${startupMs.toFixed(0)} ms, RSS ${(rssStart / 2 ** 20).toFixed(1)} MB; due set at +5 s`);
  // Wait (bounded) until every due grant has been refreshed.
  const deadline = Date.now() + DUE_IN_MS + 60_000;
  let refreshed = 0;
  while (Date.now() < deadline) {
    if (internalsOf(gk).engine.tokenCalls >= dueIds.length) {
      const r = await internalsOf(gk).store.db.selectFrom("connections").select((eb) => eb.fn.countAll<number>().as("n")).where("id", "in", dueIds).where("last_refreshed_at", ">=", dueAt).executeTakeFirstOrThrow();
      refreshed = Number(r.n);
      if (refreshed >= dueIds.length) break;
    }
    await sleep(100);
  }
  const cpuDue = process.cpuUsage(cpuStart);
  const idle = await idlePhase(readyAt);
  const statsAfterIdle = { ...gk.scheduler.stats };
  // A scheduler tick when nothing is due: its cost must not grow with N.
  const ticks: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    await gk.scheduler.runDue();
    ticks.push(performance.now() - t);
  }
  // What start-up spends re-defining the provider (createGrantkeeper does this for every `providers` entry).
  const tp = performance.now();
  await gk.providers.put("bench", benchProvider(String(m.origin)));
  const providerPutMs = performance.now() - tp;
  const rows = await internalsOf(gk).store.db.selectFrom("connections").select(["last_attempt_at", "last_refreshed_at"]).where("id", "in", dueIds).execute();
  const callStarts = rows.flatMap((r) => (r.last_attempt_at === null ? [] : [r.last_attempt_at - dueAt]));
  // Time from the due instant until the last due grant's new tokens were stored.
  const dueDoneMs = Math.max(0, ...rows.map((r) => (r.last_refreshed_at ?? dueAt) - dueAt));
  await gk.close();
  return {
    startupMs,
    createMs,
    schedulerOptions,
    rssStart,
    ...idle,
    peakRss: process.resourceUsage().maxRSS * 1024,
    dueDoneMs,
    cpuPerRefreshMs: (cpuDue.user + cpuDue.system) / 1000 / Math.max(1, refreshed),
    refreshed,
    tokenCalls: internalsOf(gk).engine.tokenCalls,
    stats: statsAfterIdle,
    tokenCallLateness: spread(callStarts),
    tickMs: spread(ticks),
    providerPutMs,
  };
}

async function naive(m: ChildMessage, dueIds: string[]): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const store = await openStore(String(m.databaseUrl));
  const due = new Set(dueIds);
  const lateness: number[] = [];
  let fired = 0;
  const timers = new Map<string, NodeJS.Timeout>();
  const schedule = (id: string, at: number) => {
    clearTimeout(timers.get(id));
    timers.set(
      id,
      setTimeout(() => {
        fired++;
        timers.delete(id);
        if (due.has(id)) lateness.push(Date.now() - at);
      }, Math.max(0, at - Date.now())),
    );
  };
  const rows = await store.db.selectFrom("connections").select(["id", "next_refresh_at"]).where("next_refresh_at", "is not", null).execute();
  for (const r of rows) schedule(r.id, r.next_refresh_at!);
  const readyAt = performance.now();
  const startupMs = readyAt - t0;
  // Not part of start-up: the due set is rescheduled to 5 s from now, as for grantkeeper.
  const dueAt = Date.now() + DUE_IN_MS;
  for (const id of dueIds) schedule(id, dueAt);
  const rssStart = rss();
  parent.progress(`naive: ${timers.size.toLocaleString("en-US")} timers in ${startupMs.toFixed(0)} ms, RSS ${(rssStart / 2 ** 20).toFixed(1)} MB`);
  const idle = await idlePhase(readyAt);
  const result = { startupMs, rssStart, ...idle, peakRss: process.resourceUsage().maxRSS * 1024, timers: timers.size + fired, fired, timerLateness: spread(lateness) };
  for (const t of timers.values()) clearTimeout(t);
  await store.close();
  return result;
}

async function main(): Promise<void> {
  const m = await parent.next(30_000);
  if (m.type !== "run") throw new Error(`expected run, got ${m.type}`);
  const dueIds = Array.from({ length: Number(m.dueCount) }, (_, i) => benchConnectionId(i));
  const result = m.mode === "ours" ? await ours(m, dueIds) : await naive(m, dueIds);
  await parent.send({ type: "result", ...result });
  process.exit(0);
}

main().catch((e) => parent.fail(e));
