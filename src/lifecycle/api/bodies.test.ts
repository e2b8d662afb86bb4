import { Readable } from "node:stream";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { isJsonMediaType, peekJson, prepareRequestBody } from "./bodies.js";

async function bytesOf(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

function chunked(total: number, size: number): { source: AsyncIterable<Uint8Array>; pulled: () => number; released: () => boolean } {
  let pulled = 0;
  let released = false;
  async function* gen() {
    try {
      for (let sent = 0; sent < total; sent += size) {
        pulled++;
        yield new Uint8Array(Math.min(size, total - sent)).fill(sent / size);
      }
    } finally {
      released = true;
    }
  }
  return { source: gen(), pulled: () => pulled, released: () => released };
}

describe("prepareRequestBody", () => {
  it("keeps a body that ends within the limit (replayable)", async () => {
    const b = await prepareRequestBody(chunked(100, 30).source, undefined, 100);
    expect(b.kind).toBe("bytes");
    expect(b.kind === "bytes" && b.bytes.byteLength).toBe(100);
  });

  it("streams a body one byte over the limit: what was read first, then the rest, byte for byte", async () => {
    const src = chunked(101, 30);
    const b = await prepareRequestBody(src.source, undefined, 100);
    expect(b.kind).toBe("stream");
    expect(src.pulled()).toBe(4);
    if (b.kind !== "stream") return;
    const all = await bytesOf(b.stream);
    expect(all.byteLength).toBe(101);
    expect([...all.subarray(0, 1)]).toEqual([0]);
    expect([...all.subarray(90, 91)]).toEqual([3]);
  });

  it("does not read a body whose declared length is over the limit", async () => {
    const src = chunked(1000, 10);
    const b = await prepareRequestBody(src.source, 1000, 100);
    expect(b).toMatchObject({ kind: "stream", length: 1000 });
    expect(src.pulled()).toBe(0);
  });

  describe("from a node stream (the proxy's request)", () => {
    /** A paused node stream of `total` bytes in `size`-byte chunks, byte value = chunk index; counts the chunks it produced. */
    function nodeChunked(total: number, size: number): { stream: Readable; produced: () => number } {
      let produced = 0;
      let sent = 0;
      const stream = new Readable({
        highWaterMark: size,
        read() {
          if (sent >= total) return void this.push(null);
          const n = Math.min(size, total - sent);
          this.push(Buffer.alloc(n, produced++));
          sent += n;
        },
      });
      return { stream, produced: () => produced };
    }

    it("keeps a body that ends within the limit", async () => {
      const b = await prepareRequestBody(nodeChunked(100, 30).stream, 100, 100);
      expect(b.kind === "bytes" && [...b.bytes]).toEqual([...Array(30).fill(0), ...Array(30).fill(1), ...Array(30).fill(2), ...Array(10).fill(3)]);
    });

    it("streams a longer one: what was read first, then the rest, byte for byte, the rest read only when the wire pulls it", async () => {
      const src = nodeChunked(1000, 10);
      const b = await prepareRequestBody(src.stream, undefined, 100);
      if (b.kind !== "stream") throw new Error("expected a stream");
      expect(src.produced()).toBeLessThan(30);
      const all = await bytesOf(b.stream);
      expect(all.byteLength).toBe(1000);
      expect([...all].every((v, i) => v === Math.floor(i / 10))).toBe(true);
    });

    it("fails when the stream is cut before its end (a client gone mid-upload)", async () => {
      const stream = new Readable({ read() {} });
      stream.push(Buffer.alloc(10));
      const read = prepareRequestBody(stream, 50, 100);
      setImmediate(() => stream.destroy());
      await expect(read).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
      await expect(prepareRequestBody(stream, 50, 100)).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
    });
  });

  it("releases the source when the consumer stops early", async () => {
    const src = chunked(1000, 10);
    const b = await prepareRequestBody(src.source, undefined, 100);
    if (b.kind !== "stream") throw new Error("expected a stream");
    for await (const _ of b.stream) break;
    await new Promise((r) => setImmediate(r));
    expect(src.released()).toBe(true);
  });

  it("has nothing to send for no body, and keeps bytes as they are", async () => {
    expect(await prepareRequestBody(null, undefined)).toEqual({ kind: "none" });
    const bytes = new Uint8Array(200_000);
    expect(await prepareRequestBody(bytes, undefined)).toEqual({ kind: "bytes", bytes });
  });
});

describe("peekJson", () => {
  const slackBody = JSON.stringify({ ok: false, error: "token_expired" });

  it.each([
    ["identity", Buffer.from(slackBody), undefined],
    ["gzip", gzipSync(slackBody), "gzip"],
    ["br", brotliCompressSync(slackBody), "br"],
  ])("parses a small %s JSON body and hands back the same bytes", async (_name, raw, encoding) => {
    const headers = { "content-type": "application/json; charset=utf-8", "content-length": String(raw.byteLength), ...(encoding ? { "content-encoding": encoding } : {}) };
    const p = await peekJson(Readable.from([raw]), headers);
    expect(p.json).toEqual({ ok: false, error: "token_expired" });
    expect((await bytesOf(p.body)).equals(raw)).toBe(true);
  });

  it("does not read a body declared over the limit, nor one that is not JSON", async () => {
    const big = Readable.from([Buffer.from(slackBody)]);
    expect((await peekJson(big, { "content-type": "application/json", "content-length": "70000" })).body).toBe(big);
    const html = Readable.from([Buffer.from("<html>")]);
    expect((await peekJson(html, { "content-type": "text/html" })).body).toBe(html);
  });

  it("stops reading an undeclared body at the limit and hands back every byte", async () => {
    const src = chunked(1_000, 100);
    const p = await peekJson(Readable.from(src.source), { "content-type": "application/json" }, 250);
    expect(p.json).toBeUndefined();
    expect(src.pulled()).toBeLessThan(10); // 3 read, at most one more read ahead by the stream
    expect((await bytesOf(p.body)).byteLength).toBe(1_000);
  });

  it("answers undefined for broken JSON, an unknown encoding or a bomb", async () => {
    expect((await peekJson(Readable.from([Buffer.from("{nope")]), { "content-type": "application/json" })).json).toBeUndefined();
    expect((await peekJson(Readable.from([Buffer.from(slackBody)]), { "content-type": "application/json", "content-encoding": "zstd" })).json).toBeUndefined();
    const bomb = gzipSync(Buffer.alloc(20_000_000, 32));
    expect(bomb.byteLength).toBeLessThan(65_536);
    expect((await peekJson(Readable.from([bomb]), { "content-type": "application/json", "content-encoding": "gzip" })).json).toBeUndefined();
  });
});

describe("isJsonMediaType", () => {
  it.each([
    ["application/json", true],
    ["Application/JSON; charset=utf-8", true],
    ["application/problem+json", true],
    ["text/json", false],
    ["text/html", false],
    [undefined, false],
  ])("%s → %s", (type, expected) => {
    expect(isJsonMediaType(type)).toBe(expected);
  });
});
