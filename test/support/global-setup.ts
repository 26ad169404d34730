/**
 * Once per test run: a PostgreSQL server for the suites (TEST_DATABASE_URL, else an embedded one
 * in a temporary directory), and a compiled build for the tests that start the server as a real
 * child process. Each suite then makes its own database on that server and drops it at the end.
 *
 * With TEST_PGBOUNCER set (`1`: the servers LISTEN on PostgreSQL directly through
 * LISTEN_DATABASE_URL; `poll`: they have no LISTEN session and poll), a PgBouncer in transaction
 * pooling mode in front of that server too (`test/support/pgbouncer.ts`): the test servers reach
 * their database through it (`support/database.ts`'s `pooledUrl`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startPostgresServer } from '../../src/db/embedded.js';
import { startPgBouncer } from './pgbouncer.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    /** The PgBouncer in front of that server (`postgresql://user:password@127.0.0.1:<port>/`), '' without TEST_PGBOUNCER. */
    pgbouncerUrl: string;
    /** How the test servers hear of turns ended and events without a session: `listen` (LISTEN_DATABASE_URL direct) or `poll`. */
    pgbouncerListen: 'listen' | 'poll';
  }
}

export default async function setup(project: TestProject) {
  execFileSync(process.execPath, [path.resolve('node_modules/typescript/bin/tsc'), '-p', '.'], { stdio: 'inherit' });

  const external = process.env.TEST_DATABASE_URL;
  const stops: (() => Promise<void>)[] = [];
  let adminUrl: string;
  if (external) adminUrl = external;
  else {
    const dir = await mkdtemp(path.join(tmpdir(), 'stateless-chat-test-'));
    const { port, stop } = await startPostgresServer({
      clusterDir: path.join(dir, 'pg'),
      password: 'postgres',
      persistent: false,
      flags: ['-c', 'max_connections=200', '-c', 'fsync=off'],
    });
    adminUrl = `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`;
    stops.push(async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    });
  }
  project.provide('adminDatabaseUrl', adminUrl);

  const bouncer = process.env.TEST_PGBOUNCER;
  project.provide('pgbouncerListen', bouncer === 'poll' ? 'poll' : 'listen');
  if (bouncer && bouncer !== '0') {
    const pgbouncer = await startPgBouncer(adminUrl);
    project.provide('pgbouncerUrl', pgbouncer.url);
    stops.unshift(pgbouncer.stop);
  } else project.provide('pgbouncerUrl', '');
  return async () => {
    for (const stop of stops) await stop();
  };
}
