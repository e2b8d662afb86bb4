/**
 * grantkeeper: keeps third-party OAuth 2.0 grants alive and the integrations
 * on top of them healthy. Library entry point.
 *
 * Every type a public signature names is exported here, and so is every
 * error a public `@throws` names (src/publicSurface.test.ts checks both).
 * The services `Grantkeeper` hands out are exported as types only: a
 * consumer receives them from `createGrantkeeper`, never constructs them.
 */
export { createGrantkeeper, type Grantkeeper, type GrantkeeperOptions, type StoreHealth } from "./grantkeeper.js";
export { createApp, type AppOptions } from "./http/app.js";
export { listen, resolveServerLimits, defaultServerLimits, type RunningServer, type ListenOptions, type ServerLimits } from "./http/server.js";
export { ProblemError, isProblemError, problemOf, STATUS_BY_KIND, type ProblemBody } from "./http/problem.js";
export {
  GrantkeeperError,
  ErrorCode,
  ERROR_KINDS,
  isGrantkeeperError,
  isNotFoundError,
  isInvalidInputError,
  isMalformedRequestError,
  isUnauthorizedError,
  isConflictError,
  isGoneError,
  isTooLargeError,
  isRateLimitedError,
  isUnavailableError,
  isUpstreamFailedError,
  isUpstreamTimeoutError,
  isMisconfiguredError,
  isMethodNotAllowedError,
  type ErrorKind,
  type ErrorCodeValue,
  type FieldIssue,
  type ErrorDetails,
  type GrantkeeperErrorOptions,
} from "./domain/errors.js";
export { systemClock, ManualClock, type Clock } from "./domain/clock.js";
export { classifyRefreshFailure, forClientCredentials, parseRetryAfter, type Classification, type RefreshObservation, type ErrorClassOverrides } from "./domain/classify.js";
export {
  CONNECTION_STATES,
  HOST_REPORTED_STATES,
  INTEGRATION_STATUSES,
  JOB_STATES,
  CLAIMABLE_JOB_STATES,
  FINISHED_JOB_STATES,
  isUsable,
  type ConnectionState,
  type HostReportedState,
  type IntegrationStatus,
  type JobState,
  type LastError,
  type FailureClass,
} from "./domain/states.js";
export { defaultRefreshPolicy, resolveRefreshPolicy, policyForProvider, type RefreshPolicy, type ProviderTiming } from "./domain/policy.js";
export type { PermanentGrantReason, PermanentProviderReason, TransientReason, ChallengeObservation, ErrorClassOverride } from "./domain/classify.js";
export { BREAKER_STATES, type BreakerPolicy, type BreakerState, type BreakerStateName } from "./domain/breaker.js";
export { defaultRetentionPolicy, type RetentionPolicy } from "./domain/retention.js";
export { defaultJobPolicy, type JobPolicy, type Disposition } from "./domain/jobLifecycle.js";
export { JOB_ERROR_CLASSES, JobAuthCode, type JobLastError, type JobErrorClass, type JobAuthCodeValue } from "./domain/jobLastError.js";
export { defaultEpisodePolicy, type EpisodePolicy } from "./domain/alertEpisodes.js";
export { TokenEndpointError, isTokenEndpointError, type TokenSet } from "./oauth/tokenEndpoint.js";
export { DatabaseUrlError } from "./store/database.js";
export { EncryptionKeyError, DecryptionError } from "./store/encryption.js";
export type { ConnectionFilter, ConnectionSummaryRow } from "./store/connections.js";
export type { CachedGrant } from "./lifecycle/freshTokens.js";
export type { ConnectionService } from "./lifecycle/connections.js";
export type { LifecycleEvents, LifecycleListener } from "./lifecycle/hooks.js";
export type { RefreshScheduler, SchedulerOptions, SchedulerStats } from "./lifecycle/scheduler.js";
export type { AuthorizationService, CallbackResult, StartedFlow } from "./lifecycle/authorization.js";
export type { IntegrationService, NewIntegration, IntegrationPolicy, WebhookSettings } from "./integrations/service.js";
export type { JobService } from "./jobs/service.js";
export type { IngressService } from "./jobs/ingress.js";
export type { JobWorker } from "./jobs/worker.js";
export type { WorkerOptions, WorkerStats } from "./jobs/workerTypes.js";
export type { OperationsService, OperationsOverview, OpenAlertEpisode, ProviderHealth, ProviderBreakerState, HourlyRefreshOutcomes } from "./operations/overview.js";
export type { ProviderService, ProviderForCall, ProviderBreakerReader } from "./providers/service.js";
export type { ClaimedJob, JobPayload } from "./store/jobRows.js";
export type { AlertService } from "./alerts/service.js";
export type { AlertRecord, Audience, SinkConfig } from "./alerts/sinks.js";
export type { AlertSubject } from "./alerts/messages.js";
export { LifecycleErrorCode } from "./lifecycle/errors.js";
export type { Connection, ConnectionEvent } from "./lifecycle/view.js";
export type { AccessToken, GrantInput, ClientCredentialsInput } from "./lifecycle/connections.js";
export type { LifecycleEventMap, LifecycleEventName } from "./lifecycle/hooks.js";
export { GRANT_TYPES, grantTypeOf, type ProviderInput, type ProviderDefinition, type GrantType, type ApiAuthFailure } from "./providers/definition.js";
export { apiBaseUrlFor, type ConnectionConfig } from "./providers/connectionConfig.js";
export { ApiClient, defaultApiClientOptions, toWebResponse, type ApiClientOptions, type ApiRequest, type ApiAnswer, type ApiAnswerHead, type ApiAuthOutcome } from "./lifecycle/api/authorizedFetch.js";
export type { BodySource } from "./lifecycle/api/bodies.js";
export { API_METHODS, type ApiMethod } from "./lifecycle/api/target.js";
export { API_AUTH_REJECTED } from "./domain/transitions.js";
export type { ProviderView } from "./providers/service.js";
export type { ProviderBreakerView } from "./domain/providerBreaker.js";
export { loadConfig, ConfigError, type GrantkeeperConfig } from "./config/config.js";
export { createLogger, type Logger, type LoggerOptions } from "./telemetry/logger.js";
export { Metrics, defaultMetricsOptions, type MetricsOptions, type MetricsSources, type RefreshAttemptResult, type RefreshClassLabel, type JobRunOutcome } from "./telemetry/metrics.js";
export { createTelemetry, type Telemetry } from "./telemetry/telemetry.js";
export { startTracing, tracingOptionsFromEnv, SpanNames, TRACER_NAME, type TracingOptions, type TracingHandle } from "./telemetry/tracing.js";
export { UserError, AuthError, isUserError, isAuthError } from "./jobs/errors.js";
export type { Job, JobContext, JobHandler } from "./jobs/context.js";
export type { JobView } from "./jobs/service.js";
export type { Accepted } from "./jobs/ingress.js";
export type { Integration, IntegrationEvent } from "./integrations/view.js";
export type { PreflightResult, PreflightItem, PreflightRequirement } from "./lifecycle/preflight.js";
export { CONNECT_SESSION_TTL, type ConnectSession, type ConnectSessionInput, type ConnectSessionService, type OpenedSession } from "./lifecycle/connectSessions.js";
export { maskConnectLinks } from "./telemetry/logger.js";
export { signDelivery, verifyDeliverySignature } from "./jobs/signatures.js";
