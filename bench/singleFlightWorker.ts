/**
 * One of the processes of the multi-process single-flight benchmark: its own
 * grantkeeper (distinct `instanceId`) on the shared PostgreSQL schema. Waits
 * for `go`, then fires `calls` concurrent `ensureFresh` on one expired grant.
 *
 * IPC: `init {databaseUrl, encryptionKey, instanceId, connectionId, calls}` →
 * `ready`; `go` → `done {wallMs, tokens, failures, tokenCalls}`.
 */
import { createGrantkeeper } from "../src/grantkeeper.js";
import { parent } from "./common.js";
import { internalsOf } from "../src/internals.js";

async function main(): Promise<void> {
  const init = await parent.next(30_000);
  if (init.type !== "init") throw new Error(`expected init, got ${init.type}`);
  const connectionId = String(init.connectionId);
  const calls = Number(init.calls);
  const gk = await createGrantkeeper({
    databaseUrl: String(init.databaseUrl),
    encryptionKey: String(init.encryptionKey),
    instanceId: String(init.instanceId),
  });
  // Warm the pool so the burst measures refresh coordination, not TCP connects to PostgreSQL.
  await Promise.all(Array.from({ length: 10 }, () => gk.connections.get(connectionId)));
  await parent.send({ type: "ready" });
  const go = await parent.next(60_000);
  if (go.type !== "go") throw new Error(`expected go, got ${go.type}`);
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: calls }, () => gk.connections.ensureFresh(connectionId)));
  const wallMs = performance.now() - t0;
  const tokens = new Set<string>();
  const failures: string[] = [];
  for (const r of results) {
    if (r.status === "fulfilled") tokens.add(r.value.accessToken);
    else if (failures.length < 5) failures.push(String((r.reason as Error)?.message ?? r.reason));
  }
  const failed = results.filter((r) => r.status === "rejected").length;
  await parent.send({ type: "done", wallMs, tokens: [...tokens], failed, failures, tokenCalls: internalsOf(gk).engine.tokenCalls });
  await gk.close();
  process.exit(0);
}

main().catch((e) => parent.fail(e));
