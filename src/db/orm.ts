/**
 * The ORM: MikroORM on PostgreSQL, configured from `Config`, with the migrations of
 * `migrations/` compiled in. The schema is changed only by those migrations.
 */

import type { LogContext, LoggerNamespace, Logger as OrmLogger } from '@mikro-orm/core';
import { ReflectMetadataProvider } from '@mikro-orm/decorators/legacy';
import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, MikroORM, type Options } from '@mikro-orm/postgresql';
import type pg from 'pg';
import type { Logger } from 'pino';
import { migrationsList } from '../../migrations/index.js';
import { entities } from '../entities/index.js';
import { guardPool } from './pool-guard.js';
import { SETTINGS_KEY, type SessionSettings } from './settings.js';

export type Orm = MikroORM;

const CONNECTION_WAIT_MS = 15_000;

export type OrmOptions = {
  clientUrl: string;
  log: Logger;
  /** Called with every SQL statement the ORM sends (for statement counts and tracing). */
  onQuery?: (sql: string) => void;
  poolMax?: number;
  /**
   * The text search configuration (SEARCH_LANGUAGE) new messages are indexed with: every connection
   * carries it as `stateless_chat.search_language`, which the `message.search_config` column's
   * default reads. Unset: `simple`.
   */
  searchLanguage?: string;
  /**
   * DATABASE_URL goes through a transaction pooler (DATABASE_POOLED=transaction): no startup
   * `options` (PgBouncer refuses them, and a session setting would not follow the transactions);
   * new messages carry their `search_config` explicitly instead (`searchLanguageOf`).
   */
  pooled?: boolean;
  /** Named prepared statements on the hot path (`direct.ts`); default true. */
  prepare?: boolean;
};

/** The connection setting the default of `message.search_config` reads (see the search migration). */
export const SEARCH_LANGUAGE_SETTING = 'stateless_chat.search_language';

/** The ORM options shared by the server, the CLI and `mikro-orm.config.ts`. */
export function ormConfig({ clientUrl, log, onQuery, poolMax = 10, searchLanguage, pooled = false, prepare = true }: OrmOptions): Options {
  const logsQueries = onQuery !== undefined || log.isLevelEnabled('trace');
  return defineConfig({
    clientUrl,
    entities,
    metadataProvider: ReflectMetadataProvider,
    extensions: [Migrator],
    // The snapshot (what the migrations build) changes only with `migrate:create`, never when migrating.
    migrations: {
      path: 'migrations',
      pathTs: 'migrations',
      migrationsList,
      emit: 'ts',
      snapshot: true,
      snapshotOnMigrate: false,
      snapshotName: '.snapshot',
    },
    pool: { min: 0, max: poolMax },
    driverOptions: {
      // The whole URL to `pg`: the ORM reads only its host, port, user, password and database, and
      // would drop the rest (`?host=/socket/dir`, `?sslmode=require`, `?options=...`).
      // Through a transaction pooler no startup option: PgBouncer refuses `options`, and the
      // language is in every message insert anyway.
      connectionString: searchLanguage && !pooled ? withSetting(clientUrl, SEARCH_LANGUAGE_SETTING, searchLanguage) : clientUrl,
      // A request waits at most this long for a free connection, then fails instead of hanging.
      connectionTimeoutMillis: CONNECTION_WAIT_MS,
      onPoolCreated: guardPool,
      // Read by the server's statements (`searchLanguageOf`, `preparesStatements`); `pg` ignores it.
      [SETTINGS_KEY]: { searchLanguage: searchLanguage ?? 'simple', prepare } satisfies SessionSettings,
    },
    debug: logsQueries ? ['query'] : false,
    loggerFactory: () => queryLogger(log, onQuery),
  });
}

/** Opens the ORM; fails fast when the database cannot be reached. */
export async function openOrm(options: OrmOptions): Promise<Orm> {
  return MikroORM.init(ormConfig(options));
}

/** Applies every pending migration; returns the names applied. */
export async function migrate(orm: Orm): Promise<string[]> {
  // One migrator at a time per database: instances started together would otherwise both apply
  // the first migration, and one would fail on what the other created. The lock is a
  // transaction's, held by a transaction left open on a connection of the pool while the migrator
  // works on others: a session's lock would stay behind on a server connection of a transaction
  // pooler (PgBouncer), unreleased, while an open transaction keeps its server connection pinned and
  // lets go of the lock when it ends. (Migrate against PostgreSQL directly all the same: see docs/deploy.md.)
  const pool = (await orm.em.getConnection().getNativeClient()) as pg.Pool;
  const holder = await pool.connect();
  let broken: Error | undefined;
  try {
    await holder.query('begin');
    try {
      await holder.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const applied = await orm.migrator.up();
      return applied.map((migration) => migration.name);
    } finally {
      await holder.query('commit').catch((error: unknown) => {
        broken = error instanceof Error ? error : new Error(String(error));
      });
    }
  } finally {
    try {
      holder.release(broken);
    } catch {
      // Released already (pool-guard.ts gives back a connection whose COMMIT failed).
    }
  }
}

/** The advisory lock key migrations are applied under (any fixed bigint; this one spells "chatmig"). */
const MIGRATION_LOCK = '109508581767527';

// Private: routes the ORM's log lines into pino, and every statement to `onQuery`.
function queryLogger(log: Logger, onQuery?: (sql: string) => void): OrmLogger {
  return {
    log(namespace: LoggerNamespace, message: string) {
      log.debug({ orm: namespace }, message);
    },
    error(namespace: LoggerNamespace, message: string) {
      log.error({ orm: namespace }, message);
    },
    warn(namespace: LoggerNamespace, message: string) {
      log.warn({ orm: namespace }, message);
    },
    logQuery(context: LogContext) {
      if (context.query) {
        onQuery?.(context.query);
        log.trace({ sql: context.query, took: context.took }, 'sql');
      }
    },
    setDebugMode() {},
    isEnabled(namespace: LoggerNamespace) {
      return namespace === 'query' && (onQuery !== undefined || log.isLevelEnabled('trace'));
    },
  };
}

// Private: `url` with `-c name=value` added to its `options` parameter (kept when the URL has one),
// so that the server sets it on every connection as it opens: no statement is added anywhere.
// `value` is an identifier (config.ts checks it), with nothing to escape.
function withSetting(url: string, name: string, value: string): string {
  const parsed = new URL(url);
  const given = parsed.searchParams.get('options');
  parsed.searchParams.set('options', [given, `-c ${name}=${value}`].filter(Boolean).join(' '));
  return parsed.toString();
}
