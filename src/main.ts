/**
 * Starts the server: config -> database -> app -> listen. A failure on the way (a bad setting, a
 * busy port) stops whatever had started and is told in one line on stderr, with exit code 1; one
 * that line does not explain (a driver's error, a bug) is followed by its stack and cause.
 *
 * On SIGINT/SIGTERM it drains, then stops. Draining: `/readyz` answers 503 at once, and for
 * DRAIN_WINDOW the server goes on taking and serving requests (each response closing its
 * connection), so that a load balancer health-checking `/readyz` sees it and sends elsewhere
 * before anything is refused: a rolling restart fails no request. Then it stops taking
 * connections, ends the subscriptions, lets requests in flight (running turns) finish within
 * SHUTDOWN_GRACE, releases the leases of turns still running after it, closes the pool and stops
 * an embedded database. A second signal during the window ends the window at once.
 */
import type { Server } from 'node:http';
import { inspect } from 'node:util';
import { loadConfig } from './config.js';
import { createLogger } from './log.js';
import { requireSupportedNode } from './node-version.js';
import { startTracing } from './tracing.js';

async function main(): Promise<void> {
  requireSupportedNode();
  const config = loadConfig();
  const log = createLogger(config.logLevel, { format: config.logFormat });
  // Tracing patches http, express, graphql and pg as they load: started before the app is imported.
  const tracing = await startTracing(config.tracing);
  const { createServer } = await import('node:http');
  const { createApp } = await import('./app.js');
  const app = await createApp(config, { log });
  const server = createServer(app.serverOptions, app.express);
  const detach = app.attach(server);
  try {
    await listen(server, config.port, config.host);
  } catch (error) {
    // Nothing started may outlive a failed start: the pool, the MCP servers, an embedded PostgreSQL.
    await app.close().catch((failure: unknown) => log.error({ err: failure }, 'could not stop what had started'));
    throw new Error(listenFailure(error, config.port, config.host), { cause: error });
  }
  // METRICS_PORT: `/metrics` on a listener of its own, which a network policy can keep private.
  const metricsServer = app.metricsExpress ? createServer(app.serverOptions, app.metricsExpress) : undefined;
  if (metricsServer) {
    const metricsPort = config.metrics.port ?? 0;
    try {
      await listen(metricsServer, metricsPort, config.host);
    } catch (error) {
      server.close();
      await app.close().catch((failure: unknown) => log.error({ err: failure }, 'could not stop what had started'));
      throw new Error(listenFailure(error, metricsPort, config.host, 'METRICS_PORT'), { cause: error });
    }
  }
  const url = `${origin(server, config.host)}/graphql`;
  log.info(
    {
      url,
      database: app.database.embedded ? 'embedded' : 'external',
      agent: config.agent,
      tracing: config.tracing.endpoint ?? 'off',
      metrics: metricsServer ? `${origin(metricsServer, config.host)}/metrics` : config.metrics.enabled ? '/metrics' : 'off',
    },
    'stateless-chat listening',
  );
  if (config.env !== 'production') {
    // Printed plainly, whatever LOG_LEVEL, so that a newcomer can copy them; Sandbox at the URL
    // already has the dev token (made only for a loopback server signing with its own dev secret).
    const token = app.devToken ? `Dev token for user "demo" (Authorization: Bearer <token>):\n${app.devToken}\n` : '';
    process.stdout.write(`\nGraphQL: ${url}\n${token}\n`);
  }

  let stopping = false;
  // Ends the drain window early (a second signal); set while the window runs.
  let endWindow: (() => void) | undefined;
  // While draining, every response closes its connection: a client's next request (a load
  // balancer's pooled connection) opens a new one, which the balancer sends to another instance.
  server.prependListener('request', (_req, res) => {
    if (stopping && !res.headersSent) res.setHeader('connection', 'close');
  });
  const stop = async (signal: string) => {
    if (stopping) {
      endWindow?.();
      return;
    }
    stopping = true;
    app.drain();
    log.info({ signal, drainWindowMs: config.drainWindowMs }, 'shutting down');
    if (config.drainWindowMs > 0) {
      await new Promise<void>((resolve) => {
        const window = setTimeout(resolve, config.drainWindowMs);
        endWindow = () => {
          clearTimeout(window);
          resolve();
        };
      });
      endWindow = undefined;
      log.info('drain window over: taking no new connections');
    }
    const forced = setTimeout(() => {
      log.warn({ graceMs: config.shutdownGraceMs }, 'requests still running after the grace period; closing them');
      server.closeAllConnections();
    }, config.shutdownGraceMs);
    forced.unref();
    // Keep-alive connections go idle as their last response is sent; close them then, not after
    // the keep-alive timeout.
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    const closing = new Promise<void>((resolve) => server.close(() => resolve()));
    // Subscriptions never finish by themselves: ended now (WebSockets closed with 1001, "going
    // away"), their clients resume elsewhere with `after:`; server.close() waits for their sockets.
    await detach();
    await closing;
    clearInterval(idle);
    clearTimeout(forced);
    // Scraped until the API's port is closed; a scrape takes milliseconds.
    if (metricsServer) {
      metricsServer.closeAllConnections();
      await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
    }
    await app.close();
    await tracing?.shutdown().catch((error: unknown) => log.warn({ err: error }, 'could not send the last spans'));
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The listen errors `listenFailure` explains in full: which setting to change. */
const EXPLAINED_LISTEN_CODES = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL']);

/** `http://host:port` of a listening `server` (IPv6 hosts bracketed). */
function origin(server: Server, host: string): string {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

// Private: why the server could not listen, as one line that says which setting to change.
function listenFailure(error: unknown, port: number, host: string, setting = 'PORT'): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EADDRINUSE':
      return `port ${port} on ${host} is in use (EADDRINUSE); set ${setting} to another port`;
    case 'EACCES':
      return `port ${port} on ${host} needs privileges this process lacks (EACCES); set ${setting} to 1024 or above`;
    case 'EADDRNOTAVAIL':
      return `${host} is not an address of this machine (EADDRNOTAVAIL); set HOST to one of its addresses, such as 127.0.0.1 or 0.0.0.0`;
    default:
      return `cannot listen on port ${port} of ${host}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

// Private: true for a start error whose one line says it all. This program's own start checks
// (settings, the Node.js version, DATA_DIR, JWT settings, MCP_CONFIG) throw plain `Error`s whose
// message names the setting and the value, and a listen failure of a known code names the setting
// to change. A library's or the system's error (a subclass, or one with a `code`), a bug, or a
// plain error wrapping some other cause needs its stack and cause to be understood.
function explained(error: unknown): boolean {
  if (!(error instanceof Error) || error.constructor !== Error || 'code' in error) return false;
  const causeCode = (error.cause as NodeJS.ErrnoException | undefined)?.code;
  return error.cause === undefined || (causeCode !== undefined && EXPLAINED_LISTEN_CODES.has(causeCode));
}

main().catch((error: unknown) => {
  process.stderr.write(`stateless-chat failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  if (!explained(error)) process.stderr.write(`${inspect(error, { depth: 4 })}\n`);
  process.exit(1);
});
