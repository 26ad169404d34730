/**
 * A fresh database per suite on the run's PostgreSQL server, dropped at the end. In a TEST_PGBOUNCER
 * run it is also reachable through the run's PgBouncer (`pooledUrl`), which the test servers use.
 */
import pg from 'pg';
import { inject } from 'vitest';

export type TestDatabase = {
  /** PostgreSQL itself: for the tests' own clients (which may hold sessions), migrations, LISTEN. */
  url: string;
  /** The same database through the run's PgBouncer in transaction mode; unset without TEST_PGBOUNCER. */
  pooledUrl?: string;
  drop(): Promise<void>;
};

/**
 * The settings of a server whose `DATABASE_URL` is `database`'s: through the run's PgBouncer when
 * there is one (`DATABASE_POOLED=transaction`, and `LISTEN_DATABASE_URL` direct unless the run polls).
 */
export function databaseSettings(database: TestDatabase): Record<string, string> {
  if (!database.pooledUrl) return { DATABASE_URL: database.url };
  return {
    DATABASE_URL: database.pooledUrl,
    DATABASE_POOLED: 'transaction',
    ...(inject('pgbouncerListen') === 'poll' ? {} : { LISTEN_DATABASE_URL: database.url }),
  };
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = `test_${crypto.randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const bouncer = inject('pgbouncerUrl');
  const pooled = bouncer ? new URL(bouncer) : undefined;
  if (pooled) pooled.pathname = `/${name}`;
  return {
    url: url.toString(),
    pooledUrl: pooled?.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await dropDatabase(client, name);
      } finally {
        await client.end();
      }
    },
  };
}

// Private: drops `name`, ending the sessions still in it. A role that is not a superuser may not
// end an autovacuum worker that happens to be in it (PostgreSQL 15: "must be a member of the role
// whose process is being terminated"); a plain DROP DATABASE stops such a worker itself, so that is
// tried then, a few times while the worker lets go.
async function dropDatabase(client: pg.Client, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query(`drop database if exists ${name} with (force)`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '42501' || attempt === 5) throw error;
    }
    try {
      await client.query(`drop database if exists ${name}`);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}
