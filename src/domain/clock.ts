/**
 * Time source for every component. All reads of "now" and every timer go
 * through a Clock so tests move time instead of sleeping.
 *
 * Units: milliseconds since the Unix epoch for `now()`, milliseconds for delays.
 */
export interface Clock {
  /** Current time, milliseconds since the Unix epoch. */
  now(): number;
  /** Schedule `fn` after `delayMs` milliseconds. Returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, delayMs: number): unknown;
  /** Cancel a timer made by {@link Clock.setTimeout}. Unknown handles are ignored. */
  clearTimeout(handle: unknown): void;
}

/** The wall clock. Timers are unref'd so they never keep a process alive on their own. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, delayMs) {
    const t = setTimeout(fn, Math.max(0, Math.min(delayMs, 2 ** 31 - 1)));
    t.unref?.();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

interface ManualTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A clock that only moves when told to. Timers fire, in due order, during
 * {@link ManualClock.advance}. For tests and benchmarks.
 */
export class ManualClock implements Clock {
  private current: number;
  private timers: ManualTimer[] = [];
  private nextId = 1;

  /** @param startMs initial time, milliseconds since the Unix epoch (default 2026-01-01T00:00:00Z). */
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, delayMs: number): unknown {
    const timer = { id: this.nextId++, at: this.current + Math.max(0, delayMs), fn };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Move time forward by `ms` milliseconds, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > target) break;
      this.timers.shift();
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = target;
  }

  /** Set the time to an absolute instant (milliseconds since the Unix epoch), firing due timers. */
  set(ms: number): void {
    this.advance(Math.max(0, ms - this.current));
  }

  /** Number of timers not yet fired. */
  pendingTimers(): number {
    return this.timers.length;
  }
}
