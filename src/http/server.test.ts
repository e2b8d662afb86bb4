/**
 * The server's limits on real loopback sockets, with ordinary clients (node's
 * fetch — undici — and curl) and raw sockets for what ordinary clients do not
 * do (stall mid-body, keep sending after the answer).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../domain/clock.js";
import { defaultServerLimits, listen, resolveServerLimits, type RunningServer, type ServerLimits } from "./server.js";

const LIMIT = 64 * 1024;
const run = promisify(execFile);

/** A small app like ours: a body limit, a route that reads the body, one that answers without reading it. */
function app(): Hono {
  const a = new Hono();
  a.use("/upload", bodyLimit({ maxSize: LIMIT, onError: (c) => c.json({ code: "payload_too_large" }, 413) }));
  a.post("/upload", async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }));
  a.post("/refuse", (c) => c.json({ code: "unauthorized" }, 401));
  a.get("/ok", (c) => c.text("ok"));
  // A client that went away mid-body fails the body read; nobody is left to answer (the real app logs it at debug).
  a.onError((_e, c) => c.body(null, 400));
  return a;
}

/** A raw connection that collects everything the server sends and notes when it closed. */
function rawClient(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    let text = "";
    const t0 = performance.now();
    const socket = connect(port, "127.0.0.1");
    const closed = new Promise<number>((r) => socket.once("close", () => r(performance.now() - t0)));
    socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
    socket.on("error", () => undefined); // a reset is what some tests expect
    socket.once("connect", () => resolve({ socket, received: () => text, closed }));
    socket.once("error", reject);
  });
}

async function withServer(limits: Partial<ServerLimits>, fn: (s: RunningServer) => Promise<void>, clock?: ManualClock): Promise<void> {
  const s = await listen(app(), "127.0.0.1", 0, { limits, ...(clock ? { clock } : {}) });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

describe("resolveServerLimits", () => {
  it("defaults: 30 s per request, 10 s for headers, 5 s keep-alive, 1024 connections, linger 5 s / 64 MiB", () => {
    expect(resolveServerLimits()).toEqual({ requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxConnections: 1024, lingerMs: 5_000, lingerMaxBytes: 67_108_864 });
    expect(Object.isFrozen(defaultServerLimits)).toBe(true);
  });

  it.each([
    [{ requestTimeoutMs: 0 }, "server.requestTimeoutMs must be a positive finite number, got 0"],
    [{ lingerMs: Number.POSITIVE_INFINITY }, "server.lingerMs must be a positive finite number, got Infinity"],
    [{ maxConnections: 1.5 }, "server.maxConnections must be an integer, got 1.5"],
    [{ headersTimeoutMs: 30_001 }, "server.headersTimeoutMs (30001) must not exceed server.requestTimeoutMs (30000)"],
  ] as const)("refuses %j", (partial, message) => {
    expect(() => resolveServerLimits(partial)).toThrow(new RangeError(message));
  });

  it("takes headersTimeoutMs equal to requestTimeoutMs", () => {
    expect(resolveServerLimits({ requestTimeoutMs: 2_000, headersTimeoutMs: 2_000 })).toMatchObject({ requestTimeoutMs: 2_000, headersTimeoutMs: 2_000 });
  });
});

describe("a 413 drains the rest of the body (lingering close): an ordinary client reads it", () => {
  let server: RunningServer;
  let dir: string;
  const big = Buffer.alloc(LIMIT * 10, 0x61);

  beforeAll(async () => {
    server = await listen(app(), "127.0.0.1", 0);
    dir = mkdtempSync(join(tmpdir(), "gk-server-"));
    writeFileSync(join(dir, "big"), big);
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("node fetch (undici) sending 10× the limit reads 413, with Content-Length and chunked, every time", async () => {
    for (let i = 0; i < 8; i++) {
      const sized = await fetch(`${server.url}/upload`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: big });
      expect({ status: sized.status, body: await sized.json() }).toEqual({ status: 413, body: { code: "payload_too_large" } });
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (let k = 0; k < 10; k++) c.enqueue(new Uint8Array(LIMIT).fill(0x62));
          c.close();
        },
      });
      const chunked = await fetch(`${server.url}/upload`, { method: "POST", body: stream, duplex: "half" } as RequestInit);
      expect(chunked.status).toBe(413);
      await chunked.body?.cancel();
    }
  });

  it("an answer sent before the body was read at all (401) reaches the client too", async () => {
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${server.url}/refuse`, { method: "POST", body: big });
      expect(res.status).toBe(401);
      await res.body?.cancel();
    }
  });

  it("curl, with and without Expect: 100-continue, reads 413", async () => {
    for (const expectHeader of [[], ["-H", "Expect:"]]) {
      const { stdout } = await run("curl", ["-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", ...expectHeader, "--data-binary", `@${join(dir, "big")}`, `${server.url}/upload`]);
      expect(stdout).toBe("413");
    }
  });

  it("the connection stays usable once the rest of the body is read", async () => {
    const c = await rawClient(server.port);
    c.socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n`);
    c.socket.write(big);
    c.socket.write("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    await expect.poll(() => c.received(), { timeout: 10_000 }).toMatch(/HTTP\/1\.1 413[\s\S]*HTTP\/1\.1 200[\s\S]*ok$/);
    c.socket.destroy();
  });
});

describe("lingering is bounded", () => {
  let raw: Awaited<ReturnType<typeof rawClient>> | undefined;
  afterEach(() => raw?.socket.destroy());

  it("a body that goes on past lingerMaxBytes is cut: the connection closes before it is all sent", async () => {
    await withServer({ lingerMaxBytes: 256 * 1024, lingerMs: 20_000 }, async (s) => {
      raw = await rawClient(s.port);
      raw.socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 0x63);
      let sent = 0;
      const sending = (async () => {
        while (!raw!.socket.destroyed && sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!raw!.socket.write(chunk)) await new Promise((r) => raw!.socket.once("drain", r).once("close", r));
        }
      })();
      await raw.closed;
      await sending;
      expect(raw.received()).toMatch(/^HTTP\/1\.1 413/);
      expect(sent).toBeLessThan(16 * 1024 * 1024);
    });
  });

  it("a body that trickles on after the answer is cut after lingerMs, not held", async () => {
    const clock = new ManualClock();
    await withServer(
      { lingerMs: 300, requestTimeoutMs: 60_000, headersTimeoutMs: 10_000 },
      async (s) => {
        raw = await rawClient(s.port);
        raw.socket.write(`POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc`);
        await expect.poll(() => raw!.received()).toMatch(/^HTTP\/1\.1 401/);
        // Lingering: the connection is still open while the body trickles.
        await expect.poll(() => clock.pendingTimers()).toBe(1);
        for (let i = 0; i < 5 && !raw.socket.destroyed; i++) {
          raw.socket.write("x");
          await new Promise((r) => setImmediate(r));
          expect(raw.socket.destroyed).toBe(false);
          clock.advance(50);
        }
        clock.advance(100);
        await raw.closed;
      },
      clock,
    );
  });
});

describe("timeouts and connection cap", () => {
  it("a client that stalls mid-body is answered 408 and cut after requestTimeoutMs (Node's default holds it 300 s)", async () => {
    await withServer({ requestTimeoutMs: 600, headersTimeoutMs: 600 }, async (s) => {
      const c = await rawClient(s.port);
      c.socket.write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab");
      const afterMs = await c.closed;
      expect(c.received()).toMatch(/^HTTP\/1\.1 408/);
      expect(afterMs).toBeGreaterThanOrEqual(500);
      expect(afterMs).toBeLessThan(5_000);
    });
  });

  it("client errors get node:http's own answers: 400 for a malformed request, 431 for oversized headers", async () => {
    await withServer({}, async (s) => {
      const bad = await rawClient(s.port);
      bad.socket.write("GET /ok HTTP/1.1\r\nHost x\r\n\r\n");
      await bad.closed;
      expect(bad.received()).toBe("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      const big = await rawClient(s.port);
      big.socket.write(`GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
      await big.closed;
      expect(big.received()).toBe("HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n");
    });
  });

  it("a client that never finishes its headers is cut after headersTimeoutMs", async () => {
    await withServer({ requestTimeoutMs: 10_000, headersTimeoutMs: 400 }, async (s) => {
      const c = await rawClient(s.port);
      c.socket.write("GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: ");
      const afterMs = await c.closed;
      expect(afterMs).toBeLessThan(5_000);
      expect(c.received()).not.toContain("200 OK");
    });
  });

  it("connections beyond maxConnections are refused; the ones inside it are served", async () => {
    await withServer({ maxConnections: 2 }, async (s) => {
      const held = [await rawClient(s.port), await rawClient(s.port)];
      const third = await rawClient(s.port);
      await third.closed;
      expect(third.received()).toBe("");
      held[0]!.socket.write("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
      await expect.poll(() => held[0]!.received(), { timeout: 5_000 }).toMatch(/^HTTP\/1\.1 200[\s\S]*ok$/);
      for (const h of held) h.socket.destroy();
    });
  });
});
