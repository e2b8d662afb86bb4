/**
 * Provider definitions, stored with their client secret encrypted.
 */
import type { BreakerState } from "../domain/breaker.js";
import type { Clock } from "../domain/clock.js";
import { providerBreakerView, type ProviderBreakerView } from "../domain/providerBreaker.js";
import { providerNotFound } from "../lifecycle/errors.js";
import type { Encryptor } from "../store/encryption.js";
import type { ProviderRepository } from "../store/providers.js";
import { resolveProviderInput } from "./catalogue.js";
import type { ProviderDefinition, ProviderInput } from "./definition.js";

/** A provider as the API shows it: the definition, never the secret. */
export type ProviderView = ProviderDefinition & { hasClientSecret: boolean; createdAt: string; updatedAt: string };

/** Where {@link ProviderService} reads token endpoint breakers from (the store's `provider_breakers`). */
export interface ProviderBreakerReader {
  /** One provider's breaker; closed when never seen. */
  get(providerId: string): Promise<BreakerState>;
  /** Every breaker the store has seen, by provider id. */
  providerBreakers(): Promise<Map<string, BreakerState>>;
}

const NO_BREAKERS: ProviderBreakerReader = {
  get: async () => ({ state: "closed", consecutiveFailures: 0, cooldownUntil: null }),
  providerBreakers: async () => new Map(),
};

/** A provider ready for a token endpoint call. */
export interface ProviderForCall {
  definition: ProviderDefinition;
  clientSecret: string | undefined;
}

/** Create, read and prepare providers. */
export class ProviderService {
  constructor(
    private readonly repo: ProviderRepository,
    private readonly encryptor: Encryptor,
    private readonly clock: Clock,
    /** Called after a successful put (e.g. to retry connections that failed on the old client configuration). */
    private readonly afterPut: (id: string, created: boolean) => Promise<void> = async () => {},
    /** Reads providers' token endpoint breakers from the store. */
    private readonly breakers: ProviderBreakerReader = NO_BREAKERS,
  ) {}

  /**
   * The provider's token endpoint breaker as it stands (design.md "Breakers and
   * cooldowns"): `open` means refreshes are deferred and one half-open probe
   * goes out per cooldown (`retryAfterSeconds` until the next).
   * Read from the store: every instance shows the same.
   */
  async tokenEndpointBreaker(id: string): Promise<ProviderBreakerView> {
    return providerBreakerView(await this.breakers.get(id), this.clock.now());
  }

  /**
   * Every token endpoint breaker the store has seen, by provider id (a
   * provider absent here has never had an endpoint fault: closed). One read,
   * for dashboards and `grantkeeper status`.
   */
  async tokenEndpointBreakers(): Promise<Record<string, ProviderBreakerView>> {
    const now = this.clock.now();
    return Object.fromEntries([...(await this.breakers.providerBreakers())].map(([id, s]) => [id, providerBreakerView(s, now)]));
  }

  /**
   * Create or replace a provider (PUT semantics: the body is the whole definition).
   * @throws {@link GrantkeeperError} 422 for an invalid definition or unknown template
   */
  async put(id: string, input: ProviderInput): Promise<{ provider: ProviderView; created: boolean }> {
    const def = resolveProviderInput(id, input);
    const secretCt = input.clientSecret !== undefined ? this.encryptor.encrypt(input.clientSecret, `provider:${id}:client_secret`) : null;
    const created = await this.repo.upsert(def, secretCt, this.clock.now());
    await this.afterPut(id, created);
    return { provider: (await this.get(id))!, created };
  }

  /** One provider view, or undefined. */
  async get(id: string): Promise<ProviderView | undefined> {
    const p = await this.repo.get(id);
    return p ? { ...p.definition, hasClientSecret: p.clientSecretCt !== null, createdAt: new Date(p.createdAtMs).toISOString(), updatedAt: new Date(p.updatedAtMs).toISOString() } : undefined;
  }

  /** Every provider view. */
  async list(): Promise<ProviderView[]> {
    return (await this.repo.list()).map((p) => ({ ...p.definition, hasClientSecret: p.hasClientSecret, createdAt: new Date(p.createdAtMs).toISOString(), updatedAt: new Date(p.updatedAtMs).toISOString() }));
  }

  /**
   * Definition plus decrypted secret, read fresh from the store (another
   * instance may have changed it).
   * @throws {@link GrantkeeperError} 404 `provider_not_found`
   */
  async forCall(id: string): Promise<ProviderForCall> {
    const p = await this.repo.get(id);
    if (!p) throw providerNotFound(id);
    return { definition: p.definition, clientSecret: p.clientSecretCt ? this.encryptor.decrypt(p.clientSecretCt, `provider:${id}:client_secret`) : undefined };
  }
}
