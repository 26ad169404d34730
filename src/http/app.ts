/**
 * The app factory: database, ORM (migrated), schema, Apollo, routes. It does not listen;
 * `main.ts` does, and tests call this factory with their own database and agent.
 */
import 'reflect-metadata';
import type { ServerOptions } from 'node:http';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { GraphQLError } from 'graphql';
import { OfflineAgent } from '../agent/offline.js';
import { OpenAiAgent } from '../agent/openai-agent.js';
import { loadSystemPrompt } from '../agent/system-prompt.js';
import type { Agent } from '../agent/types.js';
import { type Authenticator, createAuthenticator } from '../auth/authenticator.js';
import { createChat, turnSettings } from '../chat/chat.js';
import type { Config } from '../config.js';
import { type Database, openDatabase } from '../db/database.js';
import { migrate, type Orm, openOrm } from '../db/orm.js';
import { listenForTurnEnds, type TurnSignals } from '../db/signals.js';
import { AppError } from '../errors.js';
import { type Context, createContext } from '../graphql/context.js';
import { formatError } from '../graphql/errors.js';
import { createShapeCheck, queryLimits } from '../graphql/limits.js';
import { createSchema } from '../graphql/schema.js';
import type { Logger } from '../log.js';
import { loadMcpConfig } from '../mcp/config.js';
import { connectMcpServers, type McpHub } from '../mcp/hub.js';
import { httpFailure, middlewareFailure, sendError, sendFailure } from './errors.js';
import { mcpRouter } from './mcp.js';
import { requestIds } from './request-id.js';
import { restRouter } from './rest.js';

export type AppOptions = {
  log: Logger;
  /** The agent that runs turns; default: the one `config.agent` names. */
  agent?: Agent;
  /** Called with every SQL statement (statement counts, tracing). */
  onQuery?: (sql: string) => void;
};

export type App = {
  express: Express;
  orm: Orm;
  database: Database;
  auth: Authenticator;
  /** The external MCP servers of `MCP_CONFIG`, connected once and shared by every turn. */
  mcp: McpHub;
  /**
   * A token for user `demo`: only outside production, when this server made its own dev secret
   * (no JWT settings) and listens on loopback, so that nobody else can reach a page holding it.
   */
  devToken?: string;
  /** Options for `http.createServer`: timeouts that bound slow headers and bodies. */
  serverOptions: ServerOptions;
  /** Stops Apollo, closes the external MCP servers and the pool, and stops an embedded database. */
  close(): Promise<void>;
};

const BODY_LIMIT = '1mb';

export async function createApp(config: Config, options: AppOptions): Promise<App> {
  const { log } = options;
  const auth = await createAuthenticator(config);
  const agent = options.agent ?? createAgent(config, log);
  // Read before the database starts: a malformed MCP_CONFIG stops the server at once.
  const mcpConfig = config.mcpConfigPath ? await loadMcpConfig(config.mcpConfigPath) : { servers: {} };
  const schema = await createSchema();
  const devToken =
    config.env !== 'production' && auth.devSecret && auth.sign && isLoopback(config.host) ? await auth.sign('demo') : undefined;
  const database = await openDatabase(config, log);
  let orm: Orm | undefined;
  let mcp: McpHub | undefined;
  let apollo: ApolloServer<Context> | undefined;
  let signals: TurnSignals | undefined;
  try {
    orm = await openOrm({ clientUrl: database.url, log, onQuery: options.onQuery });
    const applied = await migrate(orm);
    if (applied.length > 0) log.info({ migrations: applied }, 'migrations applied');
    mcp = await connectMcpServers(mcpConfig, log);
    signals = await listenForTurnEnds(database.url, log);
    apollo = new ApolloServer<Context>({
      schema,
      introspection: config.introspection,
      includeStacktraceInErrorResponses: false,
      // main.ts owns shutdown (drain, then close pool and database); Apollo's own signal handling races it.
      stopOnTerminationSignals: false,
      formatError: formatError(log, { hideSuggestions: config.env === 'production' }),
      // The parser stops at the token limit; the other limits run before validation and execution.
      parseOptions: { maxTokens: config.graphql.maxTokens },
      // A browser cannot send a cross-site simple request with an Authorization header: a request
      // carrying one was preflighted (or made by a non-browser client), so it is no CSRF.
      csrfPrevention: { requestHeaders: ['x-apollo-operation-name', 'apollo-require-preflight', 'authorization'] },
      plugins: [queryLimits(schema, config.graphql), landingPage(config, devToken)],
    });
    await apollo.start();
  } catch (error) {
    // Whatever started is stopped again: no pool, child process or database outlives a failed start.
    await apollo?.stop();
    await signals?.close();
    await mcp?.close();
    await orm?.close();
    await database.stop();
    throw error;
  }

  const hub = mcp;
  const chat = createChat({
    agent,
    tools: {
      shared: () => hub.servers(),
      limits: { timeoutMs: config.limits.toolTimeoutMs, maxResultBytes: config.limits.toolResultMaxBytes },
      todo: { maxTasks: config.rateLimits.tasks, log },
    },
    signals,
    settings: turnSettings(config),
    log,
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(requestIds(log));
  app.use(corsFor(config));
  // A preflight the CORS middleware let through (its origin is not listed) ends here, without CORS headers.
  app.options(/.*/, (_req, res) => {
    res.sendStatus(204);
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await orm.em.fork().execute('select 1');
      res.json({ status: 'ready' });
    } catch (error) {
      log.warn({ err: error }, 'readiness check failed');
      res.status(503).json({ status: 'unavailable', error: 'database unreachable' });
    }
  });
  app.use(
    '/graphql',
    express.json({ limit: BODY_LIMIT }),
    shapeLimits(createShapeCheck(schema, config.graphql)),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        const viewer = await auth.authenticate(req.headers.authorization).catch((error: unknown) => {
          if (error instanceof AppError) return error;
          throw error;
        });
        return createContext(orm.em.fork(), chat, viewer, req.log);
      },
    }),
  );
  app.use('/api', restRouter({ orm, auth, chat, bodyLimit: BODY_LIMIT }));
  app.use('/mcp', mcpRouter({ orm, auth, bodyLimit: BODY_LIMIT, limits: { ...config.rateLimits, batchMax: config.mcpBatchMax } }));
  app.use((req, res) => {
    sendError(res, new AppError('NOT_FOUND', 'No such route'), req.log);
  });
  app.use(lastResort(log));

  return {
    express: app,
    orm,
    database,
    auth,
    mcp,
    devToken,
    serverOptions: {
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      // How often those timeouts are checked (Node's default, 30 s, would let them run far over).
      connectionsCheckingInterval: Math.min(config.http.headersTimeoutMs, config.http.requestTimeoutMs, 5_000) / 2,
    },
    async close() {
      // Turns still running now will not finish here: free their conversations for a retry elsewhere.
      await chat.abandonRunning(orm.em.fork()).catch((error: unknown) => {
        log.error({ err: error }, 'could not release the leases of running turns');
      });
      // Each step bounded: a connection never given back, or a child that does not exit, must not
      // keep the process from stopping (it would wait forever; the rest still gets closed).
      await bounded('Apollo', () => apollo.stop(), log);
      await bounded('turn listener', () => signals.close(), log);
      await bounded('MCP servers', () => mcp.close(), log);
      await bounded('database pool', () => orm.close(), log);
      await bounded('embedded PostgreSQL', () => database.stop(), log, EMBEDDED_STOP_MS);
    },
  };
}

function createAgent(config: Config, log: Logger): Agent {
  if (config.agent === 'offline') return new OfflineAgent();
  if (!config.openai.apiKey) {
    throw new Error('AGENT=openai needs OPENAI_API_KEY (any non-empty value for servers that check none, such as Ollama)');
  }
  return new OpenAiAgent({
    apiKey: config.openai.apiKey,
    baseURL: config.openai.baseUrl,
    model: config.openai.model,
    maxRetries: config.openai.maxRetries,
    maxToolRounds: config.limits.maxToolRounds,
    contextTokens: config.contextTokens,
    systemPrompt: loadSystemPrompt(config),
    log,
  });
}

/** How long one step of `close()` may take before it is given up on (and logged). */
const CLOSE_STEP_MS = 10_000;
const EMBEDDED_STOP_MS = 20_000;

// Private: runs one step of closing, giving up on it after `ms` with a warning naming it.
async function bounded(what: string, step: () => Promise<unknown>, log: Logger, ms = CLOSE_STEP_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  try {
    const outcome = await Promise.race([step().then(() => 'done' as const), timeout]);
    if (outcome === 'timeout') log.warn({ step: what, ms }, `closing the ${what} took longer than ${ms} ms; going on without it`);
  } catch (error) {
    log.error({ err: error, step: what }, `closing the ${what} failed`);
  } finally {
    clearTimeout(timer);
  }
}

/** True when `host` is a loopback address: only this machine can connect. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
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
function shapeLimits(check: (source: string) => GraphQLError | null): RequestHandler {
  return (req, res, next) => {
    const source = req.method === 'GET' ? req.query.query : (req.body as { query?: unknown } | undefined)?.query;
    const error = typeof source === 'string' ? check(source) : null;
    if (!error) return next();
    const { http: _http, ...extensions } = error.extensions;
    res.status(400).json({ errors: [{ message: error.message, extensions }] });
  };
}

// Private: Sandbox outside production with the dev token already in the Authorization header.
function landingPage(config: Config, devToken: string | undefined): ApolloServerPlugin<Context> {
  if (!config.introspection) return ApolloServerPluginLandingPageDisabled();
  return ApolloServerPluginLandingPageLocalDefault({
    embed: { initialState: { sharedHeaders: devToken ? { Authorization: `Bearer ${devToken}` } : {} } },
    includeCookies: false,
    footer: false,
  });
}

// Private: anything thrown past the routes (bad JSON body, body too large, bugs) as a JSON error.
function lastResort(log: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    sendFailure(res, middlewareFailure(error) ?? httpFailure(error, req.log ?? log, 'unhandled error'));
  };
}
