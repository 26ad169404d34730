/**
 * The ORM configuration for MikroORM's own CLI (`npx mikro-orm ...`), built from the same
 * settings as the server. The project's commands (`npm run migrate`, `npm run migrate:create`)
 * use `src/cli.ts`, which also starts the embedded database when `DATABASE_URL` is unset.
 */
import 'reflect-metadata';
import { loadConfig } from './src/config.js';
import { ormConfig } from './src/db/orm.js';
import { createLogger } from './src/log.js';

const config = loadConfig();
if (!config.databaseUrl) throw new Error('Set DATABASE_URL to use the MikroORM CLI directly; or use npm run migrate');

export default ormConfig({ clientUrl: config.databaseUrl, log: createLogger(config.logLevel) });
