/**
 * `createGrantkeeper`: the library entry point. The HTTP server and the CLI
 * are built on it. Clock, fetch, logger and randomness are injected.
 */
import { randomUUID } from "node:crypto";
import { systemClock, type Clock } from "./domain/clock.js";
import { resolveRefreshPolicy, type RefreshPolicy } from "./domain/policy.js";
import { IntegrationService } from "./integrations/service.js";
import { ApiClient, resolveApiClientOptions } from "./lifecycle/api/authorizedFetch.js";
import { AuthorizationService } from "./lifecycle/authorization.js";
import { preflight, type PreflightRequirement, type PreflightResult } from "./lifecycle/preflight.js";
import { IngressService } from "./jobs/ingress.js";
import { JobService } from "./jobs/service.js";
import { JobWorker } from "./jobs/worker.js";
import type { JobHandler } from "./jobs/context.js";
import type { BreakerPolicy } from "./domain/breaker.js";
import { resolveJobPolicy } from "./domain/jobLifecycle.js";
import { AlertService } from "./alerts/service.js";
import { reconnectUrlProblem } from "./alerts/reconnectUrl.js";
import { LogSink, SlackSink, WebhookSink, type AlertSink, type SinkConfig } from "./alerts/sinks.js";
import { defaultEpisodePolicy } from "./domain/alertEpisodes.js";
import { AlertRepository } from "./store/alerts.js";
import { ConnectionService } from "./lifecycle/connections.js";
import { ConnectSessionService } from "./lifecycle/connectSessions.js";
import { LifecycleHooks, type LifecycleEvents } from "./lifecycle/hooks.js";
import { FreshTokenCache } from "./lifecycle/freshTokens.js";
import { RefreshEngine } from "./lifecycle/refresher.js";
import { RefreshScheduler } from "./lifecycle/scheduler.js";
import { ProviderService } from "./providers/service.js";
import { providerLevelCodes } from "./providers/definition.js";
import { ConnectionRepository } from "./store/connections.js";
import { isReachable, openStore } from "./store/database.js";
import { Encryptor, parseEncryptionKey } from "./store/encryption.js";
import { verifyKeyring } from "./store/keyRotation.js";
import { migrateToLatest, pendingMigrations } from "./store/migrations.js";
import { registerInternals } from "./internals.js";
import { OAuthStateRepository } from "./store/oauthStates.js";
import { OperationsRepository } from "./store/operations.js";
import { OperationsService } from "./operations/overview.js";
import { ConnectSessionRepository } from "./store/connectSessions.js";
import { ProviderRepository } from "./store/providers.js";
import { IntegrationRepository } from "./store/integrations.js";
import { WebhookSigningCache } from "./integrations/signingCache.js";
import { BreakerRepository } from "./store/breakers.js";
import { ProviderBreakerRepository } from "./store/providerBreakers.js";
import { ProviderBreakers } from "./lifecycle/providerBreakers.js";
import { BREAKER_OPEN_CODE } from "./domain/providerBreaker.js";
import { JobRepository } from "./store/jobs.js";
import { UnitsOfWork } from "./store/unitOfWork.js";
import { silentLogger, type Logger } from "./telemetry/logger.js";
import { resolveRetentionPolicy } from "./domain/retention.js";
import { RetentionRepository } from "./store/retention.js";
import { RetentionSweeper } from "./lifecycle/retention.js";
import { createTelemetry, type Telemetry } from "./telemetry/telemetry.js";
import type { GrantkeeperOptions } from "./grantkeeperOptions.js";

export type { GrantkeeperOptions } from "./grantkeeperOptions.js";

/** The store's health, as `GET /readyz` reports it. */
export interface StoreHealth {
  /** The store answered a trivial query. */
  reachable: boolean;
  /** Migrations not applied yet (`["(unknown)"]` when the store could not be asked). */
  pendingMigrations: string[];
}

/** The object {@link createGrantkeeper} returns. */
export interface Grantkeeper {
  connections: ConnectionService;
  integrations: IntegrationService;
  /** Read and replay jobs. */
  jobs: JobService;
  /** Episode alerts (`GET /v1/alerts`). */
  alerts: AlertService;
  /** Webhook ingress (`POST /v1/webhooks/{id}` calls it). */
  ingress: IngressService;
  /** Provider API calls with connections' tokens: the proxy and `ctx.fetch` use its `authorizedFetch`. */
  api: ApiClient;
  worker: JobWorker;
  /**
   * Run the jobs of integrations named `name` in this process.
   * The handler throws `UserError` for a user/workflow failure, `AuthError` for an upstream auth rejection; anything else is a fault.
   */
  handle(name: string, handler: JobHandler): void;
  providers: ProviderService;
  authorization: AuthorizationService;
  scheduler: RefreshScheduler;
  /** Lifecycle events, delivered after commit (`connection.invalidated`, `job.dead`, `breaker.opened`, …). */
  hooks: LifecycleEvents;
  /** Where the store is, password removed (for logs and `doctor`). */
  storeLocation: string;
  /** Whether the store is reachable and migrated (`GET /readyz`). Never throws. */
  health(): Promise<StoreHealth>;
  clock: Clock;
  logger: Logger;
  policy: RefreshPolicy;
  instanceId: string;
  /** Metrics (`GET /metrics` renders them) and tracer of this instance. */
  telemetry: Telemetry;
  /**
   * Connect sessions: `gk.connectSessions.create({providerId, entityId, returnTo?, scopes?, connectionConfig?, ttlMs?})`
   * → `{id, connectUrl, expiresAt}`, a single-use link (30 min by default) for
   * one end user's browser, minted per click after the host authenticated
   * that user (api-contract.md v1.1, docs/security.md).
   */
  connectSessions: ConnectSessionService;
  /**
   * Which of an entity's required providers are usable, missing or dead — and
   * which usable grants lack required scopes — with a fresh connect-session
   * link for each that needs the user (asking for the missing scopes).
   * @param providers provider ids, or `{providerId, scopes}`
   * @throws {@link GrantkeeperError} 422 `provider_not_found`
   */
  preflight(entityId: string, providers: readonly PreflightRequirement[]): Promise<PreflightResult>;
  /** Start the refresh scheduler, the job worker and the retention sweeps (every `retention.sweepIntervalMs`). */
  start(): Promise<void>;
  /** Stop the scheduler, the worker and the retention sweeps, waiting for work in flight (a sweep stops after its current batch). */
  stop(): Promise<void>;
  /**
   * What the operator dashboard shows (issue 15): the overview's counts, open
   * alert episodes, providers and breakers, refresh outcomes per hour; and
   * the dashboard's sign-out list. Read-only but for sign-outs.
   */
  operations: OperationsService;
  /**
   * Stop, wait for work in flight — refreshes (also ones not started by the
   * scheduler) and the alert handling their events started — then close the
   * store. Idempotent for the store.
   */
  close(): Promise<void>;
}

const toKey = (k: string | Buffer) => (typeof k === "string" ? parseEncryptionKey(k) : k);

/**
 * Open the store (migrating it unless told not to), define the given
 * providers, and wire the lifecycle. Call `start()` to run the scheduler.
 * @throws {@link EncryptionKeyError} for a key that is not 32 bytes; {@link DatabaseUrlError}; migration errors; {@link DecryptionError} when the keys open none of the stored secrets (src/store/keyRotation.ts `verifyKeyring`);
 *   RangeError for an `alerts.reconnectUrl` that is not an http(s) URL template with known placeholders;
 *   RangeError naming a bad job policy value (`jobs.maxAttempts` not an integer ≥ 1, a negative backoff) or retention window
 */
export async function createGrantkeeper(options: GrantkeeperOptions): Promise<Grantkeeper> {
  const reconnectProblem = options.alerts?.reconnectUrl ? reconnectUrlProblem(options.alerts.reconnectUrl) : undefined;
  if (reconnectProblem) throw new RangeError(`alerts.reconnectUrl ${reconnectProblem}`);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();
  const random = options.random ?? Math.random;
  const policy = resolveRefreshPolicy(options.refresh);
  const apiOptions = resolveApiClientOptions(options.proxy);
  const retentionPolicy = resolveRetentionPolicy(options.retention);
  const key = toKey(options.encryptionKey);
  const encryptor = new Encryptor(key, (options.retiredEncryptionKeys ?? []).map(toKey));
  // A failover cuts every pg session: say so (at most once a second), never crash on it.
  let lastConnectionErrorLogMs = 0;
  const store = await openStore(options.databaseUrl ?? "sqlite:./data/grantkeeper.db", {
    onConnectionError: (e) => {
      const nowMs = Date.now();
      if (nowMs - lastConnectionErrorLogMs < 1_000) return;
      lastConnectionErrorLogMs = nowMs;
      logger.warn({ err: { name: e.name, message: e.message, code: (e as { code?: unknown }).code } }, "store connection lost; queries answer store_unavailable until it is back");
    },
  });
  try {
    if (options.migrate !== false) await migrateToLatest(store);
    // A key that opens none of the stored secrets refuses here, rather than serving garbage (issue 13).
    await verifyKeyring(store.db, encryptor);
  } catch (e) {
    await store.close();
    throw e;
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const instanceId = options.instanceId ?? randomUUID();
  const hooks = new LifecycleHooks(logger);
  const telemetry = options.telemetry ?? createTelemetry();
  const repo = new ConnectionRepository(store.db);
  const jobRepo = new JobRepository(store.db, store.dialect, store.workerDb);
  const integrationRepo = new IntegrationRepository(store.db);
  const breakerRepo = new BreakerRepository(store.db);
  const retentionRepo = new RetentionRepository(store);
  const retention = new RetentionSweeper({ repo: retentionRepo, clock, logger, policy: retentionPolicy, metrics: telemetry.metrics });
  const units = new UnitsOfWork(store.db, { integrations: integrationRepo, jobs: jobRepo, breakers: breakerRepo });
  // Fresh tokens in memory, shared by the engine (invalidates) and the connection service (fills, hands out).
  const freshTokens = new FreshTokenCache();
  const providerBreakerRepo = new ProviderBreakerRepository(store.db, store.dialect);
  const providers = new ProviderService(
    new ProviderRepository(store.db),
    encryptor,
    clock,
    async (id, created) => {
      // A redefined provider (base URL, margin, auth-failure rule) is read again by this instance's next call.
      freshTokens.invalidateProvider(id);
      // A fixed client configuration retries, at once, the connections that failed on the old one.
      if (!created) await repo.rescheduleProvider(id, clock.now(), providerLevelCodes((await providers.get(id))!));
      // A redefined provider starts with a closed token endpoint breaker (a fixed tokenEndpoint is used at once).
      if (!created) await providerBreakers.redefined(id);
    },
    providerBreakerRepo,
  );
  const breakerPolicy: BreakerPolicy = { maxConsecutiveFailures: 3, cooldownMs: 120_000, ...options.breaker };
  const providerBreakers = new ProviderBreakers({
    repo: providerBreakerRepo,
    policy: breakerPolicy,
    clock,
    logger,
    hooks,
    telemetry,
    rescheduleDeferred: async (providerId, nowMs) => {
      const n = await repo.rescheduleProvider(providerId, nowMs, [BREAKER_OPEN_CODE]);
      if (n > 0) scheduler.wake(nowMs);
      return n;
    },
  });
  const engine = new RefreshEngine({ repo, providers, encryptor, clock, fetch: fetchImpl, logger, policy, hooks, units, random, instanceId, telemetry, freshTokens, breakers: providerBreakers });
  const scheduler = new RefreshScheduler(repo, engine, clock, logger, { batchSize: 200, concurrency: 32, maxSleepMs: 30_000, ...options.scheduler });
  const connections = new ConnectionService({ repo, providers, engine, scheduler, encryptor, clock, fetch: fetchImpl, logger, policy, hooks, units, random, freshTokens });
  const api = new ApiClient({ connections, repo, providers, clock, logger, hooks, telemetry, options: apiOptions, freshTokens });
  const parkWhenDisabled = options.integrations?.parkWhenDisabled ?? true;
  // Signing settings cached for ≤ 5 s; this instance's own changes drop its entry at once.
  const signingCache = new WebhookSigningCache(clock);
  const integrations = new IntegrationService({
    repo: integrationRepo,
    signingCache,
    jobs: jobRepo,
    connections: repo,
    encryptor,
    clock,
    logger,
    hooks,
    policy: { resetOnReauth: options.integrations?.resetOnReauth ?? ["ERROR"], parkWhenDisabled },
  });
  integrations.attach();
  const handlers = new Map<string, JobHandler>();
  const worker: JobWorker = new JobWorker({
    jobs: jobRepo,
    breakerStore: breakerRepo,
    units,
    integrations: integrationRepo,
    connections,
    api,
    encryptor,
    clock,
    fetch: fetchImpl,
    logger,
    hooks,
    handlers,
    breaker: breakerPolicy,
    options: { leaseMs: 60_000, concurrency: 8, batchSize: 64, pollMs: 1_000, ...options.jobs, ...resolveJobPolicy({ maxAttempts: options.jobs?.maxAttempts, backoffBaseMs: options.jobs?.backoffBaseMs, backoffMaxMs: options.jobs?.backoffMaxMs, parkWhenDisabled }) },
    instanceId,
    random,
    telemetry,
    committedGroups: () => ingress.committedGroups(),
  });
  // Store-backed gauges are read at scrape time, never per event.
  telemetry.metrics.attach({
    jobsByState: () => jobRepo.countByState(),
    connectionsByState: () => repo.countByState(),
    openBreakers: () => breakerRepo.countOpen(),
    retentionOldestAgeSeconds: async () => {
      const now = clock.now();
      const oldest = await retentionRepo.oldestFinished(now);
      return Object.fromEntries(Object.entries(oldest).map(([table, at]) => [table, at === null ? 0 : Math.max(0, (now - at) / 1000)]));
    },
    providerBreakers: async () => Object.fromEntries(Object.entries(await providers.tokenEndpointBreakers()).map(([id, view]) => [id, view.state === "open"])),
  });
  // Claim at accept pays on SQLite (no claim query, no payload read) and costs on PostgreSQL, where the INSERT's
  // "nothing of the integration waits" probes sit in every accept's commit: 1.9-2.0k vs 2.7k jobs/s accept -> delivered
  // measured side by side (docs/architecture.md "Claim at accept").
  const ingress: IngressService = new IngressService({ integrations: integrationRepo, jobs: jobRepo, encryptor, clock, logger, parkWhenDisabled, maxBodyBytes: options.jobs?.maxBodyBytes ?? 1_048_576, signingCache, secretOverlapMs: options.webhook?.secretOverlapMs ?? 86_400_000, ...(store.dialect === "sqlite" ? { handoff: worker } : {}), localWorker: worker, onQueued: (committed: number) => worker.wake(committed) });
  const jobs = new JobService(jobRepo, integrationRepo, clock, () => worker.wake());
  const sinks: AlertSink[] = [];
  for (const config of options.alerts?.sinks ?? [{ type: "log", audience: "ops", minSeverity: "info" } satisfies SinkConfig]) {
    if (config.type === "log") sinks.push(new LogSink(config, logger));
    else if (config.type === "slack") sinks.push(new SlackSink(config, fetchImpl));
    else {
      const sink = new WebhookSink(config, { integrations: integrationRepo, jobs: jobRepo, encryptor, clock, wake: () => worker.wake() });
      await sink.ensureIntegration();
      sinks.push(sink);
    }
  }
  const publicUrl = (options.publicUrl ?? "http://127.0.0.1:7420").replace(/\/+$/, "");
  const sessionRepo = new ConnectSessionRepository(store.db);
  const authorization = new AuthorizationService({
    states: new OAuthStateRepository(store.db, store.dialect),
    sessions: sessionRepo,
    expired: retentionRepo,
    providers,
    connections,
    encryptor,
    clock,
    fetch: fetchImpl,
    logger,
    policy,
    publicUrl,
    allowedReturnOrigins: [new URL(publicUrl).origin, ...(options.allowedReturnOrigins ?? []).map((o) => new URL(o).origin)],
    stateTtlMs: options.stateTtlMs ?? 600_000,
  });
  for (const [id, input] of Object.entries(options.providers ?? {})) {
    await providers.put(id, input);
  }
  const connectSessions = new ConnectSessionService({ repo: sessionRepo, providers, clock, publicUrl, checkReturnTo: (r) => authorization.checkReturnTo(r) });
  const alerts = new AlertService({
    repo: new AlertRepository(store.db),
    connections: repo,
    providers,
    hooks,
    sinks,
    clock,
    logger,
    policy: { ...defaultEpisodePolicy, ...options.alerts?.policy },
    maxPerMinutePerSink: options.alerts?.maxPerMinutePerSink ?? 30,
    reconnectUrl: options.alerts?.reconnectUrl ?? undefined,
    onSent: (kind, sink) => telemetry.metrics.alertSent(kind, sink),
    onSendFailed: (kind, sink) => telemetry.metrics.alertSendFailed(kind, sink),
  });
  alerts.attach();
  const operations = new OperationsService({ ops: new OperationsRepository(store.db), connections: repo, integrations: integrationRepo, jobs: jobRepo, providers, clock });
  const gk: Grantkeeper = {
    operations,
    connections,
    integrations,
    jobs,
    alerts,
    ingress,
    api,
    worker,
    handle(name, handler) {
      handlers.set(name, handler);
      worker.wake();
    },
    providers,
    authorization,
    scheduler,
    hooks,
    storeLocation: store.location,
    async health() {
      const reachable = await isReachable(store);
      return { reachable, pendingMigrations: reachable ? await pendingMigrations(store).catch(() => ["(unknown)"]) : ["(unknown)"] };
    },
    clock,
    logger,
    policy,
    instanceId,
    telemetry,
    connectSessions,
    preflight: (entityId, requirements) =>
      preflight({ connections: repo, providers, connectLink: async (providerId, entityId, opts) => (await connectSessions.create({ providerId, entityId, ...opts })).connectUrl }, entityId, requirements),
    async start() {
      scheduler.start();
      worker.start();
      retention.start();
    },
    async stop() {
      await Promise.all([scheduler.stop(), worker.stop(), retention.stop()]);
    },
    async close() {
      await Promise.all([scheduler.stop(), worker.stop(), retention.stop()]);
      // Drain before the store goes (issue 12 item 5: a one-shot `connections refresh` lost its episode's
      // refresh_failed alert to "driver has already been destroyed"): refreshes started outside the
      // scheduler, then the alerts their events raised.
      await engine.settled();
      await alerts.idle();
      await api.close();
      await store.close();
    },
  };
  registerInternals(gk, { store, engine, retention, freshTokens, providerBreakers: providerBreakerRepo });
  return gk;
}
