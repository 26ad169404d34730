/**
 * Operator commands:
 *   migrate                 apply pending migrations
 *   migrate:create [name]   write a migration for the entities' changes into migrations/
 *   token <userId>          print a bearer token for userId (configured or kept dev secret)
 *   schema                  print the GraphQL schema (SDL)
 *   sweep                   expire and archive inactive conversations by CONVERSATION_TTL and
 *                           ARCHIVE_AFTER, once (for cron; safe beside other sweeps and servers)
 */
import 'reflect-metadata';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createAuthenticator } from './auth/authenticator.js';
import { sweep } from './chat/sweeper.js';
import { loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { migrate, openOrm } from './db/orm.js';
import { createSchema, printSdl } from './graphql/schema.js';
import { createLogger } from './log.js';
import { requireSupportedNode } from './node-version.js';

const USAGE = 'usage: cli <migrate | migrate:create [name] | token <userId> | schema | sweep>';

async function run(command: string | undefined, args: string[]): Promise<void> {
  requireSupportedNode();
  const config = loadConfig();
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  switch (command) {
    case 'token': {
      const userId = args[0];
      if (!userId) throw new Error('usage: npm run token -- <userId>');
      const auth = await createAuthenticator(config);
      if (!auth.sign) throw new Error('JWT_JWKS_URL is set: tokens come from your identity provider, not from this server');
      process.stdout.write(`${await auth.sign(userId)}\n`);
      return;
    }
    case 'schema':
      process.stdout.write(printSdl(await createSchema()));
      return;
    case 'migrate':
    case 'migrate:create': {
      // A server running on this DATA_DIR keeps its embedded PostgreSQL: the command uses it.
      const database = await openDatabase(config, log, { as: command, share: true });
      const orm = await openOrm({ clientUrl: database.url, log });
      try {
        if (command === 'migrate') {
          const applied = await migrate(orm);
          process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'no pending migrations\n');
        } else {
          await migrate(orm);
          const result = await orm.migrator.create(undefined, false, false, args[0]);
          if (!result.fileName) process.stdout.write('no changes: the entities match the migrations\n');
          else await register(result.fileName);
        }
      } finally {
        await orm.close();
        await database.stop();
      }
      return;
    }
    case 'sweep': {
      // Like `migrate`: the database of DATABASE_URL, else the embedded one (a running server's, shared).
      const database = await openDatabase(config, log, { as: command, share: true });
      const orm = await openOrm({ clientUrl: database.url, log });
      try {
        // A sweep never changes the schema: on a database not yet migrated it says what to do.
        const pending = await orm.migrator.getPending();
        if (pending.length > 0) {
          throw new Error(
            `the database has ${pending.length} migration(s) to apply first: run \`npm run migrate\` (or start the server, which applies them)`,
          );
        }
        const { expired, archived, batches } = await sweep(orm.em.fork(), config.retention, log);
        process.stdout.write(`expired ${expired}, archived ${archived} in ${batches} batch${batches === 1 ? '' : 'es'}\n`);
      } finally {
        await orm.close();
        await database.stop();
      }
      return;
    }
    default:
      throw new Error(USAGE);
  }
}

// Private: adds a new migration file to migrations/index.ts (the list the ORM runs).
async function register(fileName: string): Promise<void> {
  const base = path.basename(fileName).replace(/\.ts$/, '');
  const index = path.resolve('migrations/index.ts');
  const source = await readFile(index, 'utf8');
  const updated = source
    // After the last import: migration names start with their timestamp, so the imports stay sorted (as Biome wants them).
    .replace(/((?:^import [^\n]*\n)+)/m, `$1import { ${base} } from './${base}.js';\n`)
    .replace(/\];\s*$/, `  { name: '${base}', class: ${base} },\n];\n`)
    .replace('MigrationObject[] = [  {', 'MigrationObject[] = [\n  {');
  await writeFile(index, updated);
  process.stdout.write(`created migrations/${base}.ts and added it to migrations/index.ts\n`);
}

run(process.argv[2], process.argv.slice(3)).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
