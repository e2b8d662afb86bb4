/**
 * The proxy's wire behaviour on real sockets: a provider that never answers
 * gives 504 within `proxy.timeoutSeconds` (not a call hanging forever), one
 * that refuses connections 502 (not 500), and 50 MB bodies go through both
 * ways as streams — each test makes the far end wait for the near end, so a
 * proxy that held a whole body would deadlock and fail, and a reader that
 * stops reading stops the provider's writes (bounded memory).
 */
import { createHash } from "node:crypto";
import { request, type IncomingMessage } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isGrantkeeperError } from "../../src/domain/errors.js";
import { contextOf } from "../../src/jobs/context.js";
import { testDatabase, type TestDatabase } from "../support/backend.js";
import { freePort, startGrantkeeper, type GrantkeeperUnderTest } from "../support/gk.js";
import { rawRequest, startUpstream, type Upstream } from "../support/upstream.js";
import { waitFor } from "../support/wait.js";

const MB = 1024 * 1024;
const TOTAL = 50 * MB;
const CHUNK = 64 * 1024;
const TIMEOUT_MS = 400;

describe("proxy wire: timeouts, unreachable, streaming", () => {
  let db: TestDatabase;
  let t: GrantkeeperUnderTest;
  let up: Upstream;
  let silent: Server;
  const sockets = new Set<Socket>();
  const ids: Record<string, string> = {};
  const key = () => ({ authorization: `Bearer ${t.apiKey}` });

  async function connection(provider: string, apiBaseUrl: string): Promise<string> {
    expect((await t.api("PUT", `/v1/providers/${provider}`, { authorizationEndpoint: "http://127.0.0.1:1/auth", tokenEndpoint: "http://127.0.0.1:1/token", clientId: "c", clientSecret: "s", apiBaseUrl })).status).toBe(200);
    return (await t.api("POST", "/v1/connections", { providerId: provider, entityId: "e", accessToken: `at-${provider}`, refreshToken: "rt", expiresIn: 3600 })).body.id;
  }

  beforeAll(async () => {
    db = await testDatabase();
    t = await startGrantkeeper(db, { extra: { proxy: { timeoutMs: TIMEOUT_MS } } });
    up = await startUpstream({ takeBody: true });
    // Accepts connections and reads requests, never answers.
    silent = createServer((s) => {
      sockets.add(s);
      s.on("data", () => undefined);
      s.on("error", () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    ids.stream = await connection("streamy", `${up.origin}/v2`);
    ids.silent = await connection("silent", `http://127.0.0.1:${(silent.address() as { port: number }).port}/v1`);
    ids.refused = await connection("refused", `http://127.0.0.1:${await freePort()}/v1`);
  });

  afterAll(async () => {
    await t?.close();
    await up?.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent?.close(() => r()));
    await db?.cleanup();
  });

  it("a provider that never answers: 504 upstream_timeout after proxy.timeoutSeconds, through the proxy and ctx.fetch", async () => {
    const t0 = performance.now();
    const res = await rawRequest(t.url, "GET", `/v1/proxy/${ids.silent}/x`, key());
    const elapsedMs = performance.now() - t0;
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toMatchObject({ code: "upstream_timeout", status: 504 });
    expect(elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(elapsedMs).toBeLessThan(TIMEOUT_MS + 10_000);
    const e = await contextOf(t.gk, [ids.silent!]).fetch(ids.silent!, "/x").then(() => undefined, (err: unknown) => err);
    expect(isGrantkeeperError(e, "upstream_timeout")).toBe(true);
  });

  it("a provider that refuses connections: 502 upstream_unreachable, through the proxy and ctx.fetch", async () => {
    const res = await rawRequest(t.url, "GET", `/v1/proxy/${ids.refused}/x`, key());
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ code: "upstream_unreachable", reason: "ECONNREFUSED" });
    const e = await contextOf(t.gk, [ids.refused!]).fetch(ids.refused!, "/x").then(() => undefined, (err: unknown) => err);
    expect(isGrantkeeperError(e, "upstream_unreachable")).toBe(true);
  });

  it("streams a 50 MB upload: the provider gets the first megabyte before the client sends the rest", async () => {
    let received = 0;
    const hash = createHash("sha256");
    up.handle(async (req, res) => {
      for await (const c of req) {
        received += (c as Buffer).length;
        hash.update(c as Buffer);
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ bytes: received, sha256: hash.digest("hex") }));
    });
    const sent = createHash("sha256");
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      // Chunked, no Content-Length: the proxy cannot know the size in advance and must not wait for the end.
      const req = request(`${t.url}/v1/proxy/${ids.stream}/upload`, { method: "POST", headers: { ...key(), "content-type": "application/octet-stream" } }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject);
      const write = async () => {
        const chunk = (i: number) => Buffer.alloc(CHUNK, i % 251);
        let i = 0;
        for (; i * CHUNK < MB; i++) {
          sent.update(chunk(i));
          req.write(chunk(i));
        }
        await waitFor("the provider to receive the first megabyte while the rest is unsent", async () => received >= MB, 400, 25);
        for (; i * CHUNK < TOTAL; i++) {
          sent.update(chunk(i));
          if (!req.write(chunk(i))) await new Promise((r) => req.once("drain", r));
        }
        req.end();
      };
      write().catch(reject);
    });
    const res = await answer;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ bytes: TOTAL, sha256: sent.digest("hex") });
  });

  it("streams a 50 MB download: the client gets the first megabyte before the provider sends the rest; a paused reader pauses the provider", async () => {
    let written = 0;
    let clientGotFirstMb = false;
    const hash = createHash("sha256");
    up.handle(async (_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(TOTAL) });
      for (let i = 0; written < TOTAL; i++) {
        const chunk = Buffer.alloc(CHUNK, i % 251);
        hash.update(chunk);
        written += chunk.length;
        if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
        if (written === MB) await waitFor("the client to receive the first megabyte while the rest is unsent", async () => clientGotFirstMb, 400, 25);
      }
      res.end();
    });
    const res = await new Promise<IncomingMessage>((resolve, reject) => request(`${t.url}/v1/proxy/${ids.stream}/download`, { headers: key() }, resolve).on("error", reject).end());
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-length"]).toBe(String(TOTAL));
    const got = createHash("sha256");
    let bytes = 0;
    let paused = false;
    let stalledAt = 0;
    await new Promise<void>((resolve, reject) => {
      res.on("data", (c: Buffer) => {
        bytes += c.length;
        got.update(c);
        if (bytes >= MB) clientGotFirstMb = true;
        if (!paused && bytes >= 2 * MB) {
          paused = true;
          res.pause();
          // Wait (on the provider's progress, not on a clock) until its writes stop, then resume.
          let last = -1;
          waitFor("the provider to stop writing while the client reads nothing", async () => {
            const stopped = written === last;
            last = written;
            return stopped;
          }, 400, 50)
            .then(() => {
              stalledAt = written;
              res.resume();
            })
            .catch(reject);
        }
      });
      res.on("end", resolve);
      res.on("error", reject);
    });
    expect(bytes).toBe(TOTAL);
    expect(got.digest("hex")).toBe(hash.digest("hex"));
    // Two loopback sockets' buffers (Linux autotunes each up to several MB) and a few stream buffers, never the
    // body: the provider stalled far from 50 MB (13 MB when this was written).
    expect(stalledAt).toBeGreaterThan(2 * MB);
    expect(stalledAt).toBeLessThan(36 * MB);
  });
  it("a slow upload longer than the timeout goes through as long as it keeps moving; a provider that stops reading it gives 504", async () => {
    up.handle(async (req, res) => {
      let bytes = 0;
      if (req.url === "/v2/stuck") return; // never reads, never answers
      for await (const c of req) bytes += (c as Buffer).length;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ bytes }));
    });
    const upload = (path: string, chunks: number, chunkBytes: number, gapMs: number) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${t.url}/v1/proxy/${ids.stream}${path}`, { method: "PUT", headers: key() }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode!, body }));
        });
        req.on("error", reject);
        (async () => {
          for (let i = 0; i < chunks && !req.destroyed; i++) {
            if (!req.write(Buffer.alloc(chunkBytes, i))) await new Promise((r) => req.once("drain", r));
            // A deliberately slow client: it pauses between chunks (each pause shorter than the timeout).
            if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
          }
          req.end();
        })().catch(() => undefined);
      });
    // 6 pauses of TIMEOUT_MS / 2: the whole upload takes longer than the timeout, no pause does.
    const slow = await upload("/slow", 7, 70_000, TIMEOUT_MS / 2);
    expect(slow).toEqual({ status: 200, body: JSON.stringify({ bytes: 7 * 70_000 }) });
    const stuck = await upload("/stuck", 400, CHUNK, 0);
    expect(stuck.status).toBe(504);
    expect(JSON.parse(stuck.body)).toMatchObject({ code: "upstream_timeout" });
  });

  it("a client that goes away cancels the provider call, and is no error of grantkeeper's", async () => {
    const before = sockets.size;
    const req = request(`${t.url}/v1/proxy/${ids.silent}/wait`, { headers: key() });
    req.on("error", () => undefined);
    req.end();
    await waitFor("the provider to be called", async () => sockets.size > before);
    const upstreamSocket = [...sockets].at(-1)!;
    req.destroy();
    await waitFor("the provider call to be cancelled", async () => upstreamSocket.destroyed || upstreamSocket.readableEnded);
    await waitFor("the request to be logged", async () => t.logText().includes('"status":499'));
    expect(t.logText()).not.toMatch(/unhandled error/);
  });
});

describe("proxied uploads and server.requestTimeoutSeconds", () => {
  const REQUEST_TIMEOUT_MS = 400;
  const PART = 100_000;
  let db: TestDatabase;
  let t: GrantkeeperUnderTest;
  let up: Upstream;
  let id: string;
  /** Bytes the provider has read of the current upload, and whether its request ended or was cut. */
  let received = 0;
  let upstreamEnd: "complete" | "aborted" | undefined;

  beforeAll(async () => {
    db = await testDatabase();
    // Node's requestTimeout runs on the wall clock; an upload kept past it is watched on the test's clock.
    t = await startGrantkeeper(db, { limits: { requestTimeoutMs: REQUEST_TIMEOUT_MS, headersTimeoutMs: REQUEST_TIMEOUT_MS } });
    up = await startUpstream({ takeBody: true });
    up.handle((req, res) => {
      req.on("data", (c: Buffer) => (received += c.length));
      req.on("end", () => {
        upstreamEnd = "complete";
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ bytes: received }));
      });
      req.on("close", () => (upstreamEnd ??= "aborted"));
    });
    expect((await t.api("PUT", "/v1/providers/uploads", { authorizationEndpoint: "http://127.0.0.1:1/auth", tokenEndpoint: "http://127.0.0.1:1/token", clientId: "c", clientSecret: "s", apiBaseUrl: `${up.origin}/v2` })).status).toBe(200);
    id = (await t.api("POST", "/v1/connections", { providerId: "uploads", entityId: "e", accessToken: "at-uploads", refreshToken: "rt", expiresIn: 3600 })).body.id;
  });

  afterAll(async () => {
    await t?.close();
    await up?.close();
    await db?.cleanup();
  });

  const KEPT = "a proxied upload outlasts server.requestTimeoutSeconds";
  const keptCount = () => t.logText().split(KEPT).length - 1;

  /** A chunked upload the test writes part by part; its answer as status and body. */
  function upload(): { write(bytes: number): Promise<void>; end(): void; answer: Promise<{ status: number; body: string }> } {
    let sent = 0;
    received = 0;
    upstreamEnd = undefined;
    let req!: ReturnType<typeof request>;
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req = request(`${t.url}/v1/proxy/${id}/files`, { method: "POST", headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/octet-stream" } }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
        res.on("error", reject);
      });
      req.on("error", reject);
    });
    return {
      // Resolves once the provider has read every byte sent so far: grantkeeper read them from the client.
      async write(bytes) {
        req.write(Buffer.alloc(bytes, 0x61));
        sent += bytes;
        await waitFor("the provider to read what was sent", async () => received >= sent, 400, 25);
      },
      end: () => req.end(),
      answer,
    };
  }

  /** Send a first part and wait (wall clock) until the upload is older than requestTimeoutMs and kept. */
  async function keptUpload(): Promise<ReturnType<typeof upload>> {
    const before = keptCount();
    const u = upload();
    await u.write(PART);
    await waitFor("Node's requestTimeout to pass and the upload to be kept", async () => keptCount() > before, 200, 25);
    return u;
  }

  it("an upload that keeps sending goes through however long it takes in all", async () => {
    const u = await keptUpload();
    // Then three more parts, 300 ms apart on the watch's clock: no pause reaches the timeout, the upload is far older.
    for (let i = 0; i < 3; i++) {
      await u.write(PART);
      t.clock.advance(300);
    }
    u.end();
    expect(await u.answer).toEqual({ status: 200, body: JSON.stringify({ bytes: 4 * PART }) });
    expect(upstreamEnd).toBe("complete");
  });

  it("an upload that stops sending is answered 408 after server.requestTimeoutSeconds without a byte, and the provider call is cut", async () => {
    const u = await keptUpload();
    await u.write(PART);
    t.clock.advance(300);
    // Still going: the pause so far is shorter than the timeout.
    expect(upstreamEnd).toBeUndefined();
    t.clock.advance(REQUEST_TIMEOUT_MS + 100);
    const res = await u.answer;
    expect(res.status).toBe(408);
    await waitFor("the provider's request to be cut", async () => upstreamEnd === "aborted");
    expect(received).toBe(2 * PART);
    expect(t.logText()).not.toMatch(/unhandled error/);
  });

  it("a body the app reads is still cut requestTimeoutMs after its request started, sending or not", async () => {
    const t0 = performance.now();
    const res = await new Promise<{ status: number }>((resolve, reject) => {
      // A webhook (the app's route, not the proxy) that trickles on.
      const req = request(`${t.url}/v1/webhooks/int_0123456789`, { method: "POST", headers: { "content-type": "application/json" } }, (r) => resolve({ status: r.statusCode! }));
      req.on("error", reject);
      req.write("{");
      const trickle = setInterval(() => (req.destroyed ? clearInterval(trickle) : req.write(" ")), 50);
      req.on("close", () => clearInterval(trickle));
    }).catch((e: NodeJS.ErrnoException) => ({ status: 0, code: e.code }));
    expect(res.status).toBe(408);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});
