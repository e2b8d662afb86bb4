/**
 * The tiny token endpoint of the benchmarks, as a child process of
 * {@link ../bench/common.ts startTokenServer}: node:http on 127.0.0.1:0,
 * `POST /token` answers a fresh random access and refresh token after
 * `delayMs`, and counts requests. Runs apart from the measured process so
 * 10,000 server-side sockets and their CPU are not charged to it.
 *
 * IPC: `start {delayMs}` → `listening {port}`; `stats` → `stats:ok {requests}`;
 * `reset` → `reset:ok`. Exits when the parent goes away.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { parent, type ChildMessage } from "./common.js";

let requests = 0;
let delayMs = 20;

const server = createServer((req, res) => {
  if (req.method !== "POST" || !req.url?.startsWith("/token")) {
    res.writeHead(404).end();
    return;
  }
  requests++;
  req.resume();
  req.on("end", () => {
    setTimeout(() => {
      const body = JSON.stringify({
        access_token: randomBytes(24).toString("base64url"),
        token_type: "Bearer",
        expires_in: 3600,
        refresh_token: randomBytes(24).toString("base64url"),
      });
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(body);
    }, delayMs);
  });
});
// A burst of 10,000 naive clients connects at once: give the accept queue room.
server.maxRequestsPerSocket = 0;

process.on("message", (m: ChildMessage) => {
  if (m.type === "start") {
    delayMs = Number(m.delayMs);
    server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => {
      const addr = server.address();
      void parent.send({ type: "listening", port: typeof addr === "object" && addr ? addr.port : 0 });
    });
  } else if (m.type === "stats") {
    void parent.send({ type: "stats:ok", requests });
  } else if (m.type === "reset") {
    requests = 0;
    void parent.send({ type: "reset:ok", requests });
  }
});
process.on("disconnect", () => process.exit(0));
