/**
 * Minimal ambient typings for `oidc-provider` v8, which ships no TypeScript
 * declarations (and `@types/oidc-provider` is not a dependency of this project).
 * Only the surface used by the test harness in `test/support/` is described.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** The parts of oidc-provider's per-request OIDC context that the harness reads. */
  export interface OIDCContextLike {
    /** The parsed request body (set by oidc-provider's own body parser). */
    readonly body?: Record<string, unknown>;
    /** The assembled, whitelisted request parameters. */
    readonly params?: Record<string, unknown>;
    /** The name of the matched route, e.g. "token". */
    readonly route?: string;
  }

  /** The parts of the Koa context that the harness reads or writes. */
  export interface KoaContextLike {
    readonly method: string;
    readonly path: string;
    status: number;
    type: string;
    body: unknown;
    readonly oidc?: OIDCContextLike;
  }

  /** A Koa middleware as accepted by `provider.use()`. */
  export type Middleware = (ctx: KoaContextLike, next: () => Promise<void>) => Promise<void>;

  /** The oidc-provider `Provider` class (a Koa application under the hood). */
  export default class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    readonly app: { on(event: string, listener: (...args: unknown[]) => void): unknown };
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    use(fn: Middleware): void;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
