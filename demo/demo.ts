/**
 * `npm run demo`: grantkeeper's main job on real input, in about a minute, with
 * no provider account. It starts a real OAuth 2.0 authorization server
 * (panva's oidc-provider: login + consent pages, PKCE, refresh-token
 * rotation, 20 s access tokens) behind a fault-injecting proxy, runs
 * `grantkeeper serve` as a child process on a throwaway SQLite store, and shows:
 *   1. a grant connected through the provider's real login (code + PKCE + state);
 *   2. a proactive refresh ~10 s before the access token expires;
 *   3. a token endpoint outage (503, then connection resets) ridden out as
 *      `degraded`, still handing out the token, `503 + Retry-After` once it has
 *      expired, never `error`, and back to `ready` when the provider returns;
 *   4. a revocation at the provider detected as `error` (`invalid_grant`),
 *      after which `POST …/token` answers `409 connection_error`;
 *   5. the connection's event timeline.
 * Everything runs on 127.0.0.1 and is cleaned up on success, failure or Ctrl-C.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startAuthServer, type AuthServer } from "../test/support/authServer.js";
import { startFaultProxy, type FaultProxy } from "../test/support/faultProxy.js";
import { freePort } from "../test/support/gk.js";
import { browserFetch, completeLogin, CookieJar } from "../test/support/login.js";
import { apiClient, DemoFailure, Narrator, pollUntil, sleep, spawnServe, type ApiAnswer, type ServeProcess } from "./narrate.js";

const TTL_S = 20;
const MARGIN_S = 10;
const CONFIG_YAML = `# written by the demo: short numbers so a whole lifecycle fits in a minute
refresh: {marginSeconds: ${MARGIN_S}, jitterSeconds: 0, timeoutSeconds: 2, minIntervalSeconds: 1, backoffBaseSeconds: 2, backoffMaxSeconds: 4, maxRetries: 2, recoveryIntervalSeconds: 6}
scheduler: {maxSleepSeconds: 1}
`;
const MAIN_JS = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");

const n = new Narrator();
const cleanups: Array<() => Promise<unknown> | unknown> = [];
let serve: ServeProcess | undefined;
let refreshAttempts = 0;
/** grantkeeper's raw log, and every secret we saw, to check none of them was logged. */
const logLines: string[] = [];
const secrets = new Set<string>();

/** The interesting fields of a Connection, times relative to the demo's start. */
function show(c: any): string {
  const err = c.lastError ? ` ${c.lastError.class}/${c.lastError.code}` : "";
  return `${c.state} failures=${c.consecutiveFailures} expires=${n.rel(c.expiresAt)} next=${n.rel(c.nextRefreshAt)} refreshed=${n.rel(c.lastRefreshedAt)}${err}`;
}

/** `POST /v1/connections/{id}/token`, phrased without the token itself. */
function showToken(r: ApiAnswer): string {
  if (r.status === 200) secrets.add(r.body.accessToken);
  if (r.status === 200) return `200, a ${r.body.tokenType} token (${String(r.body.accessToken).length} chars, not shown)`;
  const retry = r.headers.get("retry-after");
  return `${r.status} ${r.body?.code ?? ""}${retry ? `, Retry-After: ${retry}` : ""}`;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new DemoFailure(message);
}

async function main(): Promise<void> {
  n.say("grantkeeper demo: a real OAuth server, a flaky network, one grant kept alive.");
  n.step("Start an authorization server, a fault proxy and grantkeeper");
  const port = await freePort();
  const gkUrl = `http://127.0.0.1:${port}`;
  const clientSecret = randomBytes(24).toString("base64url");
  const as: AuthServer = await startAuthServer({
    accessTokenTtlSeconds: TTL_S,
    clients: [{ clientId: "demo-client", clientSecret, redirectUris: [`${gkUrl}/v1/oauth/callback`] }],
  });
  cleanups.push(() => as.close());
  n.say(`authorization server (oidc-provider) at ${as.issuer}, access tokens live ${TTL_S} s`);
  const proxy: FaultProxy = await startFaultProxy(as.issuer);
  cleanups.push(() => proxy.close());
  n.say(`fault proxy at ${proxy.url} in front of its token endpoint (mode: pass)`);

  const dir = mkdtempSync(join(tmpdir(), "grantkeeper-demo-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "grantkeeper.config.yaml"), CONFIG_YAML);
  const apiKey = `gk_demo_${randomBytes(24).toString("base64url")}`;
  secrets.add(apiKey).add(clientSecret);
  serve = spawnServe(
    MAIN_JS,
    {
      GRANTKEEPER_DATABASE_URL: `sqlite:${join(dir, "grantkeeper.db")}`,
      GRANTKEEPER_PORT: String(port),
      GRANTKEEPER_HOST: "127.0.0.1",
      GRANTKEEPER_API_KEY: apiKey,
      GRANTKEEPER_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      GRANTKEEPER_PUBLIC_URL: gkUrl,
      GRANTKEEPER_CONFIG: join(dir, "grantkeeper.config.yaml"),
    },
    n,
    (line, raw) => {
      logLines.push(raw);
      if (line.msg === "refresh attempt") refreshAttempts += 1;
    },
  );
  cleanups.unshift(() => serve?.stop());
  n.say(`grantkeeper serve (pid ${serve.child.pid}) on ${gkUrl}`);
  n.say(`  SQLite store and config in ${dir}`);
  n.say(`refresh ${MARGIN_S} s before expiry; backoff 2-4 s, 2 retries, then recovery every 6 s`);
  const guard = () => {
    const crash = serve?.crashed();
    if (crash) throw new DemoFailure(crash);
  };
  await pollUntil(
    "GET /readyz = 200",
    async () => {
      guard();
      const ok = await fetch(`${gkUrl}/readyz`).then((r) => r.ok, () => false);
      return ok ? true : undefined;
    },
    { everyMs: 250, maxTries: 60 },
  );
  n.say("GET /readyz → 200: store migrated, scheduler running");
  const api = apiClient(gkUrl, apiKey);
  /** GET the connection, failing the demo if grantkeeper died. */
  const get = async (id: string) => {
    guard();
    const r = await api("GET", `/v1/connections/${id}`);
    check(r.status === 200, `GET /v1/connections/${id} answered ${r.status}`);
    return r.body;
  };

  n.step("Define the provider");
  const put = await api("PUT", "/v1/providers/demo", {
    displayName: "Demo (oidc-provider)",
    issuer: as.issuer,
    authorizationEndpoint: as.authorizationEndpoint,
    tokenEndpoint: `${proxy.url}/token`,
    revocationEndpoint: as.revocationEndpoint,
    clientId: "demo-client",
    clientSecret,
    scopes: ["openid"],
  });
  check(put.status === 200, `PUT /v1/providers/demo answered ${put.status}: ${JSON.stringify(put.body)}`);
  check(!JSON.stringify(put.body).includes(clientSecret), "the client secret came back in the provider");
  n.say(`PUT /v1/providers/demo → 200, hasClientSecret=${put.body.hasClientSecret} (stored encrypted, never returned)`);
  n.say(`token endpoint goes through the proxy: ${put.body.tokenEndpoint}`);

  n.step("Connect alice through the provider's real login and consent");
  const session = await api("POST", "/v1/connect-sessions", { providerId: "demo", entityId: "alice" });
  check(session.status === 201, `POST /v1/connect-sessions answered ${session.status}: ${JSON.stringify(session.body)}`);
  n.say(`POST /v1/connect-sessions → 201, a single-use link for alice's browser, expires ${n.rel(session.body.expiresAt)}`);
  const browser = new CookieJar();
  const start = await browserFetch(browser, session.body.connectUrl);
  const location = start.headers.get("location");
  check(start.status === 302 && location !== null, `the connect link answered ${start.status} without a redirect`);
  const authUrl = new URL(location!);
  const p = authUrl.searchParams;
  n.say(`the browser opens the link → 302 to ${authUrl.origin}${authUrl.pathname}, with a cookie binding the state to this browser`);
  n.say(`  response_type=${p.get("response_type")} code_challenge_method=${p.get("code_challenge_method")} state=(${p.get("state")?.length} chars)`);
  const callback = await completeLogin(location!, { accountId: "alice", jar: browser });
  n.say(`logged in as alice, consented; provider redirects to ${new URL(callback).pathname}?code=…&state=…`);
  const cb = await browserFetch(browser, callback, { headers: { accept: "application/json" } });
  const cbBody = (await cb.json()) as any;
  check(cb.status === 200 && cbBody.status === "connected", `callback answered ${cb.status}: ${JSON.stringify(cbBody)}`);
  const id: string = cbBody.connection.id;
  n.say(`callback → ${cbBody.status}: ${id}`);
  n.say(`  ${show(cbBody.connection)}`);

  n.step(`Proactive refresh, ${MARGIN_S} s before expiry (no caller asks for it)`);
  const first = await get(id);
  const oldExpiry = Date.parse(first.expiresAt);
  n.say(`access token expires ${n.rel(oldExpiry)}; scheduled refresh ${n.rel(first.nextRefreshAt)}. Polling once a second…`);
  let last = "";
  const refreshed = await pollUntil(
    "a proactive refresh (lastRefreshedAt set)",
    async () => {
      const c = await get(id);
      const now = `${c.state} ${c.expiresAt} ${c.lastRefreshedAt}`;
      if (now !== last) n.say(`  ${show(c)}`);
      last = now;
      return c.lastRefreshedAt ? c : undefined;
    },
    { maxTries: 40 },
  );
  const early = (oldExpiry - Date.parse(refreshed.lastRefreshedAt)) / 1000;
  n.say(`refreshed at ${n.rel(refreshed.lastRefreshedAt)}, ${early.toFixed(1)} s before the old token's expiry (${n.rel(oldExpiry)})`);
  n.say(`new expiry ${n.rel(refreshed.expiresAt)}; the provider rotated the refresh token too`);
  check(early > 0 && early <= MARGIN_S + 2, `refresh happened ${early} s before expiry, expected about ${MARGIN_S} s`);

  n.step("Outage: the token endpoint answers 503, then resets connections");
  proxy.setMode("503");
  n.say("proxy → 503 {error: temporarily_unavailable}; waiting for the next scheduled refresh");
  let seen = -1;
  /** Poll until `done`, printing each new failure count; `error` during an outage fails the demo. */
  const watchOutage = (what: string, done: (c: any) => boolean, maxTries: number) =>
    pollUntil(
      what,
      async () => {
        const c = await get(id);
        check(c.state !== "error", `connection went to error during a transient outage: ${show(c)}`);
        if (c.consecutiveFailures !== seen) n.say(`  ${show(c)}`);
        seen = c.consecutiveFailures;
        return done(c) ? c : undefined;
      },
      { maxTries },
    );
  await watchOutage("state degraded", (c) => c.state === "degraded", 30);
  n.say("degraded, not error: a 503 says nothing about the grant");
  proxy.setMode("reset");
  n.say("proxy → reset (TCP connections destroyed); grantkeeper backs off and retries");
  const degraded = await watchOutage("more failures, now network_error", (c) => c.consecutiveFailures >= 3 && c.lastError?.code === "network_error", 15);
  check(degraded.usable === true && degraded.lastError.class === "transient", "degraded connection should be usable with a transient error");
  n.say(`still usable=${degraded.usable}: failures climb, lastError is ${degraded.lastError.class}/${degraded.lastError.code}`);
  const expiry = Date.parse(degraded.expiresAt);
  const during = await api("POST", `/v1/connections/${id}/token`);
  const left = ((expiry - Date.now()) / 1000).toFixed(1);
  n.say(`POST /token (access token valid ${left} s more) → ${showToken(during)}`);
  check(during.status === 200 || during.status === 503, `POST /token during the outage answered ${during.status}`);
  if (during.status === 200) {
    n.say(`waiting for the access token to expire at ${n.rel(expiry)} (the outage goes on)…`);
    await sleep(Math.max(0, expiry - Date.now()) + 500);
  }
  const expired = await api("POST", `/v1/connections/${id}/token`);
  n.say(`POST /token after expiry → ${showToken(expired)}`);
  n.say(`  "${expired.body?.detail}"`);
  check(expired.status === 503 && expired.headers.has("retry-after"), `POST /token on an expired token during an outage answered ${expired.status}, expected 503 + Retry-After`);
  n.say("the grant is not dead: the caller is told to retry later, not to reconnect the user");
  proxy.setMode("pass");
  n.say("proxy → pass: the provider is back; waiting for the next recovery attempt");
  const back = await pollUntil("back to ready", async () => {
    const c = await get(id);
    return c.state === "ready" ? c : undefined;
  }, { maxTries: 20 });
  n.say(`  ${show(back)}`);
  n.say(`recovered: state=ready, failures reset to 0, lastError cleared: ${back.lastError === undefined}`);

  n.step("Revocation: the user revokes the app at the provider");
  const destroyed = await as.revokeAllGrants();
  n.say(`authorization server destroyed ${destroyed} grant(s); the next refresh will get invalid_grant`);
  const dead = await pollUntil("state error with invalid_grant", async () => {
    const c = await get(id);
    return c.state === "error" ? c : undefined;
  }, { maxTries: 30 });
  n.say(`  ${show(dead)}`);
  check(dead.lastError?.code === "invalid_grant" && dead.lastError.class === "permanent", `expected lastError invalid_grant, got ${JSON.stringify(dead.lastError)}`);
  n.say(`usable=${dead.usable}, next=${n.rel(dead.nextRefreshAt)}: no more calls on a dead grant`);
  const refused = await api("POST", `/v1/connections/${id}/token`);
  n.say(`POST /token → ${showToken(refused)}`);
  n.say(`  "${refused.body?.detail}"`);
  check(refused.status === 409 && refused.body?.code === "connection_error", `POST /token on a dead grant answered ${refused.status}, expected 409 connection_error`);

  n.step("The connection's event history (GET /v1/connections/{id}/events)");
  const events = (await api("GET", `/v1/connections/${id}/events`)).body.items as any[];
  for (const e of [...events].sort((a, b) => a.id - b.id)) {
    const why = (e.code ? `${e.class}/${e.code}` : "").padEnd(24);
    let text = String(e.message).replace(/ \([A-Z_]+\)$/, ""); // drop low-level error names like (UND_ERR_SOCKET)
    if (text.length > 50) text = text.split(";")[0]!.slice(0, 50);
    n.line(`  ${n.rel(e.at).padStart(7)}  ${e.type.padEnd(16)} ${why} ${text}`);
  }

  n.step("Summary");
  n.say(`token endpoint: ${as.tokenRequests()} calls reached the provider (${as.refreshRequests()} refreshes), ${proxy.requests()} went through the proxy`);
  const leaked = [...secrets].filter((s) => logLines.some((l) => l.includes(s)));
  check(leaked.length === 0, `${leaked.length} secret(s) appeared in grantkeeper's log`);
  n.say(`grantkeeper logged ${refreshAttempts} refresh attempts in ${logLines.length} lines;`);
  n.say(`none holds the API key, the client secret or the ${secrets.size - 2} access token(s) handed out`);
  n.say("connected → refreshed early → degraded, still usable → ready → revoked → error");
  n.say(`done in ${n.elapsed()} s`);
}

let cleaning: Promise<void> | undefined;
/** Stop grantkeeper, close the servers, remove the temp dir; once, in order, errors swallowed. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of cleanups) await Promise.resolve().then(c).catch(() => undefined);
  })();
  return cleaning;
}

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    n.fail(`interrupted (${signal}); cleaning up`);
    void cleanup().then(() => process.exit(130));
  });
}

try {
  await main();
  await cleanup();
  n.say("cleaned up: grantkeeper stopped, servers closed, temp dir removed");
} catch (e) {
  if (interrupted) await new Promise(() => {}); // the signal handler cleans up and exits
  n.fail(e instanceof DemoFailure ? e.message : ((e as Error).stack ?? String(e)));
  await cleanup();
  process.exit(1);
}
