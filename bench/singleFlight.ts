/**
 * Benchmark "10,000 concurrent ensureFresh on one expired grant → token calls".
 *
 * Groups: (a) one process on SQLite; (b) 4 processes (each its own
 * grantkeeper and instanceId) on one PostgreSQL schema, released together by
 * an IPC `go`. Baseline, same run: a naive "refresh if expired" function
 * without single-flight, called the same number of times at once.
 */
import { join } from "node:path";
import { createGrantkeeper, type Grantkeeper } from "../src/grantkeeper.js";
import { tokenContext } from "../src/lifecycle/refreshRecorder.js";
import { Encryptor, parseEncryptionKey } from "../src/store/encryption.js";
import { BenchChild, benchKey, benchProvider, dropSchema, fmt, PG_BASE, progress, ratio, removeSqlite, scratchDir, startTokenServer, table, withTimeout, type BenchOptions, type BenchReport, type TokenServer } from "./common.js";
import { internalsOf } from "../src/internals.js";

const PG_SCHEMA = "bench_single_flight";
const PROCESSES = 4;
const TOKEN_DELAY_MS = 20;

/** Result of one group of concurrent callers. */
interface GroupResult {
  label: string;
  callers: number;
  processes: number;
  tokenCalls: number;
  distinctTokens: number;
  failed: number;
  wallMs: number;
  /** The access token callers got is not the imported (expired) one. */
  refreshed: boolean;
}

const sqliteFile = () => join(scratchDir(), "single-flight.db");

/** Import one expired grant (expires_in 0) and return its connection id. */
async function importExpired(gk: Grantkeeper, entityId: string): Promise<string> {
  const { connection } = await gk.connections.storeGrant({
    providerId: "bench",
    entityId,
    source: "import",
    tokens: { accessToken: `imported-${entityId}`, tokenType: "Bearer", refreshToken: `rt-${entityId}`, expiresInSeconds: 0 },
  });
  return connection.id;
}

function summarize(label: string, callers: number, processes: number, tokenCalls: number, tokens: string[], failed: number, wallMs: number, entityId: string): GroupResult {
  const distinct = new Set(tokens);
  return { label, callers, processes, tokenCalls, distinctTokens: distinct.size, failed, wallMs, refreshed: !distinct.has(`imported-${entityId}`) };
}

/** (a) One process, SQLite, `calls` concurrent ensureFresh. */
async function sqliteGroup(server: TokenServer, key: string, calls: number): Promise<{ result: GroupResult; gk: Grantkeeper }> {
  removeSqlite(sqliteFile());
  const file = sqliteFile();
  const gk = await createGrantkeeper({ databaseUrl: `sqlite:${file}`, encryptionKey: key, providers: { bench: benchProvider(server.origin) }, instanceId: "bench-sqlite" });
  const id = await importExpired(gk, "sqlite-user");
  await server.reset();
  const t0 = performance.now();
  const settled = await withTimeout(Promise.allSettled(Array.from({ length: calls }, () => gk.connections.ensureFresh(id))), 120_000, "sqlite group");
  const wallMs = performance.now() - t0;
  const tokens = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value.accessToken] : []));
  const result = summarize("grantkeeper, 1 process, SQLite", calls, 1, await server.requests(), tokens, calls - tokens.length, wallMs, "sqlite-user");
  return { result, gk };
}

/** (b) {@link PROCESSES} processes on one PostgreSQL schema, `calls` in total. */
async function postgresGroup(server: TokenServer, key: string, calls: number): Promise<GroupResult> {
  await dropSchema(PG_SCHEMA);
  const databaseUrl = `${PG_BASE}?schema=${PG_SCHEMA}`;
  const setup = await createGrantkeeper({ databaseUrl, encryptionKey: key, providers: { bench: benchProvider(server.origin) }, instanceId: "bench-setup" });
  const id = await importExpired(setup, "pg-user");
  await setup.close();
  const perProcess = Math.ceil(calls / PROCESSES);
  const children = Array.from({ length: PROCESSES }, (_, i) => new BenchChild("singleFlightWorker.js", `pg worker ${i + 1}`));
  try {
    children.forEach((c, i) => c.send({ type: "init", databaseUrl, encryptionKey: key, instanceId: `bench-pg-${i + 1}`, connectionId: id, calls: perProcess }));
    await Promise.all(children.map((c) => c.next("ready", 60_000)));
    await server.reset();
    progress(`single-flight: ${PROCESSES} PostgreSQL workers ready; go`);
    const t0 = performance.now();
    for (const c of children) c.send({ type: "go" });
    const done = await Promise.all(children.map((c) => c.next("done", 120_000)));
    const wallMs = performance.now() - t0;
    const tokens = done.flatMap((d) => d.tokens as string[]);
    const failed = done.reduce((n, d) => n + Number(d.failed), 0);
    for (const d of done) if ((d.failures as string[]).length) progress(`single-flight: worker failures: ${(d.failures as string[]).join("; ")}`);
    const engineCalls = done.reduce((n, d) => n + Number(d.tokenCalls), 0);
    const r = summarize(`grantkeeper, ${PROCESSES} processes, PostgreSQL`, perProcess * PROCESSES, PROCESSES, await server.requests(), tokens, failed, wallMs, "pg-user");
    if (engineCalls !== r.tokenCalls) progress(`single-flight: engines counted ${engineCalls} calls, endpoint ${r.tokenCalls}`);
    return r;
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await dropSchema(PG_SCHEMA);
  }
}


/**
 * Baseline: "refresh if expired" with no single-flight — read the expiry from
 * the store, and when it has passed call the token endpoint with fetch and
 * write the new token back. Same store, key, endpoint and number of callers.
 */
async function naiveGroup(server: TokenServer, gk: Grantkeeper, key: string, calls: number): Promise<GroupResult> {
  const id = await importExpired(gk, "naive-user");
  const enc = new Encryptor(parseEncryptionKey(key));
  const db = internalsOf(gk).store.db;
  const basic = `Basic ${Buffer.from("bench-client:bench-secret").toString("base64")}`;
  const naiveEnsureFresh = async (): Promise<string> => {
    const row = await db.selectFrom("connections").select(["expires_at", "access_token_ct", "refresh_token_ct"]).where("id", "=", id).executeTakeFirstOrThrow();
    if (row.expires_at !== null && row.expires_at > Date.now()) return enc.decrypt(row.access_token_ct, tokenContext(id, "access_token"));
    const refreshToken = enc.decrypt(row.refresh_token_ct!, tokenContext(id, "refresh_token"));
    const res = await fetch(`${server.origin}/token`, {
      method: "POST",
      headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken }),
      signal: AbortSignal.timeout(150_000),
    });
    if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
    const t = (await res.json()) as { access_token: string; expires_in: number; refresh_token: string };
    await db
      .updateTable("connections")
      .set({
        access_token_ct: enc.encrypt(t.access_token, tokenContext(id, "access_token")),
        refresh_token_ct: enc.encrypt(t.refresh_token, tokenContext(id, "refresh_token")),
        expires_at: Date.now() + t.expires_in * 1000,
      })
      .where("id", "=", id)
      .execute();
    return t.access_token;
  };
  await server.reset();
  const t0 = performance.now();
  const settled = await withTimeout(Promise.allSettled(Array.from({ length: calls }, naiveEnsureFresh)), 180_000, "naive group");
  const wallMs = performance.now() - t0;
  const tokens = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const firstFailure = settled.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
  if (firstFailure) progress(`single-flight: naive failure example: ${String(firstFailure.reason?.cause?.code ?? firstFailure.reason?.message)}`);
  return summarize("baseline: naive refresh-if-expired, 1 process, SQLite", calls, 1, await server.requests(), tokens, calls - tokens.length, wallMs, "naive-user");
}

/**
 * Reference for reading wall times: the same number of plain reads of the
 * grant (`gk.connections.get`, no refresh) on the same store, all at once and
 * one after another.
 */
async function readReference(gk: Grantkeeper, calls: number): Promise<{ concurrentMs: number; sequentialMs: number }> {
  const id = (await gk.connections.list({ entityId: "sqlite-user" })).items[0]!.id;
  let t = performance.now();
  await withTimeout(Promise.all(Array.from({ length: calls }, () => gk.connections.get(id))), 120_000, "read reference");
  const concurrentMs = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < calls; i++) await gk.connections.get(id);
  return { concurrentMs, sequentialMs: performance.now() - t };
}

/** Run the benchmark and render its section of docs/benchmarks.md. */
export async function runSingleFlight(opts: BenchOptions): Promise<BenchReport> {
  const calls = opts.quick ? 1_000 : 10_000;
  const server = await startTokenServer(TOKEN_DELAY_MS);
  const key = benchKey();
  let groups: GroupResult[];
  let reads: { concurrentMs: number; sequentialMs: number };
  try {
    progress(`single-flight: (a) ${fmt(calls)} concurrent ensureFresh, 1 process, SQLite`);
    const { result: a, gk } = await sqliteGroup(server, key, calls);
    progress(`single-flight: (a) ${a.tokenCalls} token call(s), ${a.distinctTokens} distinct token(s), ${fmt(a.wallMs)} ms`);
    progress(`single-flight: baseline, ${fmt(calls)} concurrent naive refresh-if-expired`);
    const naive = await naiveGroup(server, gk, key, calls);
    progress(`single-flight: baseline ${fmt(naive.tokenCalls)} token calls, ${fmt(naive.distinctTokens)} distinct tokens, ${fmt(naive.wallMs)} ms`);
    progress(`single-flight: read reference, ${fmt(calls)} plain reads at once and in sequence`);
    reads = await readReference(gk, calls);
    await gk.close();
    removeSqlite(sqliteFile());
    progress(`single-flight: (b) ${fmt(calls)} ensureFresh over ${PROCESSES} processes, one PostgreSQL schema`);
    const b = await postgresGroup(server, key, calls);
    progress(`single-flight: (b) ${b.tokenCalls} token call(s), ${b.distinctTokens} distinct token(s), ${fmt(b.wallMs)} ms`);
    groups = [a, b, naive];
  } finally {
    await server.close();
  }
  const [a, b, naive] = groups as [GroupResult, GroupResult, GroupResult];
  const r = reads!;
  const ok = (g: GroupResult) => g.tokenCalls === 1 && g.distinctTokens === 1 && g.failed === 0 && g.refreshed;
  const goalMet = ok(a) && ok(b);
  const rows = groups.map((g) => [
    g.label,
    fmt(g.callers),
    fmt(g.tokenCalls),
    g === naive ? "1× (baseline)" : `${ratio(g.tokenCalls, naive.tokenCalls)} (${fmt(naive.tokenCalls / Math.max(1, g.tokenCalls))}× fewer)`,
    fmt(g.distinctTokens),
    g === naive ? "no" : g.distinctTokens === 1 && g.failed === 0 ? "yes" : "**no**",
    fmt(g.failed),
    fmt(g.wallMs),
  ]);
  const markdown = [
    `**Measures**: how many token endpoint calls ${fmt(calls)} callers cause when they all ask, at the same moment, for a fresh access token of ONE grant that has already expired (imported with \`expiresInSeconds: 0\`); whether every caller gets the same token; wall time from the burst to the last answer.`,
    "",
    `**Set-up**: a local token endpoint (node:http on 127.0.0.1, own process) answers each refresh after ${TOKEN_DELAY_MS} ms with new random access and refresh tokens and counts requests. (a) \`Promise.all\` of ${fmt(calls)} \`gk.connections.ensureFresh(id)\` in one process on SQLite. (b) ${PROCESSES} child processes, each with its own grantkeeper (distinct \`instanceId\`) on one PostgreSQL schema, ${fmt(Math.ceil(calls / PROCESSES))} calls each, released together by an IPC "go" after all reported ready.`,
    "",
    `**Baseline (same run)**: a naive "refresh if expired" function with no single-flight — read the row's expiry, and if it has passed call the token endpoint with \`fetch\` and write the new tokens back — called ${fmt(calls)} times at once on the same SQLite store.`,
    "",
    `**Goal**: exactly 1 token call per group, every caller the same (new) token. **${goalMet ? "Met" : "NOT met"}.**`,
    "",
    table(["group", "callers", "token calls", "vs baseline", "distinct access tokens returned", "all callers same token", "failed calls", "wall time (ms)"], rows),
    "",
    `Every token returned by the grantkeeper groups is a refreshed one (not the imported, expired token): ${a.refreshed && b.refreshed ? "yes" : "**no**"}. The baseline's ${fmt(naive.distinctTokens)} distinct tokens mean ${fmt(naive.tokenCalls)} refresh-token uses: on a provider that rotates refresh tokens, all but the last would be invalidated.`,
    "",
    `**Reading the wall times**: on SQLite, ${fmt(calls)} plain reads of the same grant (\`gk.connections.get\`, no refresh) on the same store took ${fmt(r.concurrentMs)} ms all at once versus ${fmt(r.sequentialMs)} ms one after another (${ratio(r.concurrentMs, r.sequentialMs)}). All callers of a burst start before any refresh is in flight, so each \`ensureFresh\` reads the row first, and group (a)'s and the baseline's wall times are mostly this store-access cost: kysely's SQLite driver serializes queries on its one connection behind a mutex whose every release wakes all waiting queries, which makes N concurrent queries cost O(N²). PostgreSQL (a pool of 10 per process) does not have it.`,
  ].join("\n");
  return { name: "singleFlight", title: `Single-flight: ${fmt(calls)} concurrent ensureFresh on one expired grant → token calls`, markdown, goalMet };
}
