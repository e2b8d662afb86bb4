/**
 * Bounded polling for things that happen in another process (a spawned
 * server, a child's log). In-process time is moved by the ManualClock; only
 * cross-process waits use this.
 */
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Poll `probe` every `intervalMs` until it returns a value that is not
 * undefined/false, at most `attempts` times.
 * @throws Error with `what` when it never does
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, attempts = 200, intervalMs = 50): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}
