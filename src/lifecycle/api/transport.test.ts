import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough, Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { discard, PEEK_LIMIT_BYTES } from "./bodies.js";
import { ApiTransport, type WireRequest } from "./transport.js";

/** What the provider's side saw: each request's path and socket, and whether its connection closed before the answer ended. */
interface Seen {
  path: string;
  socket: object;
  cut: boolean;
}

let server: Server;
let origin: string;
const seen: Seen[] = [];
/** Requests waiting for the test to answer them (path `/hold`). */
const held: Array<{ res: ServerResponse; closed: Promise<unknown> }> = [];
/** Answers sent half-way, waiting for the test to send the rest (path `/half?size=N`). */
const halves: Array<() => void> = [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const entry: Seen = { path: req.url ?? "", socket: req.socket, cut: false };
    seen.push(entry);
    res.on("close", () => {
      entry.cut = !res.writableFinished;
    });
    req.resume();
    if (req.url === "/hold") {
      held.push({ res, closed: once(res, "close") });
      return;
    }
    const size = Number(new URL(req.url ?? "/", "http://x").searchParams.get("size") ?? "5");
    if (req.url?.startsWith("/half")) {
      res.writeHead(200, { "content-length": size });
      res.write(Buffer.alloc(size - Math.floor(size / 2), "h"));
      halves.push(() => res.end(Buffer.alloc(Math.floor(size / 2), "h")));
      return;
    }
    res.writeHead(200, { "content-type": "text/plain", "content-length": size, "set-cookie": "s=1" });
    // Large answers in pieces, so that a reader that stops early leaves some unsent.
    const piece = Buffer.alloc(Math.min(size, 65_536), "a");
    let sent = 0;
    const more = () => {
      while (sent < size) {
        const n = Math.min(piece.length, size - sent);
        sent += n;
        if (!res.write(n === piece.length ? piece : piece.subarray(0, n))) return void res.once("drain", more);
      }
      res.end();
    };
    more();
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function request(path: string, extra: Partial<WireRequest> = {}): WireRequest {
  return { url: new URL(path, origin), method: "GET", headers: {}, body: { kind: "none" }, ...extra };
}

/** A Writable that keeps what it is given. */
function collector(): Writable & { bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return Object.assign(w, { bytes: () => Buffer.concat(chunks) });
}

describe("ApiTransport", () => {
  it("writes an answer's body into the Writable its route returns, decided at the head", async () => {
    const t = new ApiTransport({ timeoutMs: 5_000, connectionsPerOrigin: 2 });
    try {
      const sink = collector();
      const heads: Array<[number, string | string[] | undefined]> = [];
      const answer = await t.send(request("/items?size=100000", { route: (status, headers) => (heads.push([status, headers["content-type"]]), sink) }));
      expect(answer).toMatchObject({ status: 200, body: null });
      expect(heads).toEqual([[200, "text/plain"]]);
      await once(sink, "finish");
      expect(sink.bytes().length).toBe(100_000);
    } finally {
      await t.close();
    }
  });

  it("keeps the body as a Readable when the route declines it", async () => {
    const t = new ApiTransport({ timeoutMs: 5_000, connectionsPerOrigin: 2 });
    try {
      const answer = await t.send(request("/items?size=7", { route: () => undefined }));
      expect(answer.body).not.toBeNull();
      const chunks: Buffer[] = [];
      for await (const c of answer.body!) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe("aaaaaaa");
    } finally {
      await t.close();
    }
  });

  it("cancels the call when the route's Writable closes before the end (the proxy's client went away)", async () => {
    const t = new ApiTransport({ timeoutMs: 5_000, connectionsPerOrigin: 2 });
    try {
      const sink = new PassThrough({ highWaterMark: 1024 });
      const before = seen.length;
      await t.send(request("/items?size=50000000", { route: () => sink }));
      sink.destroy();
      await expect.poll(() => seen[before]?.cut, { timeout: 5_000 }).toBe(true);
    } finally {
      await t.close();
    }
  });

  it("cancels a call waiting for its head when `until` closes, with an AbortError, and the provider's connection is closed", async () => {
    const t = new ApiTransport({ timeoutMs: 5_000, connectionsPerOrigin: 2 });
    try {
      const until = new PassThrough();
      const heldBefore = held.length;
      const sent = t.send(request("/hold", { until }));
      await expect.poll(() => held.length, { timeout: 5_000 }).toBe(heldBefore + 1);
      until.destroy();
      await expect(sent).rejects.toMatchObject({ name: "AbortError" });
      await held[heldBefore]!.closed;
    } finally {
      await t.close();
    }
  });

  it("fails the call as upstream_unreachable when its route throws (an answer the caller cannot be given)", async () => {
    const t = new ApiTransport({ timeoutMs: 5_000, connectionsPerOrigin: 2 });
    try {
      const sent = t.send(
        request("/items?size=5", {
          route: () => {
            throw new TypeError("invalid header value");
          },
        }),
      );
      await expect(sent).rejects.toMatchObject({ code: "upstream_unreachable" });
    } finally {
      await t.close();
    }
  });

  it("an answer let go with discard(): a small one is drained and its connection reused, a large one is cut", async () => {
    const t = new ApiTransport({ timeoutMs: 5_000, connectionsPerOrigin: 1 });
    try {
      const small = await t.send(request("/half?size=1000"));
      discard(small.body);
      halves.pop()!();
      const next = await t.send(request("/items?size=3"));
      for await (const _ of next.body!);
      expect(seen.at(-1)!.socket).toBe(seen.at(-2)!.socket);

      const before = seen.length;
      const large = await t.send(request(`/items?size=${PEEK_LIMIT_BYTES * 64}`));
      discard(large.body);
      await expect.poll(() => seen[before]?.cut, { timeout: 5_000 }).toBe(true);
    } finally {
      await t.close();
    }
  });
});
