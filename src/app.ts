/**
 * The app factory: wiring only. It builds the parts in order (authenticator, agent, database,
 * ORM migrated, MCP servers, turn listener, the metrics unless `METRICS=off`, Apollo, the chat, the sweeper when `SWEEP_INTERVAL` is
 * set, the subscriptions, the express routes) and returns
 * them without listening; `main.ts` listens (and `attach`es the WebSocket subscriptions to its
 * server), and tests call this factory with their own database and agent.
 *
 * Each part that holds something (a process, a pool, a connection, running turns) pushes how to
 * stop it onto one list as it starts, as Apollo Server keeps its `toDispose`. A failed start and
 * `close()` both run that list backwards, every step bounded in time and logged, none throwing:
 * nothing that started outlives either, and nothing is stopped before what depends on it.
 */
import 'reflect-metadata';
import type { Server, ServerOptions } from 'node:http';
import type { Express } from 'express';
import { OfflineAgent } from './agent/offline.js';
import { OpenAiAgent } from './agent/openai-agent.js';
import type { Agent } from './agent/types.js';
import { type Authenticator, createAuthenticator } from './auth/authenticator.js';
import { createChat, turnSettings } from './chat/chat.js';
import { createEventHub } from './chat/event-hub.js';
import { startSweeper } from './chat/sweeper.js';
import type { Config } from './config.js';
import { type Database, openDatabase } from './db/database.js';
import { migrate, type Orm, openOrm } from './db/orm.js';
import { listenForTurnEnds, pollingSignals } from './db/signals.js';
import { hasSearchConfig } from './db/stores/search.js';
import { taskStore } from './db/stores/tasks.js';
import { createShapeCheck } from './graphql/limits.js';
import { createSchema } from './graphql/schema.js';
import { createApollo } from './graphql/server.js';
import { createMetricsRoutes, createRoutes, serverOptions } from './http/routes.js';
import { createSubscriptions } from './http/subscriptions.js';
import type { Logger } from './log.js';
import { loadMcpConfig } from './mcp/config.js';
import { connectMcpServers, type McpHub } from './mcp/hub.js';
import { createMetrics } from './metrics.js';

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
  /** With `METRICS_PORT` (and metrics on): the express app of that port's own listener, `GET /metrics` alone. */
  metricsExpress?: Express;
  /** Options for `http.createServer`: timeouts that bound slow headers and bodies. */
  serverOptions: ServerOptions;
  /**
   * Serves WebSocket subscriptions (graphql-ws) on `server`'s upgrades to `/graphql`; call it once
   * `server` is made. The function returned ends them (sockets closed with 1001, SSE streams
   * completed): call it before `server.close()`, which would otherwise wait for them. `close()` ends them too.
   */
  attach(server: Server): () => Promise<void>;
  /**
   * Marks the process as stopping (`main.ts`, on SIGTERM/SIGINT): from now on `/readyz` answers 503
   * `{"status":"draining"}`, so that load balancers send new requests elsewhere; every other route
   * serves as before. It cannot be undone.
   */
  drain(): void;
  /**
   * Ends the subscriptions, stops the sweeper (waiting for a sweep under way), releases the leases of turns still running, stops Apollo, the turn listener and the external
   * MCP servers, closes the pool and stops an embedded database, in that order. Never throws.
   */
  close(): Promise<void>;
};

/** One part that started, and how to stop it (given up on after `timeoutMs`, default 10 s). */
type Disposer = { what: string; dispose: () => Promise<unknown>; timeoutMs?: number };

/** How long one step of stopping may take before it is given up on (and logged). */
const DISPOSE_STEP_MS = 10_000;
const EMBEDDED_STOP_MS = 20_000;

export async function createApp(config: Config, options: AppOptions): Promise<App> {
  const { log } = options;
  // Checked before anything starts, so that a bad setting stops the server with nothing to undo.
  const auth = await createAuthenticator(config);
  const agent = options.agent ?? createAgent(config, log);
  const mcpConfig = config.mcpConfigPath ? await loadMcpConfig(config.mcpConfigPath) : { servers: {} };
  const schema = await createSchema();
  const devToken =
    config.env !== 'production' && auth.devSecret && auth.sign && isLoopback(config.host) ? await auth.sign('demo') : undefined;

  // Pushed as each part starts; run backwards by a failed start and by `close()`.
  const toDispose: Disposer[] = [];
  try {
    const database = await openDatabase(config, log);
    // An embedded PostgreSQL stops (it may take a while to checkpoint); an external one is left running.
    toDispose.push({ what: 'stopping the database', dispose: () => database.stop(), timeoutMs: EMBEDDED_STOP_MS });

    const orm = await openOrm({
      clientUrl: database.url,
      log,
      onQuery: options.onQuery,
      searchLanguage: config.search.language,
      pooled: config.databasePooled,
      prepare: config.databasePrepare,
    });
    toDispose.push({ what: 'closing the database pool', dispose: () => orm.close() });
    // Before migrating: the search migration stores existing messages with it.
    if (!(await hasSearchConfig(orm.em.fork(), config.search.language))) {
      throw new Error(
        `SEARCH_LANGUAGE: PostgreSQL has no text search configuration ${JSON.stringify(config.search.language)} (its list: select cfgname from pg_ts_config)`,
      );
    }
    const applied = await migrate(orm);
    if (applied.length > 0) log.info({ migrations: applied }, 'migrations applied');

    const mcp = await connectMcpServers(mcpConfig, log);
    toDispose.push({ what: 'closing the MCP servers', dispose: () => mcp.close() });

    // LISTEN needs a session: on LISTEN_DATABASE_URL, else on DATABASE_URL unless that goes through
    // a transaction pooler, when the waiters and the event streams poll instead.
    const polling = config.databasePooled && !config.listenDatabaseUrl;
    if (polling) {
      log.warn(
        { pollMs: config.eventPollMs },
        'DATABASE_POOLED=transaction without LISTEN_DATABASE_URL: no LISTEN; waiting turns and event streams poll the database',
      );
    }
    const events = createEventHub({ log, backlogMax: config.streamBacklogMax, pollMs: polling ? config.eventPollMs : undefined });
    const signals = polling
      ? pollingSignals()
      : await listenForTurnEnds(config.listenDatabaseUrl ?? database.url, log, events.notice).catch((error: unknown) => {
          if (!config.listenDatabaseUrl) throw error;
          throw new Error(`LISTEN_DATABASE_URL: cannot connect: ${error instanceof Error ? error.message : String(error)}`, {
            cause: error,
          });
        });
    toDispose.push({ what: 'closing the turn listener', dispose: () => signals.close() });
    // Before Apollo and the HTTP server stop: subscribers end (and resume elsewhere) instead of holding connections open.
    toDispose.push({ what: 'ending the event streams', dispose: async () => events.close() });

    // One registry per app (tests run several apps in one process), read when `/metrics` is scraped.
    const metrics = config.metrics.enabled ? await createMetrics({ orm, subscribers: () => events.size() }) : undefined;
    if (metrics) toDispose.push({ what: 'stopping the metrics', dispose: async () => metrics.close() });
    if (config.metrics.offInProduction) {
      log.info('metrics off: in production GET /metrics needs METRICS_PORT (a port of its own) or METRICS_TOKEN, or METRICS=on');
    }

    const apollo = createApollo(schema, config, devToken);
    await apollo.start();
    toDispose.push({ what: 'stopping Apollo', dispose: () => apollo.stop() });

    const chat = await createChat({
      agent,
      tools: {
        // The todo server is shared by every turn of the process: its own unit of work, no identity map kept.
        tasks: taskStore(orm.em.fork()),
        todo: { maxTasks: config.rateLimits.tasks, log },
        shared: () => mcp.servers(),
        limits: { timeoutMs: config.limits.toolTimeoutMs, maxResultBytes: config.limits.toolResultMaxBytes },
      },
      signals,
      events,
      drainMs: config.shutdownGraceMs,
      settings: turnSettings(config),
      conversationTtlMs: config.retention.ttlMs,
      log,
      observe: metrics?.turns,
    });
    toDispose.push({ what: 'closing the titles in flight and the todo server', dispose: () => chat.close() });
    // Stopped first: turns still running now will not finish here; their conversations are freed
    // for a retry elsewhere while the pool is still open.
    toDispose.push({
      what: 'releasing the leases of running turns',
      dispose: () => chat.abandonRunning(orm.em.fork()),
      timeoutMs: config.shutdownGraceMs + DISPOSE_STEP_MS,
    });

    if (config.retention.sweepIntervalMs > 0) {
      const sweeper = startSweeper(() => orm.em.fork(), config.retention, log);
      toDispose.push({ what: 'stopping the sweeper', dispose: () => sweeper.stop() });
    }

    const shapeCheck = createShapeCheck(schema, config.graphql);
    const subscriptions = createSubscriptions({ schema, config, log, orm, chat, auth, shapeCheck });
    // Ended before anything they stream from (the chat, the turn listener, the pool) stops.
    toDispose.push({ what: 'ending the subscriptions', dispose: () => subscriptions.close() });

    // Set once by `drain()`; read by `/readyz`.
    let draining = false;
    const express = createRoutes({
      config,
      log,
      orm,
      auth,
      chat,
      mcp,
      apollo,
      shapeCheck,
      sse: subscriptions.sse,
      devToken,
      metrics,
      draining: () => draining,
    });
    return {
      express,
      orm,
      database,
      auth,
      mcp,
      devToken,
      metricsExpress: metrics && config.metrics.port !== undefined ? createMetricsRoutes({ config, log, metrics }) : undefined,
      serverOptions: serverOptions(config),
      attach: (server) => {
        const detach = subscriptions.attach(server);
        return async () => {
          await detach();
          await subscriptions.close();
        };
      },
      drain: () => {
        draining = true;
      },
      close: () => disposeAll(toDispose, log),
    };
  } catch (error) {
    // Whatever started is stopped again: no pool, child process or database outlives a failed start.
    await disposeAll(toDispose, log);
    throw error;
  }
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
    systemPrompt: config.openai.systemPrompt,
    titleModel: config.openai.titleModel,
    log,
  });
}

// Private: stops what started, last started first. The list is emptied as it goes, so that a
// second call (a failed listen in `main.ts`, then a signal) stops nothing twice.
async function disposeAll(toDispose: Disposer[], log: Logger): Promise<void> {
  for (let step = toDispose.pop(); step; step = toDispose.pop()) await bounded(step, log);
}

// Private: runs one step of stopping, giving up on it after its timeout with a warning naming it.
// Bounded because a connection never given back, or a child that does not exit, must not keep
// the process from stopping (it would wait forever; the rest still gets stopped).
async function bounded({ what, dispose, timeoutMs = DISPOSE_STEP_MS }: Disposer, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    timer.unref();
  });
  try {
    const outcome = await Promise.race([dispose().then(() => 'done' as const), timeout]);
    if (outcome === 'timeout') log.warn({ step: what, ms: timeoutMs }, `${what} took longer than ${timeoutMs} ms; going on without it`);
    else log.debug({ step: what }, `${what}: done`);
  } catch (error) {
    log.error({ err: error, step: what }, `${what} failed`);
  } finally {
    clearTimeout(timer);
  }
}

/** True when `host` is a loopback address: only this machine can connect. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
