/**
 * DATABASE_URL reaches `pg` whole: the ORM alone would read only its host, port, user, password
 * and database, and silently drop the rest (a socket folder in `?host=`, `sslmode`, `options`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOrm } from '../src/db/orm.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

describe('DATABASE_URL', () => {
  it("keeps its query parameters on the ORM's connections", async () => {
    const url = new URL(database.url);
    url.searchParams.set('application_name', 'url-parameters-kept');
    url.searchParams.set('options', '-c statement_timeout=4321');
    const orm = await openOrm({ clientUrl: url.toString(), log: createLogger('silent') });
    try {
      const [row] = await orm.em
        .fork()
        .execute<{ name: string; timeout: string }[]>(
          `select current_setting('application_name') as name, current_setting('statement_timeout') as timeout`,
        );
      expect(row).toEqual({ name: 'url-parameters-kept', timeout: '4321ms' });
    } finally {
      await orm.close();
    }
  });
});
