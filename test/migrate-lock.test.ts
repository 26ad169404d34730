/**
 * Instances started together on an empty database (a deployment of two, a rolling update's
 * first start) migrate it once: the migrations run under an advisory lock, and the second finds
 * them applied. Without the lock one of them failed on a type the other had just created.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrationsList } from '../migrations/index.js';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { TEST_JWT_SECRET } from './support/server.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

describe('migrations at start', () => {
  it('three instances starting at once on an empty database all start, and every migration is applied once', async () => {
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: database.url, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: 'silent' });
    const apps = await Promise.all([1, 2, 3].map(() => createApp(config, { log: createLogger('silent') })));
    try {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      const { rows } = await client.query<{ n: number; names: number }>(
        'select count(*)::int as n, count(distinct name)::int as names from mikro_orm_migrations',
      );
      await client.end();
      expect(rows[0]?.n).toBe(migrationsList.length);
      expect(rows[0]?.names).toBe(migrationsList.length);
    } finally {
      await Promise.all(apps.map((app) => app.close()));
    }
  });
});
