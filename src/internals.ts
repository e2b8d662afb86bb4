/**
 * What this repository's own tests and benchmarks may reach inside a
 * {@link Grantkeeper} — its store and refresh engine — without the library
 * handing them to its users. Not exported from the package entry
 * (`src/index.ts`; package.json `exports` has only "."), so a consumer
 * cannot come to depend on store internals.
 */
import type { FreshTokenCache } from "./lifecycle/freshTokens.js";
import type { RefreshEngine } from "./lifecycle/refresher.js";
import type { Store } from "./store/database.js";
import type { RetentionSweeper } from "./lifecycle/retention.js";
import type { ProviderBreakerRepository } from "./store/providerBreakers.js";

/** The internals of one Grantkeeper instance. */
export interface GrantkeeperInternals {
  store: Store;
  engine: RefreshEngine;
  /** Retention sweeps of this instance (`start()` runs them on a timer; tests call `sweep()`). */
  retention: RetentionSweeper;
  /** The instance's fresh tokens in memory (src/lifecycle/freshTokens.ts). */
  freshTokens: FreshTokenCache;
  /** Provider token endpoint breakers (`providerBreakers()` lists them, for the dashboard). */
  providerBreakers: ProviderBreakerRepository;
}

const registry = new WeakMap<object, GrantkeeperInternals>();

/** Called once by `createGrantkeeper` for the object it returns. */
export function registerInternals(gk: object, internals: GrantkeeperInternals): void {
  registry.set(gk, internals);
}

/**
 * The internals of a Grantkeeper made by `createGrantkeeper`.
 * @throws Error for any other object
 */
export function internalsOf(gk: object): GrantkeeperInternals {
  const found = registry.get(gk);
  if (!found) throw new Error("not a Grantkeeper made by createGrantkeeper");
  return found;
}
