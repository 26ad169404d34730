/** Where the database is: `DATABASE_URL`, or the embedded PostgreSQL under `DATA_DIR`. */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { startEmbeddedPostgres } from './embedded.js';

export type Database = { url: string; embedded: boolean; stop(): Promise<void> };

export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: false, stop: async () => {} };
  const embedded = await startEmbeddedPostgres(config.dataDir, log);
  return { ...embedded, embedded: true };
}
