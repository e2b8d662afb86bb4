/**
 * grantkeeper: keeps third-party OAuth 2.0 grants alive and the integrations
 * on top of them healthy. Library entry point.
 */
export { createGrantkeeper, type Grantkeeper, type GrantkeeperOptions } from "./grantkeeper.js";
export { createApp, type AppOptions } from "./http/app.js";
export { listen, type RunningServer } from "./http/server.js";
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
export { classifyRefreshFailure, parseRetryAfter, type Classification, type RefreshObservation, type ErrorClassOverrides } from "./domain/classify.js";
export { CONNECTION_STATES, HOST_REPORTED_STATES, isUsable, type ConnectionState, type HostReportedState, type LastError, type FailureClass } from "./domain/states.js";
export { defaultRefreshPolicy, resolveRefreshPolicy, type RefreshPolicy } from "./domain/policy.js";
export { LifecycleErrorCode } from "./lifecycle/errors.js";
export type { Connection, ConnectionEvent } from "./lifecycle/view.js";
export type { AccessToken, GrantInput } from "./lifecycle/connections.js";
export type { LifecycleEventMap, LifecycleEventName } from "./lifecycle/hooks.js";
export type { ProviderInput, ProviderDefinition, ApiAuthFailure } from "./providers/definition.js";
export { ApiClient, defaultApiClientOptions, toWebResponse, type ApiClientOptions, type ApiRequest, type ApiAnswer, type ApiAuthOutcome } from "./lifecycle/api/authorizedFetch.js";
export { API_METHODS, type ApiMethod } from "./lifecycle/api/target.js";
export { API_AUTH_REJECTED } from "./domain/transitions.js";
export type { ProviderView } from "./providers/service.js";
export { loadConfig, ConfigError, type GrantkeeperConfig } from "./config/config.js";
export { createLogger, type Logger } from "./telemetry/logger.js";
export { Metrics, defaultMetricsOptions, type MetricsOptions, type MetricsSources } from "./telemetry/metrics.js";
export { createTelemetry, type Telemetry } from "./telemetry/telemetry.js";
export { startTracing, tracingOptionsFromEnv, SpanNames, TRACER_NAME, type TracingOptions, type TracingHandle } from "./telemetry/tracing.js";
export { UserError, AuthError, isUserError, isAuthError } from "./jobs/errors.js";
export type { Job, JobContext, JobHandler } from "./jobs/context.js";
export type { JobView } from "./jobs/service.js";
export type { Accepted } from "./jobs/ingress.js";
export type { Integration, IntegrationEvent, IntegrationStatus } from "./integrations/view.js";
export type { PreflightResult, PreflightItem } from "./lifecycle/preflight.js";
export { CONNECT_SESSION_TTL, type ConnectSession, type ConnectSessionInput } from "./lifecycle/connectSessions.js";
export { maskConnectLinks } from "./telemetry/logger.js";
export { signDelivery, verifyDeliverySignature } from "./jobs/signatures.js";
