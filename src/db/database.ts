/** Where the database is: `DATABASE_URL`, or the embedded PostgreSQL under `DATA_DIR`. */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { type EmbeddedUse, startEmbeddedPostgres } from './embedded.js';

export type Database = { url: string; embedded: boolean; stop(): Promise<void> };

/**
 * Opens the configured database. `use` says who asks for an embedded one (default: a server,
 * which refuses a DATA_DIR whose PostgreSQL another live process runs; a command shares it).
 */
export async function openDatabase(config: Config, log: Logger, use?: EmbeddedUse): Promise<Database> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: false, stop: async () => {} };
  const embedded = await startEmbeddedPostgres(config.dataDir, log, use);
  return { ...embedded, embedded: true };
}
