/**
 * The database a bench run measures on: `BENCH_DATABASE_URL` (a database it may fill), or an
 * embedded PostgreSQL in a temporary directory, reached as the server reaches its embedded one by
 * default: through the Unix socket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { postgresUrl, startPostgresServer } from '../src/db/embedded.js';

export async function benchDatabase(): Promise<{ url: string; embedded: boolean; stop(): Promise<void> }> {
  const given = process.env.BENCH_DATABASE_URL;
  if (given) return { url: given, embedded: false, stop: async () => {} };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stateless-chat-bench-'));
  const { port, socketDir, stop } = await startPostgresServer({ clusterDir: path.join(dir, 'pg'), password: 'bench', persistent: false });
  return {
    url: postgresUrl({ user: 'postgres', password: 'bench', port, database: 'postgres', socketDir }),
    embedded: true,
    async stop() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
