/**
 * Drives oidc-provider's devInteractions (login + consent pages) headlessly with
 * plain `fetch`, a manual cookie jar and `redirect: "manual"`.
 */

/** Options for {@link completeLogin}. */
export interface CompleteLoginOptions {
  /** Account id typed into the login form; becomes the `sub`. Default "user-1". */
  accountId?: string;
  /**
   * Origin of the authorization server. Normally auto-detected (the first URL
   * carrying `client_id` plus `response_type`/`request_uri`, or the first page
   * with an interaction form); pass it if your flow defeats that heuristic.
   */
  authServerOrigin?: string;
  /**
   * The browser's cookie jar. Pass one to keep the cookies the flow set —
   * grantkeeper binds the OAuth `state` to the browser that opened the connect
   * link with a cookie, so the callback must be delivered with the same jar
   * (see {@link browserFetch}). Default: a fresh jar, thrown away.
   */
  jar?: CookieJar;
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

/** A deliberately small cookie jar: one host-only jar per origin, Path-aware, honours deletion. One jar = one browser. */
export class CookieJar {
  private readonly cookies = new Map<string, StoredCookie[]>();

  store(url: URL, setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const attr of attrs) {
        const [k = '', v = ''] = attr.split('=').map((s) => s.trim());
        const key = k.toLowerCase();
        if (key === 'path' && v.startsWith('/')) path = v;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const list = (this.cookies.get(url.origin) ?? []).filter((c) => !(c.name === name && c.path === path));
      if (!expired) list.push({ name, value, path });
      this.cookies.set(url.origin, list);
    }
  }

  header(url: URL): string | undefined {
    const matching = (this.cookies.get(url.origin) ?? [])
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }
}

function decodeEntities(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_m, d: string) => String.fromCharCode(Number(d)))
    .replace(/&#x([0-9a-f]+);/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    out[(m[1] ?? '').toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? '');
  }
  return out;
}

interface PostForm {
  action: URL;
  fields: URLSearchParams;
}

/** Finds the first POST form on the page and fills it in (login/password get the account id / a dummy). */
function findPostForm(html: string, pageUrl: URL, accountId: string): PostForm | undefined {
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1] ?? '');
    if ((attrs.method ?? 'get').toLowerCase() !== 'post') continue;
    const fields = new URLSearchParams();
    for (const input of (m[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1] ?? '');
      if (!a.name) continue;
      if (a.name === 'login') fields.set('login', accountId);
      else if (a.name === 'password') fields.set('password', 'test-password');
      else fields.set(a.name, a.value ?? '');
    }
    return { action: new URL(attrs.action ?? pageUrl.href, pageUrl), fields };
  }
  return undefined;
}

function snippet(html: string): string {
  const body = /<body[^>]*>([\s\S]*?)<\/body>/i.exec(html)?.[1] ?? html;
  return body.replace(/<style[\s\S]*?<\/style>/gi, '').replace(/\s+/g, ' ').trim().slice(0, 1500);
}

function looksLikeAuthorizationRequest(url: URL): boolean {
  const q = url.searchParams;
  return q.has('client_id') && (q.has('response_type') || q.has('request_uri'));
}

/**
 * Completes an authorization-code login against the test authorization server
 * (see `startAuthServer`) as a "user" would: follows redirects (including a
 * first hop from a client app's own "/connect"-style URL on another origin),
 * submits the devInteractions login form (`prompt=login`, `login`, `password`)
 * and consent form (`prompt=consent`), and stops at the first redirect that
 * leaves the authorization server's origin. Resolves with that redirect's
 * Location (the client's redirect_uri carrying `code` and `state`, or `error`
 * if the server answered the client with an OAuth error) WITHOUT fetching it.
 * Throws an Error containing an HTML snippet if the server shows an error page.
 */
export async function completeLogin(authorizeUrl: string, opts: CompleteLoginOptions = {}): Promise<string> {
  const accountId = opts.accountId ?? 'user-1';
  let authOrigin = opts.authServerOrigin ? new URL(opts.authServerOrigin).origin : undefined;
  const jar = opts.jar ?? new CookieJar();
  let url = new URL(authorizeUrl);
  let form: URLSearchParams | undefined;
  const trail: string[] = [];

  for (let hop = 0; hop < 25; hop += 1) {
    if (!authOrigin && looksLikeAuthorizationRequest(url)) authOrigin = url.origin;
    trail.push(`${form ? 'POST' : 'GET'} ${url.href}`);
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method: form ? 'POST' : 'GET', body: form, headers, redirect: 'manual' });
    jar.store(url, res.headers.getSetCookie());

    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      const location = res.headers.get('location');
      if (!location) throw new Error(`completeLogin: ${res.status} without Location at ${url.href}`);
      const next = new URL(location, url);
      if (authOrigin && url.origin === authOrigin && next.origin !== authOrigin) return next.href;
      url = next;
      form = undefined;
      continue;
    }

    const html = await res.text();
    if (res.status >= 400) {
      throw new Error(`completeLogin: HTTP ${res.status} at ${url.href}: ${snippet(html)}\nTrail:\n${trail.join('\n')}`);
    }
    const next = findPostForm(html, url, accountId);
    if (!next) {
      throw new Error(`completeLogin: page at ${url.href} (HTTP ${res.status}) has no form to submit: ${snippet(html)}`);
    }
    authOrigin ??= url.origin;
    url = next.action;
    form = next.fields;
  }
  throw new Error(`completeLogin: too many hops:\n${trail.join('\n')}`);
}

/**
 * A request as the browser holding `jar` makes it: its cookies for the URL are
 * sent, and the cookies the answer sets are kept. Redirects are not followed.
 */
export async function browserFetch(jar: CookieJar, url: string | URL, init: { headers?: Record<string, string> } = {}): Promise<Response> {
  const u = new URL(url);
  const cookie = jar.header(u);
  const res = await fetch(u, { headers: { ...init.headers, ...(cookie ? { cookie } : {}) }, redirect: 'manual' });
  jar.store(u, res.headers.getSetCookie());
  return res;
}
