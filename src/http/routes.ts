/**
 * The express app: request ids (and the request line, counted by the metrics), CORS, health,
 * `/metrics` (unless `METRICS=off`; behind `METRICS_TOKEN` when set), `/graphql`, the REST route, `/mcp`, the chat page
 * (outside production unless `CHAT_PAGE` says otherwise), and a JSON error for anything else. A
 * GraphQL request is authenticated here (step 1 of the turn) and given its own unit of work
 * (`orm.em.fork()`, step 2) in its context; the REST route and `/mcp` do the same in their
 * handlers. From there a turn goes to `chat/` through the `Chat` handed down.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerOptions } from 'node:http';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { Authenticator } from '../auth/authenticator.js';
import type { Chat } from '../chat/chat.js';
import type { Config } from '../config.js';
import type { Orm } from '../db/orm.js';
import { AppError, forbidden, unauthenticated } from '../errors.js';
import { createContext, type OperationNotes } from '../graphql/context.js';
import type { createShapeCheck } from '../graphql/limits.js';
import type { Apollo } from '../graphql/server.js';
import type { Logger } from '../log.js';
import type { McpHub } from '../mcp/hub.js';
import type { Metrics } from '../metrics.js';
import { httpFailure, middlewareFailure, sendError, sendFailure } from './errors.js';
import { mcpRouter } from './mcp.js';
import { chatPageRouter, isLoopbackHost } from './page.js';
import { requestIds } from './request-id.js';
import { restRouter } from './rest.js';

const BODY_LIMIT = '1mb';

export type RouteDeps = {
  config: Config;
  log: Logger;
  orm: Orm;
  auth: Authenticator;
  chat: Chat;
  /** The external MCP servers, for `/readyz`. */
  mcp: McpHub;
  /** Started. */
  apollo: Apollo;
  /** Refuses a GraphQL document over a limit before Apollo parses it (`createShapeCheck`). */
  shapeCheck: ReturnType<typeof createShapeCheck>;
  /** Subscriptions over Server-Sent Events (`http/subscriptions.ts`): takes `POST /graphql` with `Accept: text/event-stream`, before Apollo. */
  sse: RequestHandler;
  /** Prefills the chat page's sign-in box (`App.devToken`); absent: the page holds no token. */
  devToken?: string;
  /** The app's metrics, served at `/metrics` and told of every request; absent with `METRICS=off`. */
  metrics?: Metrics;
  /** True once the process is stopping (`App.drain()`): `/readyz` answers 503 so that load balancers send elsewhere. */
  draining: () => boolean;
};

/** The express app of the server; it does not listen (`main.ts` does, with `serverOptions`). */
export function createRoutes(deps: RouteDeps): Express {
  const { config, log, orm, auth, chat, apollo } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(requestIds(log, deps.metrics?.request));
  // A server that holds a dev token (loopback, its own dev secret) answers loopback names only:
  // another site's name pointed at 127.0.0.1 (DNS rebinding) would otherwise read the token out of
  // Sandbox's page or the chat page, from its own origin.
  if (deps.devToken) {
    app.use((req, res, next) => {
      if (isLoopbackHost(req.headers.host)) return next();
      sendError(res, forbidden('This development server answers to loopback names only (localhost, 127.0.0.1, [::1])'), req.log);
    });
  }
  app.use(corsFor(config));
  // A preflight the CORS middleware let through (its origin is not listed) ends here, without CORS headers.
  app.options(/.*/, (_req, res) => {
    res.sendStatus(204);
  });
  // With METRICS_PORT they have a listener of their own (`createMetricsRoutes`), not this port.
  if (deps.metrics && config.metrics.port === undefined) app.get('/metrics', metricsRoute(deps.metrics, config.metrics.token));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    // Stopping: still serving, but a load balancer should send new requests elsewhere from now on.
    if (deps.draining()) {
      res.status(503).json({ status: 'draining' });
      return;
    }
    try {
      await orm.em.fork().execute('select 1');
      // The external MCP servers do not decide readiness (a turn goes on without them), but an
      // operator sees here which are connected: names, states and tool counts, nothing else.
      const mcpServers = deps.mcp.status().map(({ name, state, tools }) => ({ name, state, tools }));
      res.json({ status: 'ready', mcpServers });
    } catch (error) {
      log.warn({ err: error }, 'readiness check failed');
      res.status(503).json({ status: 'unavailable', error: 'database unreachable' });
    }
  });
  app.use(
    '/graphql',
    express.json({ limit: BODY_LIMIT }),
    deps.sse,
    shapeLimits(deps.shapeCheck),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        // Without a viewer the request still runs: fields that need one answer UNAUTHENTICATED.
        const viewer = await auth.authenticate(req.headers.authorization).catch((error: unknown) => {
          if (error instanceof AppError) return error;
          req.log.error({ err: error }, 'could not authenticate a GraphQL request');
          throw error;
        });
        // Filled by Apollo as it answers (`graphql/server.ts`), read by the request line.
        const notes: OperationNotes = { operationName: null, operationType: null, errorCodes: [] };
        req.graphql = notes;
        return { ...createContext(orm.em.fork(), chat, viewer, req.log, config.search, req.receivedAt), notes };
      },
    }),
  );
  app.use('/api', restRouter({ orm, auth, chat, bodyLimit: BODY_LIMIT, heartbeatMs: config.subscriptions.heartbeatMs }));
  app.use('/mcp', mcpRouter({ orm, auth, bodyLimit: BODY_LIMIT, limits: { ...config.rateLimits, batchMax: config.mcpBatchMax } }));
  // The chat page (`GET /`, `/page/*`): a client of `/graphql` like any other.
  if (config.chatPage) app.use(chatPageRouter({ devToken: deps.devToken }));
  app.use((req, res) => {
    sendError(res, new AppError('NOT_FOUND', 'No such route'), req.log);
  });
  app.use(lastResort(log));
  return app;
}

/** The express app of the `METRICS_PORT` listener: `GET /metrics` (behind `METRICS_TOKEN` when set), and nothing else. */
export function createMetricsRoutes({ config, log, metrics }: Pick<RouteDeps, 'config' | 'log'> & { metrics: Metrics }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestIds(log));
  app.get('/metrics', metricsRoute(metrics, config.metrics.token));
  app.use((req, res) => {
    sendError(res, new AppError('NOT_FOUND', 'No such route: this port serves GET /metrics only'), req.log);
  });
  app.use(lastResort(log));
  return app;
}

/** Options for `http.createServer`: timeouts that bound slow headers and bodies. */
export function serverOptions(config: Config): ServerOptions {
  return {
    headersTimeout: config.http.headersTimeoutMs,
    requestTimeout: config.http.requestTimeoutMs,
    // How often those timeouts are checked (Node's default, 30 s, would let them run far over).
    connectionsCheckingInterval: Math.min(config.http.headersTimeoutMs, config.http.requestTimeoutMs, 5_000) / 2,
  };
}

// Private: `GET /metrics` in the Prometheus text format; with a token, only for a request bearing
// it (compared in constant time), else 401 in the JSON of every HTTP error.
function metricsRoute(metrics: Metrics, token: string | undefined): RequestHandler {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  const expected = token === undefined ? null : digest(`Bearer ${token}`);
  return async (req, res) => {
    if (expected && !timingSafeEqual(digest(req.headers.authorization ?? ''), expected)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
      sendError(res, unauthenticated('GET /metrics needs Authorization: Bearer <METRICS_TOKEN>'), req.log);
      return;
    }
    const { contentType, text } = await metrics.scrape();
    res.setHeader('Content-Type', contentType);
    res.send(text);
  };
}

// Private: CORS for the origins of `CORS_ORIGINS` (none by default: browsers on other origins get
// no CORS headers, and their preflights are answered without them). Preflights end here with 204.
function corsFor(config: Config) {
  const origins = config.corsOrigins;
  return cors({
    // A function, so that preflights from unlisted origins are still answered (204, no CORS headers).
    origin: origins === '*' ? '*' : (origin, allow) => allow(null, origin !== undefined && origins.includes(origin)),
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: [
      'Authorization',
      'Content-Type',
      'Idempotency-Key',
      'Apollo-Require-Preflight',
      'X-Apollo-Operation-Name',
      'X-Request-Id',
      'Mcp-Protocol-Version',
      'Accept',
    ],
    exposedHeaders: ['Retry-After', 'X-Request-Id', 'WWW-Authenticate'],
    maxAge: 600,
  });
}

// Private: refuses a document over a limit before Apollo parses and validates it (a 400 in the
// shape of a GraphQL response). Batches are refused by Apollo itself.
function shapeLimits(check: RouteDeps['shapeCheck']): RequestHandler {
  return (req, res, next) => {
    const source = req.method === 'GET' ? req.query.query : (req.body as { query?: unknown } | undefined)?.query;
    const error = typeof source === 'string' ? check(source) : null;
    if (!error) return next();
    const { http: _http, ...extensions } = error.extensions;
    res.status(400).json({ errors: [{ message: error.message, extensions }] });
  };
}

// Private: anything thrown past the routes (bad JSON body, body too large, bugs) as a JSON error.
function lastResort(log: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    sendFailure(res, middlewareFailure(error) ?? httpFailure(error, req.log ?? log, 'unhandled error'));
  };
}
