/**
 * Connect sessions end to end (issue 10 items 2-3, api-contract.md v1.1), on
 * real sockets with panva's oidc-provider and two browsers (cookie jars):
 * the browser that opened a link completes it; another browser delivering
 * the same callback is refused (`400 state_not_bound`) and nothing is
 * stored. A link is single use (`410 connect_link_used`), expires
 * (`410 connect_link_expired`), cannot have its scopes changed by the query,
 * holds a bounded number of pending states however often it is opened, and
 * every malformed callback is a 400 that stores nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthServer, type AuthServer } from "../support/authServer.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { connectInBrowser } from "../support/connect.js";
import { internalsOf } from "../../src/internals.js";
import { startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { browserFetch, completeLogin, CookieJar } from "../support/login.js";

const JSON_ACCEPT = { accept: "application/json" };
const HTML_ACCEPT = { accept: "text/html,application/xhtml+xml" };

describe("connect sessions", () => {
  let db: TestDatabase;
  let as: AuthServer;
  let t: GrantkeeperUnderTest;

  /** Everything a connect could change. */
  async function snapshot(): Promise<string> {
    const d = internalsOf(t.gk).store.db;
    const [connections, sessions, states, events] = await Promise.all([
      d.selectFrom("connections").selectAll().orderBy("id").execute(),
      d.selectFrom("connect_sessions").selectAll().orderBy("id").execute(),
      d.selectFrom("oauth_states").selectAll().orderBy("state_hash").execute(),
      d.selectFrom("connection_events").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
    ]);
    return JSON.stringify({ connections, sessions, states, events: Number(events.n) });
  }

  /** Deliver `url` in `jar`'s browser and assert nothing changed in the store. */
  async function refusedWithoutChange(jar: CookieJar, url: string, headers: Record<string, string> = JSON_ACCEPT): Promise<Response> {
    const before = await snapshot();
    const res = await browserFetch(jar, url, { headers });
    const copy = new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
    expect(await snapshot()).toBe(before);
    return copy;
  }

  async function mint(body: Record<string, unknown>): Promise<{ id: string; connectUrl: string; expiresAt: string }> {
    const res = await t.api("POST", "/v1/connect-sessions", { providerId: "acme", ...body });
    expect(res.status).toBe(201);
    return res.body;
  }

  const connectionOf = async (entityId: string) => (await t.api("GET", `/v1/connections?entityId=${entityId}`)).body.items[0];
  const liveStatesOf = async (sessionId: string) =>
    Number(
      (
        await internalsOf(t.gk).store.db
          .selectFrom("oauth_states")
          .select((eb) => eb.fn.countAll<number>().as("n"))
          .where("session_id", "=", sessionId)
          .where("used_at", "is", null)
          .where("expires_at", ">", t.clock.now())
          .executeTakeFirstOrThrow()
      ).n,
    );

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db);
    as = await startAuthServer({ accessTokenTtlSeconds: 600, extraScopes: ["profile"], clients: [{ clientId: "c", clientSecret: "sessions-client-secret", redirectUris: [`${t.url}/v1/oauth/callback`] }] });
    t.secrets.add("sessions-client-secret");
    const put = await t.api("PUT", "/v1/providers/acme", { displayName: "Acme", issuer: as.issuer, authorizationEndpoint: as.authorizationEndpoint, tokenEndpoint: as.tokenEndpoint, clientId: "c", clientSecret: "sessions-client-secret", scopes: ["openid"] });
    expect(put.status).toBe(200);
  });

  afterAll(async () => {
    await t?.close();
    await as?.close();
    await db?.cleanup();
  });

  it("mints a link (201, 30 min by default) and refuses bad input with 422", async () => {
    const s = await mint({ entityId: "mint-1" });
    expect(s.id).toMatch(/^cs_/);
    expect(s.connectUrl).toMatch(new RegExp(`^${t.url}/v1/connect/acme\\?connectToken=gkcs_[A-Za-z0-9_-]{43}$`));
    expect(Date.parse(s.expiresAt)).toBe(t.clock.now() + 1_800_000);
    expect(Date.parse((await mint({ entityId: "mint-1", ttlSeconds: 86_400 })).expiresAt)).toBe(t.clock.now() + 86_400_000);
    const before = await snapshot();
    for (const [body, path] of [
      [{ entityId: "x", ttlSeconds: 86_401 }, "ttlSeconds"],
      [{ entityId: "x", ttlSeconds: 59 }, "ttlSeconds"],
      [{ entityId: "x", scopes: ["two words"] }, "scopes.0"],
      [{ entityId: "x", connectionConfig: { apiToken: "s3cr3t" } }, "connectionConfig.apiToken"],
      [{ entityId: "x", connectionConfig: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])) }, "connectionConfig"],
      [{ entityId: "x", extra: 1 }, "(root)"],
    ] as const) {
      const res = await t.api("POST", "/v1/connect-sessions", { providerId: "acme", ...body });
      expect({ path, status: res.status, code: res.body.code }).toEqual({ path, status: 422, code: "validation_failed" });
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    expect((await t.api("POST", "/v1/connect-sessions", { providerId: "nope", entityId: "x" })).body.code).toBe("provider_not_found");
    expect((await t.api("POST", "/v1/connect-sessions", { providerId: "acme", entityId: "x", returnTo: "https://evil.example.com/" })).body.code).toBe("invalid_return_to");
    expect(await snapshot()).toBe(before);
    expect((await mint({ entityId: "mint-2", connectionConfig: { subdomain: "acme-corp" } })).id).toMatch(/^cs_/);
  });

  it("the browser that opened the link completes it; another browser delivering the callback gets 400 state_not_bound and nothing is stored", async () => {
    const { connectUrl } = await mint({ entityId: "alice" });
    const alice = new CookieJar();
    const callback = await completeLogin(connectUrl, { accountId: "alice", jar: alice });
    expect(new URL(callback).searchParams.get("iss")).toBe(as.issuer);

    const other = new CookieJar();
    const refused = await refusedWithoutChange(other, callback);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as any).code).toBe("state_not_bound");
    const page = await refusedWithoutChange(other, callback, HTML_ACCEPT);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain("Please finish in the browser you started in");
    expect(await connectionOf("alice")).toBeUndefined();

    const done = await browserFetch(alice, callback, { headers: JSON_ACCEPT });
    expect(done.status).toBe(200);
    const body = (await done.json()) as any;
    expect(body).toMatchObject({ status: "connected", connection: { providerId: "acme", entityId: "alice", state: "pending", usable: true } });
    expect(done.headers.getSetCookie().join()).toMatch(/gk_connect_cs_[A-Za-z0-9]{26}=; Max-Age=0; Path=\/v1\/; HttpOnly; SameSite=Lax/);
  });

  it("a link is consumed by the first completed connect: 410 connect_link_used after, and a second tab stores nothing", async () => {
    const { connectUrl } = await mint({ entityId: "bob" });
    const browser = new CookieJar();
    const tab1 = await completeLogin(connectUrl, { accountId: "bob", jar: browser });
    const tab2 = await completeLogin(connectUrl, { accountId: "bob", jar: browser });
    expect((await browserFetch(browser, tab1, { headers: JSON_ACCEPT })).status).toBe(200);
    const version = (await internalsOf(t.gk).store.db.selectFrom("connections").select("token_version").where("entity_id", "=", "bob").executeTakeFirstOrThrow()).token_version;

    const second = await browserFetch(browser, tab2, { headers: JSON_ACCEPT });
    expect(second.status).toBe(410);
    expect(((await second.json()) as any).code).toBe("connect_link_used");
    expect((await internalsOf(t.gk).store.db.selectFrom("connections").select("token_version").where("entity_id", "=", "bob").executeTakeFirstOrThrow()).token_version).toBe(version);

    const again = await refusedWithoutChange(new CookieJar(), connectUrl);
    expect(again.status).toBe(410);
    expect(((await again.json()) as any).code).toBe("connect_link_used");
    const page = await browserFetch(new CookieJar(), connectUrl, { headers: HTML_ACCEPT });
    expect(page.status).toBe(410);
    expect(await page.text()).toContain("This link was already used");
  });

  it("a link expires: 302 one millisecond before expiresAt, 410 connect_link_expired at it", async () => {
    const { connectUrl, expiresAt } = await mint({ entityId: "carol", ttlSeconds: 60 });
    t.clock.set(Date.parse(expiresAt) - 1);
    expect((await browserFetch(new CookieJar(), connectUrl)).status).toBe(302);
    t.clock.set(Date.parse(expiresAt));
    const res = await refusedWithoutChange(new CookieJar(), connectUrl);
    expect(res.status).toBe(410);
    expect(((await res.json()) as any).code).toBe("connect_link_expired");
    const page = await browserFetch(new CookieJar(), connectUrl, { headers: HTML_ACCEPT });
    expect(page.status).toBe(410);
    expect(await page.text()).toContain("This link has expired");
  });

  it("asks for the scopes stored in the session: a scope (or entityId, or a mail client's utm_…) in the link's query changes nothing", async () => {
    const { connectUrl } = await mint({ entityId: "dave", scopes: ["openid"] });
    const tampered = `${connectUrl}&scope=${encodeURIComponent("openid profile admin")}&entityId=mallory&utm_source=newsletter`;
    const res = await browserFetch(new CookieJar(), tampered);
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get("location")!).searchParams.get("scope")).toBe("openid");
    const done = await connectInBrowser(tampered, { accountId: "dave" });
    expect(done.body.connection).toMatchObject({ entityId: "dave", scope: "openid" });
    expect(await connectionOf("mallory")).toBeUndefined();
  });

  // The cap is enforced on every open (evict, then insert, in one transaction), so 250 opens show the bound as well as 1,000 would, at a quarter of the commits.
  it("a link opened 250 times holds at most 5 pending states (not 250), and the newest still completes", async () => {
    const { id, connectUrl } = await mint({ entityId: "erin" });
    const browser = new CookieJar();
    const first = await browserFetch(browser, connectUrl);
    // Eight at a time, as a script hammering the link would: the cap holds under concurrency too.
    for (let i = 1; i < 250; i += 8) {
      const answers = await Promise.all(Array.from({ length: Math.min(8, 250 - i) }, () => browserFetch(browser, connectUrl)));
      for (const res of answers) expect(res.status).toBe(302);
    }
    expect(await liveStatesOf(id)).toBe(5);
    expect(browser.header(new URL(`${t.url}/v1/oauth/callback`))!.split(";")).toHaveLength(1);
    const oldState = new URL(first.headers.get("location")!).searchParams.get("state")!;
    const evicted = await browserFetch(browser, `${t.url}/v1/oauth/callback?state=${encodeURIComponent(oldState)}&code=x`, { headers: JSON_ACCEPT });
    expect(((await evicted.json()) as any).code).toBe("invalid_state");
    expect((await connectInBrowser(connectUrl, { accountId: "erin", jar: browser })).response.status).toBe(200);
  });

  describe("malformed callbacks: 400 invalid_callback (HTML for a browser, problem+json otherwise), nothing stored, the flow still completes after", () => {
    let browser: CookieJar;
    let callback: URL;

    beforeAll(async () => {
      const { connectUrl } = await mint({ entityId: "frank" });
      browser = new CookieJar();
      callback = new URL(await completeLogin(connectUrl, { accountId: "frank", jar: browser }));
    });

    const variant = (edit: (q: URLSearchParams) => void) => {
      const u = new URL(callback);
      edit(u.searchParams);
      return u.toString();
    };

    it.each([
      ["a repeated code", (q: URLSearchParams) => q.append("code", "other-code"), "repeated_parameter"],
      ["a repeated state", (q: URLSearchParams) => q.append("state", q.get("state")!), "repeated_parameter"],
      ["a repeated iss", (q: URLSearchParams) => q.append("iss", q.get("iss")!), "repeated_parameter"],
      ["an issuer mismatch (RFC 9207)", (q: URLSearchParams) => q.set("iss", "https://evil.example.com"), "issuer_mismatch"],
      ["an error response", (q: URLSearchParams) => (q.delete("code"), q.set("error", "access_denied"), q.set("error_description", "<b>denied</b>")), "authorization_error"],
      ["no code", (q: URLSearchParams) => q.delete("code"), "missing_code"],
      ["a hybrid-flow id_token", (q: URLSearchParams) => q.set("id_token", "x"), "invalid_response"],
    ] as const)("%s", async (_name, edit, reason) => {
      const url = variant(edit);
      const json = await refusedWithoutChange(browser, url);
      const text = await json.text();
      if (json.status !== 400) throw new Error(`${url} answered ${json.status}: ${text}`);
      expect(json.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      const problem = JSON.parse(text);
      expect(problem.code).toBe("invalid_callback");
      if (reason) expect(problem.reason).toBe(reason);
      const html = await refusedWithoutChange(browser, url, HTML_ACCEPT);
      expect(html.status).toBe(400);
      expect(html.headers.get("content-type")).toMatch(/^text\/html/);
      const page = await html.text();
      for (const leak of ["invalid_callback", "access_denied", "<b>denied</b>", "denied</b>", callback.searchParams.get("code")!]) expect(page).not.toContain(leak);
    });

    it("then the real callback completes", async () => {
      const res = await browserFetch(browser, callback.toString(), { headers: JSON_ACCEPT });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).connection.entityId).toBe("frank");
    });
  });

  it("a used, unknown or expired state is 400 invalid_state", async () => {
    const { connectUrl } = await mint({ entityId: "gina" });
    const browser = new CookieJar();
    const callback = await completeLogin(connectUrl, { accountId: "gina", jar: browser });
    const late = new CookieJar();
    const expired = await completeLogin((await mint({ entityId: "gina-late" })).connectUrl, { accountId: "gina", jar: late });
    expect((await browserFetch(browser, callback, { headers: JSON_ACCEPT })).status).toBe(200);
    const used = await refusedWithoutChange(browser, callback);
    expect({ status: used.status, code: ((await used.json()) as any).code }).toEqual({ status: 400, code: "invalid_state" });
    const unknown = await refusedWithoutChange(browser, `${t.url}/v1/oauth/callback?state=never-issued&code=x`);
    expect({ status: unknown.status, code: ((await unknown.json()) as any).code }).toEqual({ status: 400, code: "invalid_state" });
    t.clock.advance(600_000); // the state's lifetime (connect.stateTtlSeconds)
    const old = await refusedWithoutChange(late, expired);
    expect({ status: old.status, code: ((await old.json()) as any).code }).toEqual({ status: 400, code: "invalid_state" });
  });

  it("with returnTo, the browser goes back to the host app with status= and a stable error code", async () => {
    const returnTo = `${t.url}/app/connected?tab=integrations`;
    const ok = await mint({ entityId: "hank", returnTo });
    const done = await connectInBrowser(ok.connectUrl, { accountId: "hank" });
    expect(done.response.status).toBe(302);
    const back = new URL(done.response.headers.get("location")!);
    expect(back.origin + back.pathname).toBe(`${t.url}/app/connected`);
    expect(Object.fromEntries(back.searchParams)).toEqual({ tab: "integrations", status: "connected", connectionId: (await connectionOf("hank")).id });

    const denied = await mint({ entityId: "ivy", returnTo });
    const browser = new CookieJar();
    const callback = new URL(await completeLogin(denied.connectUrl, { accountId: "ivy", jar: browser }));
    callback.searchParams.delete("code");
    callback.searchParams.set("error", "access_denied");
    const res = await refusedWithoutChange(browser, callback.toString(), HTML_ACCEPT);
    expect(res.status).toBe(302);
    expect(Object.fromEntries(new URL(res.headers.get("location")!).searchParams)).toEqual({ tab: "integrations", status: "error", error: "invalid_callback", reason: "authorization_error", providerError: "access_denied" });
  });

  it("with the key, GET /v1/connect/{providerId}?entityId= mints a session and goes through its link, bound like any other", async () => {
    const res = await fetch(`${t.url}/v1/connect/acme?entityId=jack`, { headers: { authorization: `Bearer ${t.apiKey}` }, redirect: "manual" });
    expect(res.status).toBe(302);
    const link = res.headers.get("location")!;
    expect(link).toMatch(new RegExp(`^${t.url}/v1/connect/acme\\?connectToken=gkcs_`));
    expect(res.headers.getSetCookie()).toEqual([]);
    expect((await connectInBrowser(link, { accountId: "jack" })).body.connection.entityId).toBe("jack");
  });

  it("preflight hands out session links that work, once", async () => {
    const first = (await t.api("POST", "/v1/preflight", { entityId: "kim", providers: ["acme"] })).body;
    expect(first.providers[0]).toMatchObject({ providerId: "acme", usable: false, action: "connect" });
    const link = first.providers[0].connectUrl;
    expect(link).toMatch(new RegExp(`^${t.url}/v1/connect/acme\\?connectToken=gkcs_`));
    expect((await connectInBrowser(link, { accountId: "kim" })).response.status).toBe(200);
    expect((await t.api("POST", "/v1/preflight", { entityId: "kim", providers: ["acme"] })).body.providers[0]).toMatchObject({ usable: true, action: "none" });
    expect((await browserFetch(new CookieJar(), link)).status).toBe(410);
  });

  it("never logs a token, a link secret, a state or a code", async () => {
    const logs = t.logText();
    expect(logs).toContain("grant stored");
    for (const s of t.secrets) expect(logs.includes(s), "a secret leaked into the logs").toBe(false);
    expect(logs).not.toMatch(/connectToken|gkcs_|[?&](state|code)=/);
  });
});
