/**
 * A `fetch` that runs a one-shot hook just before its next request leaves:
 * the moment an instance has passed every check and is about to spend a
 * refresh token, when a test lets "another instance" act (a lease that
 * expires, a breaker that closes) to drive a race in a fixed order.
 */
export interface HookedFetch {
  /** Pass as grantkeeper's `fetch`. */
  fetch: typeof fetch;
  /** Run `hook` (awaited) before the next request only; later requests go straight out. */
  beforeNext(hook: () => Promise<void>): void;
}

/** A {@link HookedFetch} over the global `fetch`. */
export function hookedFetch(): HookedFetch {
  let next: (() => Promise<void>) | undefined;
  return {
    fetch: async (input, init) => {
      const hook = next;
      next = undefined;
      await hook?.();
      return fetch(input, init);
    },
    beforeNext(hook) {
      next = hook;
    },
  };
}
