/**
 * The operator's command-line tool, `stateless-chat` (`npm run cli -- <command>`):
 *   migrate                 apply pending migrations
 *   migrate:create [name]   write a migration for the entities' changes into migrations/
 *   token <userId>          print a bearer token for userId (configured or kept dev secret)
 *   schema                  print the GraphQL schema (SDL)
 *   sweep                   expire and archive inactive conversations by CONVERSATION_TTL and
 *                           ARCHIVE_AFTER, once (for cron; safe beside other sweeps and servers)
 *   export                  write conversations as JSONL (the archive format), JSON or Markdown
 *   import <file>           read a JSONL archive back, idempotently
 *   archive                 write inactive conversations to gzip JSONL files and a manifest; --purge
 *                           then deletes their messages (safe beside other archive runs)
 *   restore                 bring purged conversations back from their archive files
 *
 * Arguments are parsed by `commander`; `--help` describes each command. Exit codes: 0 done, 1 the
 * command failed (one line on stderr saying why), 2 bad usage (commander's message on stderr),
 * before anything was opened or changed. The configuration is the server's (`config.ts`): the
 * database of DATABASE_URL, else the embedded one under DATA_DIR (a running server's, shared).
 */
import 'reflect-metadata';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { EXPORT_FORMATS } from './archive/layouts.js';
import type { ArchiveCommandOptions, ExportCommandOptions, RestoreCommandOptions } from './cli/archive-commands.js';
import { collectIds, parseAge, parseBatchSize, parseInstant } from './cli/options.js';
import type { Config } from './config.js';
import type { Orm } from './db/orm.js';
import type { Logger } from './log.js';
import { requireSupportedNode } from './node-version.js';

// Each command loads what it needs when it runs: `--help` and a usage error load none of it (the
// ORM, the schema, the agent), and answer at once.

/** Exit code of a command that failed. */
const FAILED = 1;
/** Exit code of a command line that is wrong (unknown command or option, bad value). */
const BAD_USAGE = 2;

function program(): Command {
  const cli = new Command('stateless-chat')
    .description('Operator commands of stateless-chat, on the database of DATABASE_URL (else the embedded one under DATA_DIR).')
    // Settings copied to every command made below: usage errors throw instead of exiting.
    .exitOverride()
    .showSuggestionAfterError()
    .helpCommand(false);

  cli
    .command('migrate')
    .description('Apply pending migrations.')
    .action(() =>
      withOrm('migrate', async (orm) => {
        const { migrate } = await import('./db/orm.js');
        const applied = await migrate(orm);
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'no pending migrations\n');
      }),
    );

  cli
    .command('migrate:create')
    .description("Write a migration for the entities' changes into migrations/ and add it to migrations/index.ts.")
    .argument('[name]', 'a name for the migration file')
    .action((name: string | undefined) =>
      withOrm('migrate:create', async (orm) => {
        const { migrate } = await import('./db/orm.js');
        await migrate(orm);
        const result = await orm.migrator.create(undefined, false, false, name);
        if (!result.fileName) process.stdout.write('no changes: the entities match the migrations\n');
        else await register(result.fileName);
      }),
    );

  cli
    .command('token')
    .description('Print a bearer token for a user, signed with JWT_SECRET or the kept dev secret (needs no database).')
    .argument('<userId>', 'the user the token is for')
    .action(async (userId: string) => {
      const [{ createAuthenticator }, { loadConfig }] = await Promise.all([import('./auth/authenticator.js'), import('./config.js')]);
      const auth = await createAuthenticator(loadConfig());
      if (!auth.sign) throw new Error('JWT_JWKS_URL is set: tokens come from your identity provider, not from this server');
      process.stdout.write(`${await auth.sign(userId)}\n`);
    });

  cli
    .command('schema')
    .description('Print the GraphQL schema (SDL).')
    .action(async () => {
      const { createSchema, printSdl } = await import('./graphql/schema.js');
      process.stdout.write(printSdl(await createSchema()));
    });

  cli
    .command('sweep')
    .description('Expire and archive inactive conversations by CONVERSATION_TTL and ARCHIVE_AFTER, once (for cron).')
    .action(() =>
      withOrm(
        'sweep',
        async (orm, config, log) => {
          const { sweep } = await import('./chat/sweeper.js');
          const { expired, archived, batches } = await sweep(orm.em.fork(), config.retention, log);
          process.stdout.write(`expired ${expired}, archived ${archived} in ${batches} batch${batches === 1 ? '' : 'es'}\n`);
        },
        { migrated: true },
      ),
    );

  cli
    .command('export')
    .summary('Write conversations as JSONL (the archive format), JSON or Markdown.')
    .description(
      'Write conversations with their messages, tool calls and usage, streamed: JSONL (one conversation per line, ' +
        'the archive format of docs/export-format.md, which import reads), a JSON array of the same records, or Markdown ' +
        'transcripts. A summary line goes to stderr.',
    )
    .option('--user <id>', "only this user's conversations")
    .option('--conversation <ids>', 'only these conversations (UUIDs; repeat the option or separate with commas)', collectIds)
    .addOption(new Option('--status <status>', 'only conversations in this state').choices(['active', 'archived', 'expired']))
    .option('--updated-after <date>', 'only conversations changed at or after this ISO 8601 date or instant', parseInstant)
    .option('--updated-before <date>', 'only conversations changed before this ISO 8601 date or instant', parseInstant)
    .addOption(new Option('--format <format>', 'the output format').choices(EXPORT_FORMATS).default('jsonl'))
    .option('--out <file>', 'write to this file instead of stdout (`-`: stdout); a name ending in .gz is gzip-compressed')
    .option('--force', 'overwrite the --out file when it exists')
    .action((options: ExportCommandOptions) =>
      withOrm(
        'export',
        async (orm) => {
          const { runExport } = await import('./cli/archive-commands.js');
          await runExport(orm.em.fork(), options);
        },
        { migrated: true },
      ),
    );

  cli
    .command('import')
    .summary('Read a JSONL archive back into the database, idempotently.')
    .description(
      'Read a JSONL archive (gzip or not) back into the database, each conversation in one transaction, idempotently: ' +
        'a conversation stored already and equal is left unchanged; one that differs is reported and skipped, unless --replace. ' +
        'Exits 1 at the first line that cannot be imported (the lines before it stay imported).',
    )
    .argument('<file>', 'the archive, as export --format jsonl wrote it (.gz or not)')
    .option('--replace', 'replace stored conversations that differ from their record')
    .action((file: string, options: { replace?: boolean }) =>
      withOrm(
        'import',
        async (orm) => {
          const { runImport } = await import('./cli/archive-commands.js');
          await runImport(orm.em.fork(), file, options);
        },
        { migrated: true },
      ),
    );

  cli
    .command('archive')
    .summary('Write inactive or archived conversations to gzip JSONL files with a manifest; --purge deletes their messages then.')
    .description(
      'Write the conversations inactive for --older-than (or archived already), not purged, to gzip JSONL files under --out ' +
        '(one per user and batch: <out>/<UTC day>/<user dir>/<run id>-<batch>.jsonl.gz) and the manifest <out>/manifests/<run id>.json, ' +
        'each made durable (fsync) and read back before anything is purged. With --purge, the messages and tool calls of each verified ' +
        'conversation are then deleted; the conversation stays, ARCHIVED, purged, with its archive location (restore brings it back). ' +
        'Safe beside other archive runs: each conversation is taken by one. A summary line goes to stderr.',
    )
    .requiredOption('--older-than <duration>', 'inactivity before a conversation is taken: 90d, 12h, 15m, 90s', parseAge)
    .requiredOption('--out <dir>', 'the archive directory (made if missing)')
    .option('--purge', 'delete the messages and tool calls of the archived conversations, once their files are verified')
    .option('--dry-run', 'say how many conversations and messages would be archived; write and change nothing')
    .option('--batch-size <n>', 'conversations per batch (one transaction, one file per user)', parseBatchSize)
    .action((options: ArchiveCommandOptions) =>
      withOrm(
        'archive',
        async (orm, _config, log) => {
          const { runArchive } = await import('./cli/archive-commands.js');
          await runArchive(orm.em.fork(), options, log);
        },
        { migrated: true },
      ),
    );

  cli
    .command('restore')
    .summary('Bring purged conversations back from their archive files, checksums verified.')
    .description(
      'Bring purged conversations back from the files an archive --purge run wrote: each file is first checked against the ' +
        'SHA-256 its conversations and its manifest name (a missing or different file: exit 1, nothing changed); then each ' +
        'conversation is restored in one transaction, its messages and tool calls exactly as archived. It stays ARCHIVED ' +
        '(unarchiveConversation reopens it). A conversation asked for that is not purged is reported and skipped.',
    )
    .option('--conversation <ids>', 'these conversations (UUIDs; repeat the option or separate with commas)', collectIds)
    .option('--user <id>', 'every purged conversation of this user')
    .option('--manifest <file>', 'every conversation of this archive run still purged (its directory is the archive directory)')
    .option('--from <dir>', 'the archive directory (the --out of archive); needed unless --manifest')
    .action((options: RestoreCommandOptions, command: Command) => {
      if (!options.conversation && options.user === undefined && !options.manifest) {
        command.error('error: say what to restore: --conversation <ids>, --user <id> or --manifest <file>', { exitCode: BAD_USAGE });
      }
      if (!options.manifest && !options.from) command.error('error: --from <dir> is required unless --manifest', { exitCode: BAD_USAGE });
      return withOrm(
        'restore',
        async (orm) => {
          const { runRestore } = await import('./cli/archive-commands.js');
          await runRestore(orm.em.fork(), options);
        },
        { migrated: true },
      );
    });

  return cli;
}

/**
 * Runs `work` with the ORM on the configured database (DATABASE_URL, else the embedded one; a
 * running server's is shared and left running), closing both after it. `migrated`: refuse a
 * database with migrations still to apply, saying what to do (the command never changes the schema).
 */
async function withOrm(
  command: string,
  work: (orm: Orm, config: Config, log: Logger) => Promise<void>,
  { migrated = false } = {},
): Promise<void> {
  const [{ loadConfig }, { createLogger }, { openDatabase }, { openOrm }] = await Promise.all([
    import('./config.js'),
    import('./log.js'),
    import('./db/database.js'),
    import('./db/orm.js'),
  ]);
  const config = loadConfig();
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const database = await openDatabase(config, log, { as: command, share: true });
  const orm = await openOrm({
    clientUrl: database.url,
    log,
    searchLanguage: config.search.language,
    pooled: config.databasePooled,
    prepare: config.databasePrepare,
  });
  try {
    if (migrated) {
      const pending = await orm.migrator.getPending();
      if (pending.length > 0) {
        throw new Error(
          `the database has ${pending.length} migration(s) to apply first: run \`npm run migrate\` (or start the server, which applies them)`,
        );
      }
    }
    await work(orm, config, log);
  } finally {
    await orm.close();
    await database.stop();
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

async function main(argv: string[]): Promise<void> {
  try {
    requireSupportedNode();
    await program().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has printed its message or the help already; help and --version are a success.
      process.exit(error.exitCode === 0 ? 0 : BAD_USAGE);
    }
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(FAILED);
  }
}

await main(process.argv);
