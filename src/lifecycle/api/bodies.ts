/**
 * Bodies of API calls, streamed and never held whole.
 *
 * - A request body is read up to {@link REPLAY_LIMIT_BYTES}: a body that
 *   ends within it is kept, so the call can be sent again after a refresh;
 *   a longer one is streamed through (what was read first, then the rest)
 *   and cannot be retried — a 401 to it refreshes the token and goes back
 *   to the caller, who sends it again.
 * - An answer's body is read only when a provider's `apiAuthFailure` JSON
 *   rules must look at it, only when it is JSON and at most
 *   {@link PEEK_LIMIT_BYTES} long, and the caller gets the same bytes
 *   afterwards.
 */
import { Readable } from "node:stream";
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";

/** Request bodies up to this size are kept for a retry after a refresh. @defaultValue 65 536 bytes */
export const REPLAY_LIMIT_BYTES = 65_536;

/** Answer bodies up to this size are read to match `apiAuthFailure` JSON rules. @defaultValue 65 536 bytes */
export const PEEK_LIMIT_BYTES = 65_536;

/** Decompressed size a peeked body may reach (a small gzip can expand a thousandfold). @defaultValue 1 048 576 bytes */
const PEEK_DECODED_LIMIT_BYTES = 1_048_576;

/** A request body ready to send: none, whole (replayable), or a one-shot stream of known or unknown length. */
export type OutgoingBody = { kind: "none" } | { kind: "bytes"; bytes: Uint8Array } | { kind: "stream"; stream: Readable; length: number | undefined };

/** What a caller may hand in as a request body. */
export type BodySource = AsyncIterable<Uint8Array> | Uint8Array | null | undefined;

/**
 * Read a request body up to `limit` bytes.
 * @param declaredLength the `Content-Length` the caller sent, if any: a longer body is streamed without reading
 */
export async function prepareRequestBody(source: BodySource, declaredLength: number | undefined, limit = REPLAY_LIMIT_BYTES): Promise<OutgoingBody> {
  if (source === null || source === undefined) return { kind: "none" };
  if (source instanceof Uint8Array) return { kind: "bytes", bytes: source };
  if (declaredLength !== undefined && declaredLength > limit) return { kind: "stream", stream: Readable.from(source, { objectMode: false }), length: declaredLength };
  if (source instanceof Readable) {
    // A node stream (the proxy's request) is read by its events: its async iterator costs more than a small body.
    const read = await readHead(source, limit);
    if (read.ended) return { kind: "bytes", bytes: read.head.length === 1 ? read.head[0]! : Buffer.concat(read.head, read.size) };
    return { kind: "stream", stream: Readable.from(resume(read.head, source[Symbol.asyncIterator]()), { objectMode: false }), length: declaredLength };
  }
  const it = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) return { kind: "bytes", bytes: head.length === 1 ? head[0]! : Buffer.concat(head, size) };
    head.push(r.value);
    size += r.value.byteLength;
    if (size > limit) return { kind: "stream", stream: Readable.from(resume(head, it), { objectMode: false }), length: declaredLength };
  }
}

/**
 * Read a node stream until it ends or more than `limit` bytes came; then it is left paused, the rest unread.
 * @throws the stream's error, or `ERR_STREAM_PREMATURE_CLOSE` when it closes before its end (a client gone mid-upload)
 */
function readHead(stream: Readable, limit: number): Promise<{ head: Uint8Array[]; size: number; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const head: Uint8Array[] = [];
    let size = 0;
    const stop = () => {
      stream.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
    };
    const onData = (chunk: Uint8Array) => {
      head.push(chunk);
      size += chunk.byteLength;
      if (size <= limit) return;
      stream.pause();
      stop();
      resolve({ head, size, ended: false });
    };
    const onEnd = () => {
      stop();
      resolve({ head, size, ended: true });
    };
    const onError = (e: unknown) => {
      stop();
      reject(e);
    };
    const premature = () => Object.assign(new Error("the request body was cut before its end"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
    const onClose = () => onError(premature());
    if (stream.readableEnded) return resolve({ head, size, ended: true });
    if (stream.destroyed) return reject(stream.errored ?? premature());
    stream.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}

/** What was read, then the rest; the source is released however the consumer stops. */
async function* resume(head: Uint8Array[], it: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  let finished = false;
  try {
    yield* head;
    for (;;) {
      const r = await it.next();
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!finished) await it.return?.();
  }
}

/** True for `application/json` and `+json` media types (RFC 6839 §3.1). */
export function isJsonMediaType(contentType: string | string[] | undefined): boolean {
  if (typeof contentType !== "string") return false;
  const type = contentType.split(";", 1)[0]!.trim().toLowerCase();
  return type === "application/json" || type.endsWith("+json");
}

/** An answer's body after {@link peekJson}: the parsed JSON (when it could be read) and a body that yields the same bytes. */
export interface PeekedBody {
  json: unknown;
  body: Readable;
}

/**
 * Read a JSON answer body for matching, bounded, and give back one that
 * yields the same bytes. Nothing is parsed (and `json` is undefined) when the
 * declared or actual length exceeds `limit`, the encoding is not identity,
 * gzip, deflate or br, or the text is not JSON.
 * @param headers the answer's headers (lower-case names)
 */
export async function peekJson(body: Readable, headers: Record<string, string | string[] | undefined>, limit = PEEK_LIMIT_BYTES): Promise<PeekedBody> {
  const declared = typeof headers["content-length"] === "string" ? Number(headers["content-length"]) : undefined;
  if (!isJsonMediaType(headers["content-type"]) || (declared !== undefined && !(declared <= limit))) return { json: undefined, body };
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  const head: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
    size += r.value.byteLength;
    if (size > limit) return { json: undefined, body: Readable.from(resume(head, it), { objectMode: false }) };
  }
  const bytes = Buffer.concat(head, size);
  return { json: parseJson(bytes, headers["content-encoding"]), body: Readable.from([bytes], { objectMode: false }) };
}

function parseJson(bytes: Buffer, encoding: string | string[] | undefined): unknown {
  try {
    const coding = typeof encoding === "string" ? encoding.trim().toLowerCase() : encoding === undefined ? "identity" : "unknown";
    const opts = { maxOutputLength: PEEK_DECODED_LIMIT_BYTES };
    const text =
      coding === "identity" || coding === ""
        ? bytes
        : coding === "gzip" || coding === "x-gzip"
          ? gunzipSync(bytes, opts)
          : coding === "deflate"
            ? inflateSync(bytes, opts)
            : coding === "br"
              ? brotliDecompressSync(bytes, opts)
              : undefined;
    return text === undefined ? undefined : (JSON.parse(text.toString("utf8")) as unknown);
  } catch {
    return undefined;
  }
}

/**
 * Let go of an answer body nobody will read: a small rest is drained so the
 * connection goes back to the pool, a body longer than {@link PEEK_LIMIT_BYTES}
 * is cut. Never throws, never leaves an unhandled `error` (a cut body reports
 * its own abort).
 */
export function discard(body: Readable | null): void {
  if (!body) return;
  body.on("error", () => undefined);
  let read = 0;
  body.on("data", (chunk: Uint8Array) => {
    read += chunk.byteLength;
    if (read > PEEK_LIMIT_BYTES) body.destroy();
  });
}
