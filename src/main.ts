/**
 * Starts the server: config -> database -> app -> listen. On SIGINT/SIGTERM it stops taking
 * connections, lets requests in flight (running turns) finish within SHUTDOWN_GRACE, releases
 * the leases of turns still running after it, closes the pool and stops an embedded database.
 */
import { createServer } from 'node:http';
import { loadConfig } from './config.js';
import { createApp } from './http/app.js';
import { createLogger } from './log.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const app = await createApp(config, { log });
  const server = createServer(app.serverOptions, app.express);
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}/graphql`;
  log.info({ url, database: app.database.embedded ? 'embedded' : 'external', agent: config.agent }, 'stateless-chat listening');
  if (app.devToken) {
    // Printed plainly so that a newcomer can copy it; Sandbox at the URL above already has it.
    process.stdout.write(`\nGraphQL: ${url}\nDev token for user "demo" (Authorization: Bearer <token>):\n${app.devToken}\n\n`);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const forced = setTimeout(() => {
      log.warn({ graceMs: config.shutdownGraceMs }, 'requests still running after the grace period; closing them');
      server.closeAllConnections();
    }, config.shutdownGraceMs);
    forced.unref();
    // Keep-alive connections go idle as their last response is sent; close them then, not after
    // the keep-alive timeout.
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    clearInterval(idle);
    clearTimeout(forced);
    await app.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`stateless-chat failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
