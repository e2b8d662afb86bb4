/**
 * Benchmark "one connection with N dependent integrations → time to flip all
 * to ERROR and back", on SQLite and PostgreSQL.
 *
 * N integrations depend on one connection (seeded with multi-row INSERTs in
 * one transaction: creation time is not the measure). Measured, each on the
 * same store: the refresh that meets `invalid_grant` (connection → error, all
 * N → ERROR in its one transaction); the re-import that re-authorizes it (all
 * N → ENABLED); the same two set-based statements run alone; and the
 * baseline, a naive loop of one UPDATE per integration (in one transaction,
 * and on SQLite also autocommit per row). Counts are verified by querying.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Kysely, Transaction } from "kysely";
import { createGrantkeeper, type Grantkeeper } from "../src/grantkeeper.js";
import type { GrantInput } from "../src/lifecycle/connections.js";
import { IntegrationRepository } from "../src/store/integrations.js";
import type { Database } from "../src/store/schema.js";
import { benchKey, benchProvider, dropSchema, fmt, PG_BASE, progress, ratio, removeSqlite, scratchDir, table, withTimeout, type BenchOptions, type BenchReport } from "./common.js";
import { internalsOf } from "../src/internals.js";

const PG_SCHEMA = "bench_propagation";
const ROUNDS = 3;

/** A local token endpoint that refuses every refresh with 400 `invalid_grant`. */
export interface InvalidGrantServer {
  origin: string;
  requests(): number;
  close(): Promise<void>;
}

/** Start {@link InvalidGrantServer} on 127.0.0.1 (in process: it answers a handful of requests). */
export async function startInvalidGrantServer(): Promise<InvalidGrantServer> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    req.on("end", () => {
      res.writeHead(400, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify({ error: "invalid_grant", error_description: "refresh token revoked" }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}


/** The grant every round imports (and re-imports) for the one connection. */
export function benchGrant(entityId: string): GrantInput {
  return { providerId: "bench", entityId, source: "import", tokens: { accessToken: `at-${entityId}`, tokenType: "Bearer", refreshToken: `rt-${entityId}`, expiresInSeconds: 3600 } };
}

/** Insert `n` ENABLED integrations depending on `connectionId`, rows as IntegrationRepository.insert writes them, 500 per INSERT, one transaction. */
async function seed(db: Kysely<Database>, connectionId: string, n: number): Promise<void> {
  const now = Date.now();
  await db.transaction().execute(async (trx) => {
    for (let from = 0; from < n; from += 500) {
      const ids = Array.from({ length: Math.min(500, n - from) }, (_, k) => `int_prop${String(from + k).padStart(16, "0")}`);
      await trx
        .insertInto("integrations")
        .values(ids.map((id) => ({ id, name: "bench-propagation", entity_id: "prop-user", status: "ENABLED", status_reason: null, status_cause_connection_id: null, status_cause_target: null, delivery: null, delivery_secret_ct: null, webhook_signing: "none", delivery_target: "handler:bench-propagation", webhook_secret_ct: null, created_at: now, updated_at: now })))
        .execute();
      await trx.insertInto("integration_connections").values(ids.map((integration_id) => ({ integration_id, connection_id: connectionId }))).execute();
      await trx.insertInto("integration_events").values(ids.map((integration_id) => ({ integration_id, at: now, actor: "user", from_status: null, to_status: "ENABLED", reason: null, cause: null, message: "created" }))).execute();
    }
  });
}

/** Statuses of the connection's dependents, with how many distinct `updated_at` stamps each has (1 = one statement), and the history size. */
async function census(db: Kysely<Database>, connectionId: string): Promise<{ byStatus: Map<string, { n: number; stamps: number }>; events: number }> {
  const rows = await db
    .selectFrom("integrations")
    .select(["status", (eb) => eb.fn.countAll<number>().as("n"), (eb) => eb.fn.count<number>("updated_at").distinct().as("stamps")])
    .where("id", "in", (eb) => eb.selectFrom("integration_connections").select("integration_id").where("connection_id", "=", connectionId))
    .groupBy("status")
    .execute();
  const ev = await db.selectFrom("integration_events").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  return { byStatus: new Map(rows.map((r) => [r.status, { n: Number(r.n), stamps: Number(r.stamps) }])), events: Number(ev.n) };
}

/** Throws unless all `n` dependents are in `status` (and, when `oneStamp`, were written by one statement). */
async function expectAll(db: Kysely<Database>, connectionId: string, n: number, status: string, oneStamp: boolean, label: string): Promise<number> {
  const c = await census(db, connectionId);
  const s = c.byStatus.get(status);
  if (!s || s.n !== n || c.byStatus.size !== 1 || (oneStamp && s.stamps !== 1)) {
    throw new Error(`${label}: expected all ${n} dependents ${status}${oneStamp ? " with one updated_at" : ""}, found ${JSON.stringify([...c.byStatus])}`);
  }
  return c.events;
}

/** Baseline: select the dependents, then one UPDATE per integration, in one transaction or autocommit per row. */
async function naiveFlip(db: Kysely<Database>, connectionId: string, to: "ERROR" | "ENABLED", mode: "transaction" | "autocommit"): Promise<number> {
  const now = Date.now();
  const set = to === "ERROR" ? { status: "ERROR" as const, status_reason: "credential_invalidated", status_cause_connection_id: connectionId, updated_at: now } : { status: "ENABLED" as const, status_reason: null, status_cause_connection_id: null, updated_at: now };
  const loop = async (q: Kysely<Database> | Transaction<Database>) => {
    const ids = await q
      .selectFrom("integration_connections as ic")
      .innerJoin("integrations as i", "i.id", "ic.integration_id")
      .select("i.id")
      .where("ic.connection_id", "=", connectionId)
      .where("i.status", "=", to === "ERROR" ? "ENABLED" : "ERROR")
      .execute();
    for (const { id } of ids) await q.updateTable("integrations").set(set).where("id", "=", id).execute();
  };
  const t0 = performance.now();
  if (mode === "transaction") await db.transaction().execute(loop);
  else await loop(db);
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Times of one engine, milliseconds (arrays: one entry per round). */
interface EngineResult {
  engine: string;
  seedMs: number;
  endpointMs: number;
  refresh: number[];
  reimport: number[];
  sqlToError: number[];
  sqlToEnabled: number[];
  naiveTx: { toError: number[]; toEnabled: number[] };
  naiveAuto?: { toError: number; toEnabled: number };
}

async function runEngine(engine: string, databaseUrl: string, n: number, autocommit: boolean, origin: string): Promise<EngineResult> {
  const gk: Grantkeeper = await createGrantkeeper({ databaseUrl, encryptionKey: benchKey(), providers: { bench: benchProvider(origin) }, refresh: { minIntervalMs: 0 } });
  try {
    const db = internalsOf(gk).store.db;
    const grant = benchGrant("prop-user");
    const id = (await gk.connections.storeGrant(grant)).connection.id;
    let t = performance.now();
    await seed(db, id, n);
    const seedMs = performance.now() - t;
    let events = await expectAll(db, id, n, "ENABLED", true, `${engine} seed`);
    progress(`propagation: ${engine}: seeded ${fmt(n)} integrations in ${fmt(seedMs)} ms`);
    // The refresh includes one token endpoint round trip: measure it alone for reference.
    const rtt: number[] = [];
    for (let i = 0; i < 5; i++) {
      t = performance.now();
      await (await fetch(`${origin}/token`, { method: "POST", body: "grant_type=refresh_token&refresh_token=x", headers: { "content-type": "application/x-www-form-urlencoded" } })).text();
      rtt.push(performance.now() - t);
    }
    const r: EngineResult = { engine, seedMs, endpointMs: median(rtt), refresh: [], reimport: [], sqlToError: [], sqlToEnabled: [], naiveTx: { toError: [], toEnabled: [] } };
    for (let round = 1; round <= ROUNDS; round++) {
      t = performance.now();
      const after = await withTimeout(gk.connections.refresh(id), 120_000, "refresh");
      r.refresh.push(performance.now() - t);
      if (after.state !== "error") throw new Error(`${engine}: refresh left the connection ${after.state}, not error`);
      const e1 = await expectAll(db, id, n, "ERROR", true, `${engine} refresh round ${round}`);
      t = performance.now();
      const back = await withTimeout(gk.connections.storeGrant(grant), 120_000, "re-import");
      r.reimport.push(performance.now() - t);
      if (back.connection.state === "error") throw new Error(`${engine}: re-import left the connection in error`);
      const e2 = await expectAll(db, id, n, "ENABLED", true, `${engine} re-import round ${round}`);
      if (e1 - events !== n || e2 - e1 !== n) throw new Error(`${engine}: expected ${n} history entries per flip, got ${e1 - events} and ${e2 - e1}`);
      events = e2;
      progress(`propagation: ${engine}: round ${round}: refresh → ${fmt(n)} ERROR in ${fmt(r.refresh.at(-1)!)} ms, re-import → ${fmt(n)} ENABLED in ${fmt(r.reimport.at(-1)!)} ms`);
    }
    // The library's two set-based statements alone, one transaction each, no refresh around them.
    const repo = new IntegrationRepository(db);
    for (let round = 1; round <= ROUNDS; round++) {
      t = performance.now();
      const moved = await repo.transaction((trx) => repo.invalidateDependents(id, "credential_invalidated", "bench", Date.now(), trx));
      r.sqlToError.push(performance.now() - t);
      await expectAll(db, id, n, "ERROR", true, `${engine} invalidateDependents`);
      t = performance.now();
      const reset = await repo.transaction((trx) => repo.resetAfterReauth(id, ["ERROR"], Date.now(), trx));
      r.sqlToEnabled.push(performance.now() - t);
      await expectAll(db, id, n, "ENABLED", true, `${engine} resetAfterReauth`);
      if (moved !== n || reset !== n) throw new Error(`${engine}: set-based statements changed ${moved} / ${reset}, expected ${n}`);
    }
    progress(`propagation: ${engine}: set-based statements alone: → ERROR ${fmt(median(r.sqlToError))} ms, → ENABLED ${fmt(median(r.sqlToEnabled))} ms (median)`);
    for (let round = 1; round <= ROUNDS; round++) {
      r.naiveTx.toError.push(await naiveFlip(db, id, "ERROR", "transaction"));
      await expectAll(db, id, n, "ERROR", false, `${engine} naive`);
      r.naiveTx.toEnabled.push(await naiveFlip(db, id, "ENABLED", "transaction"));
      await expectAll(db, id, n, "ENABLED", false, `${engine} naive`);
    }
    progress(`propagation: ${engine}: naive loop, one transaction: → ERROR ${fmt(median(r.naiveTx.toError))} ms, → ENABLED ${fmt(median(r.naiveTx.toEnabled))} ms (median)`);
    if (autocommit) {
      const toError = await naiveFlip(db, id, "ERROR", "autocommit");
      await expectAll(db, id, n, "ERROR", false, `${engine} naive autocommit`);
      const toEnabled = await naiveFlip(db, id, "ENABLED", "autocommit");
      await expectAll(db, id, n, "ENABLED", false, `${engine} naive autocommit`);
      r.naiveAuto = { toError, toEnabled };
      progress(`propagation: ${engine}: naive loop, autocommit per row: → ERROR ${fmt(toError)} ms, → ENABLED ${fmt(toEnabled)} ms`);
    }
    return r;
  } finally {
    await gk.close();
  }
}

/** Run the benchmark and render its section of docs/benchmarks.md. */
export async function runPropagation(opts: BenchOptions): Promise<BenchReport> {
  const n = opts.quick ? 1_000 : 10_000;
  const server = await startInvalidGrantServer();
  const results: EngineResult[] = [];
  try {
    const file = join(scratchDir(), "propagation.db");
    removeSqlite(file);
    progress(`propagation: SQLite, ${fmt(n)} integrations on one connection`);
    results.push(await runEngine("SQLite", `sqlite:${file}`, n, true, server.origin));
    removeSqlite(file);
    progress(`propagation: PostgreSQL, ${fmt(n)} integrations on one connection`);
    await dropSchema(PG_SCHEMA);
    try {
      results.push(await runEngine("PostgreSQL", `${PG_BASE}?schema=${PG_SCHEMA}`, n, false, server.origin));
    } finally {
      await dropSchema(PG_SCHEMA);
    }
  } finally {
    await server.close();
  }
  const ms = (xs: number[]) => `${fmt(median(xs), 1)} (${xs.map((x) => fmt(x, 0)).join(", ")})`;
  const vs = (ours: number, base: number) => `${ratio(ours, base)} (${fmt(base / ours, 1)}× faster)`;
  const rows: string[][] = [];
  for (const r of results) {
    const [nE, nB] = [median(r.naiveTx.toError), median(r.naiveTx.toEnabled)];
    rows.push([r.engine, "grantkeeper: refresh meeting `invalid_grant` / re-import (whole API call)", ms(r.refresh), ms(r.reimport), vs(median(r.refresh), nE), vs(median(r.reimport), nB)]);
    rows.push([r.engine, "grantkeeper's set-based statements alone (`invalidateDependents` / `resetAfterReauth`, one transaction each)", ms(r.sqlToError), ms(r.sqlToEnabled), vs(median(r.sqlToError), nE), vs(median(r.sqlToEnabled), nB)]);
    rows.push([r.engine, "baseline: naive loop, one UPDATE per integration, one transaction", ms(r.naiveTx.toError), ms(r.naiveTx.toEnabled), "1× (baseline)", "1× (baseline)"]);
    if (r.naiveAuto) rows.push([r.engine, "baseline: naive loop, one UPDATE per integration, autocommit per row", fmt(r.naiveAuto.toError, 1), fmt(r.naiveAuto.toEnabled, 1), ratio(r.naiveAuto.toError, nE), ratio(r.naiveAuto.toEnabled, nB)]);
  }
  const faster = results.every((r) => median(r.refresh) < median(r.naiveTx.toError) && median(r.reimport) < median(r.naiveTx.toEnabled));
  const goalMet = results.length === 2 && faster;
  const markdown = [
    `**Measures**: with ${fmt(n)} integrations depending on ONE connection, the wall time of (1) the refresh that gets \`400 {"error":"invalid_grant"}\` from the token endpoint — the connection goes to \`error\` and every dependent ENABLED integration to ERROR(\`credential_invalidated\`), with one history entry each, in the connection's one transaction — and (2) the re-import of a grant for the same entity and provider (\`storeGrant\`), which re-authorizes the connection and resets all ${fmt(n)} to ENABLED in its transaction.`,
    "",
    `**Set-up**: one grantkeeper per engine (SQLite file with WAL and \`synchronous=FULL\`; PostgreSQL 127.0.0.1, fresh schema, pool of 10), not started (no scheduler or worker running). The ${fmt(n)} integrations are inserted with multi-row INSERTs in one transaction (rows as \`IntegrationRepository.insert\` writes them; creation is not measured: ${results.map((r) => `${r.engine} ${fmt(r.seedMs)} ms`).join(", ")}). The token endpoint is node:http on 127.0.0.1 answering every refresh with 400 \`invalid_grant\` (a bare round trip to it: ${results.map((r) => `${fmt(r.endpointMs, 1)} ms`).join(" / ")}). \`refresh.minIntervalMs\` is 0 so the rounds are not rate limited. ${ROUNDS} rounds each; the table shows the median and, in parentheses, every round. After every step the dependents are counted by querying: all ${fmt(n)} in the expected status, and for grantkeeper's steps all with one and the same \`updated_at\` (written by one statement) and exactly ${fmt(n)} new history rows per flip.`,
    "",
    `**Baseline (same run, same store, same ${fmt(n)} integrations)**: the naive loop — select the dependents, then one \`UPDATE integrations … WHERE id = ?\` per integration, through the same kysely handle, inside one transaction; on SQLite also with autocommit (one transaction, so one fsync, per row). It writes no history rows, so it does less work than grantkeeper.`,
    "",
    `**Goal**: every flip verified on both engines, and grantkeeper's whole API call (token endpoint round trip, lease and history included) faster than the naive loop in one transaction, both directions. **${goalMet ? "Met" : "NOT met"}.**`,
    "",
    table(["engine", "method", `${fmt(n)} → ERROR (ms)`, `${fmt(n)} → ENABLED (ms)`, "→ ERROR vs naive loop (1 txn)", "→ ENABLED vs naive loop (1 txn)"], rows),
  ].join("\n");
  return { name: "propagation", title: `Propagation: one connection with ${fmt(n)} dependent integrations → all ERROR and back`, markdown, goalMet };
}
