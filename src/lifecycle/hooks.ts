/**
 * Lifecycle events other parts subscribe to (integrations, jobs, alerts).
 * Delivered after the change is committed; a failing subscriber is logged and
 * never changes the refresh result (design.md "Permanent failure … the
 * notification is best-effort").
 */
import type { Logger } from "../telemetry/logger.js";
import type { LastError } from "../domain/states.js";

/** Event payloads by name. */
export interface LifecycleEventMap {
  /** A refresh succeeded. */
  "connection.refreshed": { connectionId: string; providerId: string; entityId: string };
  /** A transient failure left the connection `degraded`. */
  "connection.degraded": { connectionId: string; providerId: string; entityId: string; lastError: LastError; consecutiveFailures: number; enteredRecovery: boolean };
  /** A permanent failure: the grant is dead (state `error`). */
  "connection.invalidated": { connectionId: string; providerId: string; entityId: string; lastError: LastError };
  /** A provider-level permanent failure (`invalid_client` …): the client configuration is wrong. */
  "provider.misconfigured": { providerId: string; connectionId: string; lastError: LastError };
  /** A connection got a working grant from the connect flow or an import. `previousState` is undefined for a new one. */
  "connection.granted": { connectionId: string; providerId: string; entityId: string; previousState: string | undefined };
}

/** Name of a lifecycle event. */
export type LifecycleEventName = keyof LifecycleEventMap;

type Listener<K extends LifecycleEventName> = (payload: LifecycleEventMap[K]) => void | Promise<void>;

/** A small typed event bus; listeners run in order, each guarded. */
export class LifecycleHooks {
  private readonly listeners = new Map<LifecycleEventName, Array<Listener<any>>>();

  constructor(private readonly logger: Logger) {}

  /** Subscribe. @returns a function that unsubscribes */
  on<K extends LifecycleEventName>(name: K, fn: Listener<K>): () => void {
    const list = this.listeners.get(name) ?? [];
    list.push(fn);
    this.listeners.set(name, list);
    return () => this.listeners.set(name, (this.listeners.get(name) ?? []).filter((l) => l !== fn));
  }

  /** Deliver to every listener; errors are logged, never thrown. */
  async emit<K extends LifecycleEventName>(name: K, payload: LifecycleEventMap[K]): Promise<void> {
    for (const fn of this.listeners.get(name) ?? []) {
      try {
        await fn(payload);
      } catch (e) {
        this.logger.error({ event: name, err: { name: (e as Error)?.name, message: (e as Error)?.message } }, "lifecycle subscriber failed");
      }
    }
  }
}
