/**
 * The chaos suite (issue 12 item 6): four `grantkeeper serve` processes on a
 * private PostgreSQL cluster, oidc-provider (refresh-token rotation on)
 * behind the fault proxy, webhooks flowing to a local consumer — all on
 * 127.0.0.1, every phase bounded in time. Cases, in order of value:
 *
 * 1. token-endpoint chaos: the proxy switches between pass, 503, HTML 500,
 *    resets, hangs past the refresh timeout, 429 + Retry-After and slow
 *    bodies (the authorization server's answer trickled in within the
 *    timeout, so no grant can be lost by design) while
 *    short-lived grants come due; afterwards every connection must refresh
 *    (no refresh token lost), none may be in `error`, no integration may
 *    leave ENABLED, and token calls stay within due refreshes × (maxRetries + 1);
 * 2. PostgreSQL stopped (`pg_ctl stop -m fast`) during webhook load and
 *    started again: every process survives, webhooks get 503 (never 202)
 *    while it is down, `/readyz` is 200 again within 10 s, every 202 is delivered;
 * 3. `kill -9` of an instance in the middle of refreshes: its leases expire
 *    and another instance refreshes those connections, none lost;
 * 4. rotation race: forced refreshes of the same connections from all four
 *    instances at once: no `invalid_grant`, none in `error`.
 *
 * `npm run chaos` runs the full version (60 s of chaos) and prints the
 * figures docs/reliability.md reports; `test/e2e/chaos.integration.test.ts`
 * runs a short one in CI. Needs `npm run build` (it spawns dist/).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { createGrantkeeper } from "../src/grantkeeper.js";
import { startAuthServer } from "../test/support/authServer.js";
import { startFaultProxy, type FaultMode } from "../test/support/faultProxy.js";
import { freePort } from "../test/support/gk.js";
import { issueGrant } from "../test/support/issueGrant.js";
import { startPrivatePostgres } from "../test/support/privatePostgres.js";
import { startReceiver } from "../test/support/receiver.js";
import { testKey } from "../test/support/backend.js";

const ROOT = import.meta.dirname.includes(`${join("dist", "bench")}`) ? resolve(import.meta.dirname, "../..") : resolve(import.meta.dirname, "..");
const MAIN = join(ROOT, "dist/src/cli/main.js");
const API_KEY = "gk_chaos_api_key_0123456789";

/** Sizes and durations of one chaos run (all milliseconds). */
export interface ChaosOptions {
  /** Length of the token-endpoint chaos phase. */
  chaosMs: number;
  /** PostgreSQL down for this long in case 2. */
  pgDownMs: number;
  connections: number;
  integrations: number;
  /** `grantkeeper serve` processes. @defaultValue 4 */
  instances?: number;
  /** Access-token lifetime the authorization server issues, seconds. */
  accessTokenTtlSeconds: number;
  /** Webhooks sent per second during cases 1 and 2. */
  webhooksPerSecond: number;
  /** Connections refreshed mid-call when one instance is killed (case 3). */
  killedRefreshes: number;
  /** Connections raced from all instances (case 4). */
  racedConnections: number;
  /**
   * `refresh.timeoutSeconds` of the serve processes. Keep it well above the
   * authorization server's answer time under the run's load: a call that
   * times out after the provider rotated the refresh token loses the grant.
   */
  refreshTimeoutSeconds: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What a run measured. */
export interface ChaosFigures {
  tokenChaos: { connections: number; modes: FaultMode[]; tokenCalls: number; dueRefreshes: number; maxRetries: number; inError: number; lostAfterwards: number; integrationsNotEnabled: number };
  webhooks: { accepted: number; answered503: number; acceptedWhileDown: number; delivered: number; otherStatuses: Record<string, number> };
  pgRestart: { downMs: number; processesAlive: number; readyAgainMs: number };
  kill9: { refreshesInFlight: number; refreshedElsewhere: number; lost: number; leaseFreedAfterMs: number };
  rotationRace: { connections: number; forcedRefreshes: number; invalidGrant: number; inError: number };
}

interface Serve {
  child: ChildProcess;
  url: string;
  out: string;
}

const REFRESH = { marginSeconds: 0, jitterSeconds: 1, maxRetries: 3, backoffBaseSeconds: 1, backoffMaxSeconds: 4, recoveryIntervalSeconds: 10, minIntervalSeconds: 0 };

async function serve(env: Record<string, string>): Promise<Serve> {
  const port = await freePort();
  const s: Serve = { child: spawn(process.execPath, [MAIN, "serve"], { env: { ...process.env, ...env, GRANTKEEPER_PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] }), url: `http://127.0.0.1:${port}`, out: "" };
  s.child.stdout!.on("data", (d) => (s.out = (s.out + d).slice(-20_000)));
  s.child.stderr!.on("data", (d) => (s.out = (s.out + d).slice(-20_000)));
  for (let i = 0; i < 400; i++) {
    if (await fetch(`${s.url}/readyz`).then((r) => r.ok, () => false)) return s;
    if (s.child.exitCode !== null) break;
    await sleep(50);
  }
  s.child.kill("SIGKILL");
  throw new Error(`serve did not become ready:\n${s.out}`);
}

const alive = (s: Serve) => s.child.exitCode === null && s.child.signalCode === null;
const api = (s: Serve, method: string, path: string) => fetch(`${s.url}${path}`, { method, headers: { authorization: `Bearer ${API_KEY}` } });

/** Run the suite; resolves with its figures (throws only when the set-up fails). */
export async function runChaos(o: ChaosOptions): Promise<ChaosFigures> {
  const t0 = performance.now();
  const log = (line: string) => o.log?.(`${((performance.now() - t0) / 1000).toFixed(1)} s ${line}`);
  const instances = o.instances ?? 4;
  const dir = mkdtempSync(join(tmpdir(), "gk-chaos-"));
  const cleanups: Array<() => Promise<unknown>> = [async () => rmSync(dir, { recursive: true, force: true })];
  const procs: Serve[] = [];
  try {
    const pgc = await startPrivatePostgres();
    cleanups.unshift(() => pgc.destroy());
    const as = await startAuthServer({ accessTokenTtlSeconds: o.accessTokenTtlSeconds, clients: [{ clientId: "chaos", clientSecret: "chaos-client-secret", redirectUris: ["http://127.0.0.1:1/cb"] }] });
    cleanups.unshift(() => as.close());
    const proxy = await startFaultProxy(new URL(as.tokenEndpoint).origin);
    cleanups.unshift(() => proxy.close());
    const receiver = await startReceiver();
    cleanups.unshift(() => receiver.close());
    const sql = new pg.Client({ connectionString: pgc.url });
    sql.on("error", () => undefined);

    // Set-up: provider through the proxy, real grants, integrations taking unsigned webhooks.
    const encryptionKey = testKey();
    const setup = await createGrantkeeper({ databaseUrl: pgc.url, encryptionKey });
    await setup.providers.put("acme", { authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: proxy.url + new URL(as.tokenEndpoint).pathname, clientId: "chaos", clientSecret: "chaos-client-secret", scopes: ["openid"], quirks: { rotatesRefreshTokens: true } });
    const connectionIds: string[] = [];
    for (let i = 0; i < o.connections; i++) {
      const g = await issueGrant(as, { clientId: "chaos", clientSecret: "chaos-client-secret", redirectUri: "http://127.0.0.1:1/cb" }, { accountId: `user-${i}` });
      const { connection } = await setup.connections.storeGrant({ providerId: "acme", entityId: `user-${i}`, source: "import", tokens: { accessToken: g.accessToken, tokenType: "Bearer", refreshToken: g.refreshToken, expiresInSeconds: g.expiresIn } });
      connectionIds.push(connection.id);
    }
    const integrationIds: string[] = [];
    for (let i = 0; i < o.integrations; i++) {
      const { integration } = await setup.integrations.create({ name: `chaos-${i}`, entityId: `user-${i % o.connections}`, connectionIds: [connectionIds[i % o.connections]!], delivery: { url: `${receiver.url}/hook` }, webhook: { signing: "none" } });
      integrationIds.push(integration.id);
    }
    await setup.close();
    log(`set up: ${o.connections} grants, ${o.integrations} integrations`);

    const config = join(dir, "grantkeeper.yaml");
    const r = { ...REFRESH, timeoutSeconds: o.refreshTimeoutSeconds };
    writeFileSync(config, `refresh:\n${Object.entries(r).map(([k, v]) => `  ${k}: ${v}`).join("\n")}\nscheduler:\n  maxSleepSeconds: 1\njobs:\n  leaseSeconds: 10\nbreaker:\n  cooldownSeconds: 2\n`);
    const env = { GRANTKEEPER_DATABASE_URL: pgc.url, GRANTKEEPER_API_KEY: API_KEY, GRANTKEEPER_ENCRYPTION_KEY: encryptionKey, GRANTKEEPER_CONFIG: config, GRANTKEEPER_LOG_LEVEL: "warn" };
    procs.push(...(await Promise.all(Array.from({ length: instances }, () => serve(env)))));
    cleanups.unshift(async () => procs.forEach((p) => p.child.exitCode === null && p.child.kill("SIGKILL")));
    await sql.connect();
    log(`${instances} serve processes up`);

    // Webhook load for cases 1 and 2: ids in the body; status counted per phase.
    const wh = { accepted: [] as string[], answered503: 0, acceptedWhileDown: 0, other: {} as Record<string, number> };
    let storeDown = false;
    let sending = true;
    let seq = 0;
    const sendOne = async () => {
      const id = `w${seq++}`;
      const p = procs[seq % procs.length]!;
      if (!alive(p)) return;
      const downAtStart = storeDown;
      try {
        const res = await fetch(`${p.url}/v1/webhooks/${integrationIds[seq % integrationIds.length]}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id }) });
        await res.arrayBuffer();
        if (res.status === 202) {
          wh.accepted.push(id);
          if (downAtStart && storeDown) wh.acceptedWhileDown++;
        } else if (res.status === 503) wh.answered503++;
        else wh.other[res.status] = (wh.other[res.status] ?? 0) + 1;
      } catch {
        wh.other.network = (wh.other.network ?? 0) + 1;
      }
    };
    const sender = (async () => {
      while (sending) {
        void sendOne();
        await sleep(1000 / o.webhooksPerSecond);
      }
    })();

    // Case 1: token-endpoint chaos.
    const modes: FaultMode[] = ["pass", "pass", "503", "html500", "reset", "hang", "429", "slowBody"];
    // Slow bodies forward the real answer, trickled over a quarter of the timeout (at most 2 s): slow but in time.
    // (One trickled past the timeout after the provider rotated would lose the grant: the limit docs/reliability.md states.)
    const slowBody = { durationMs: Math.min(2_000, (r.timeoutSeconds * 1000) / 4) };
    const callsBefore = proxy.requests();
    const chaosStart = performance.now();
    while (performance.now() - chaosStart < o.chaosMs) {
      const m = modes[Math.floor(Math.random() * modes.length)]!;
      proxy.setMode(m, { retryAfterSeconds: 1, slowBody });
      await sleep(500);
    }
    proxy.setMode("pass");
    const tokenCalls = proxy.requests() - callsBefore;
    // A grant is due every (lifetime − margin); the jitter only moves it earlier.
    const dueRefreshes = o.connections * Math.ceil(o.chaosMs / 1000 / Math.max(1, o.accessTokenTtlSeconds - r.marginSeconds - r.jitterSeconds));
    const inError = Number((await sql.query("select count(*) as n from connections where state = 'error'")).rows[0].n);
    // Calls that were hanging when the chaos stopped end as timeouts first.
    await sleep(r.timeoutSeconds * 1000 + 1_000);
    // The chaos may have opened the provider's token-endpoint breaker (issue 12): refreshes are deferred until its
    // half-open probe succeeds, one cooldown (2 s here) after the endpoint is healthy again. Wait for it to close.
    for (let waited = 0; waited < 30_000; waited += 250) {
      const b = await sql.query("select state from provider_breakers where provider_id = 'acme'");
      if (b.rows.length === 0 || b.rows[0].state !== "open") break;
      await sleep(250);
    }
    // Every connection refreshes afterwards: no refresh token was lost.
    const lost: string[] = [];
    await Promise.all(
      connectionIds.map(async (id, i) => {
        // The first call may join another instance's attempt (and report its outcome); the second is this one's own.
        for (let attempt = 0; attempt < 2; attempt++) {
          const res = await api(procs[(i + attempt) % procs.length]!, "POST", `/v1/connections/${id}/refresh`);
          const c = (await res.json()) as { state?: string };
          if (res.status === 200 && c.state === "ready") return;
        }
        lost.push(id);
      }),
    );
    const lostAfterwards = lost.length;
    // Why each lost one was lost: its history, oldest first (types and codes only).
    for (const id of lost.slice(0, 5)) {
      const h = await sql.query("select type, code, detail from connection_events where connection_id = $1 order by id", [id]);
      log(`lost ${id}: ${h.rows.map((e: { type: string; code: string | null; detail: string | null }) => `${e.type}${e.code ? `(${e.code}${e.detail && e.detail.includes("durationMs") ? ` ${/"durationMs":(\d+)/.exec(e.detail)?.[1]}ms` : ""})` : ""}`).join(" → ")}`);
    }
    const integrationsNotEnabled = Number((await sql.query("select count(*) as n from integrations where status <> 'ENABLED' and id = any($1)", [integrationIds])).rows[0].n);
    log(`case 1: ${tokenCalls} token calls for ≤ ${dueRefreshes} due refreshes; ${inError} in error; ${lostAfterwards} lost`);

    // Case 2: PostgreSQL stopped during the webhook load.
    // "Down" = from the moment pg_ctl reports it stopped until we ask it to start: a 202 sent and answered
    // inside that window would be a webhook accepted without a store.
    await pgc.stop();
    storeDown = true;
    const downStart = performance.now();
    await sleep(o.pgDownMs);
    storeDown = false;
    await pgc.start();
    const back = performance.now();
    await Promise.all(
      procs.map(async (p) => {
        for (let i = 0; i < 400 && !(await fetch(`${p.url}/readyz`).then((x) => x.status === 200, () => false)); i++) await sleep(25);
      }),
    );
    const readyAgainMs = Math.round(performance.now() - back);
    const downMs = Math.round(back - downStart);
    await sleep(1_000);
    sending = false;
    await sender;
    await sql.end();
    const sql2 = new pg.Client({ connectionString: pgc.url });
    sql2.on("error", () => undefined);
    await sql2.connect();
    cleanups.unshift(() => sql2.end());
    const processesAlive = procs.filter(alive).length;
    for (let i = 0; i < 200; i++) {
      const delivered = new Set(receiver.requests.map((q) => (JSON.parse((JSON.parse(q.body) as { body: string }).body) as { id: string }).id));
      if (wh.accepted.every((id) => delivered.has(id))) break;
      await sleep(100);
    }
    const deliveredIds = new Set(receiver.requests.map((q) => (JSON.parse((JSON.parse(q.body) as { body: string }).body) as { id: string }).id));
    log(`case 2: down ${downMs} ms, ready again after ${readyAgainMs} ms, ${processesAlive}/${procs.length} alive`);

    // Case 3: kill -9 of an instance mid-refresh.
    const victims = connectionIds.slice(0, o.killedRefreshes);
    const victim = procs[0]!;
    proxy.setMode("hang");
    const callsAtHang = proxy.requests();
    for (const id of victims) void api(victim, "POST", `/v1/connections/${id}/refresh`).catch(() => undefined);
    for (let i = 0; i < 200 && proxy.requests() - callsAtHang < victims.length; i++) await sleep(25);
    const victimExited = new Promise((r) => victim.child.once("exit", r));
    victim.child.kill("SIGKILL");
    const killedAt = performance.now();
    await victimExited;
    proxy.setMode("pass");
    // The leases free themselves at their TTL (timeout + 5 s); then another instance refreshes.
    for (let i = 0; i < 600; i++) {
      const held = Number((await sql2.query("select count(*) as n from connections where id = any($1) and lease_owner is not null and lease_until > $2", [victims, Date.now()])).rows[0].n);
      if (held === 0) break;
      await sleep(50);
    }
    const leaseFreedAfterMs = Math.round(performance.now() - killedAt);
    let refreshedElsewhere = 0;
    await Promise.all(
      victims.map(async (id) => {
        const res = await api(procs[1]!, "POST", `/v1/connections/${id}/refresh`);
        if (res.status === 200 && ((await res.json()) as { state: string }).state === "ready") refreshedElsewhere++;
      }),
    );
    log(`case 3: leases free ${leaseFreedAfterMs} ms after the kill; ${refreshedElsewhere}/${victims.length} refreshed elsewhere`);

    // Case 4: rotation race from every live instance.
    const live = procs.filter(alive);
    const raced = connectionIds.slice(o.killedRefreshes, o.killedRefreshes + o.racedConnections);
    await Promise.all(raced.flatMap((id) => live.map((p) => api(p, "POST", `/v1/connections/${id}/refresh`).then((x) => x.arrayBuffer()))));
    const invalidGrant = Number((await sql2.query("select count(*) as n from connection_events where connection_id = any($1) and code = 'invalid_grant' and type <> 'adopted'", [raced])).rows[0].n);
    const racedInError = Number((await sql2.query("select count(*) as n from connections where id = any($1) and state = 'error'", [raced])).rows[0].n);
    log(`case 4: ${raced.length} connections × ${live.length} instances: ${invalidGrant} invalid_grant, ${racedInError} in error`);

    return {
      tokenChaos: { connections: o.connections, modes: [...new Set(modes)], tokenCalls, dueRefreshes, maxRetries: r.maxRetries, inError, lostAfterwards, integrationsNotEnabled },
      webhooks: { accepted: wh.accepted.length, answered503: wh.answered503, acceptedWhileDown: wh.acceptedWhileDown, delivered: wh.accepted.filter((id) => deliveredIds.has(id)).length, otherStatuses: wh.other },
      pgRestart: { downMs, processesAlive, readyAgainMs },
      kill9: { refreshesInFlight: victims.length, refreshedElsewhere, lost: victims.length - refreshedElsewhere, leaseFreedAfterMs },
      rotationRace: { connections: raced.length, forcedRefreshes: raced.length * live.length, invalidGrant, inError: racedInError },
    };
  } catch (e) {
    for (const p of procs) if (p.out) log(`--- serve ${p.url} (exit ${p.child.exitCode}) ---\n${p.out.slice(-2000)}`);
    throw e;
  } finally {
    for (const c of cleanups) await c().catch(() => undefined);
  }
}

/** `npm run chaos`: the full run; prints the figures as JSON. */
async function main(): Promise<void> {
  const figures = await runChaos({
    chaosMs: 60_000,
    pgDownMs: 5_000,
    connections: 200,
    integrations: 20,
    accessTokenTtlSeconds: 30,
    webhooksPerSecond: 20,
    refreshTimeoutSeconds: 15,
    killedRefreshes: 20,
    racedConnections: 50,
    log: (l) => process.stderr.write(`[chaos] ${l}\n`),
  });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.dirname, "chaos.js")) await main();
