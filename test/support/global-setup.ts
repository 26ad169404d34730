/**
 * Once per test run: a PostgreSQL server for the suites (TEST_DATABASE_URL, else an embedded one
 * in a temporary directory), and a compiled build for the tests that start the server as a real
 * child process. Each suite then makes its own database on that server and drops it at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startPostgresServer } from '../../src/db/embedded.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
  }
}

export default async function setup(project: TestProject) {
  execFileSync(process.execPath, [path.resolve('node_modules/typescript/bin/tsc'), '-p', '.'], { stdio: 'inherit' });

  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    project.provide('adminDatabaseUrl', external);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'stateless-chat-test-'));
  const { port, stop } = await startPostgresServer({
    clusterDir: path.join(dir, 'pg'),
    password: 'postgres',
    persistent: false,
    flags: ['-c', 'max_connections=200', '-c', 'fsync=off'],
  });
  project.provide('adminDatabaseUrl', `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`);
  return async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  };
}
