/**
 * The worker thread of {@link rawSqliteWorkerQueueEndToEnd}: owns the floor's
 * SQLite connection ({@link openSqliteFloorQueue}), commits each group of adds
 * it is sent at `synchronous=NORMAL` and acknowledges it once an fdatasync of
 * the WAL file — run off this thread — has returned (the same guarantee as
 * FULL for every acknowledged add: WAL frames are sequential), and hands out
 * one claimed batch at a time.
 */
import { fdatasync, openSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { openSqliteFloorQueue, type FloorMessage } from "./jobsFloors.js";

const port = parentPort!;
const queue = openSqliteFloorQueue(workerData.file as string, workerData.ddl as string[]);
let batchOut = false;
let walFd: number | undefined;

/** Send the next claimed batch unless one is still with the main thread. */
function next(): void {
  if (batchOut) return;
  const ids = queue.claim();
  if (ids.length === 0) return;
  batchOut = true;
  port.postMessage({ op: "jobs", ids } satisfies FloorMessage);
}

port.on("message", (m: FloorMessage) => {
  if (m.op === "accept") {
    // Committed without waiting for the disk, then on disk before it is acknowledged: the WAL's fdatasync runs on
    // libuv's thread pool while this thread goes on with the next message (the next group, claims, finishes).
    queue.writeGroup(m.rows, "normal");
    walFd ??= openSync(`${workerData.file}-wal`, "r");
    fdatasync(walFd, (e) => {
      if (e) throw e;
      port.postMessage({ op: "accepted", group: m.group } satisfies FloorMessage);
    });
  } else if (m.op === "finished") {
    queue.finish(m.ids);
    batchOut = false;
  }
  next();
});
