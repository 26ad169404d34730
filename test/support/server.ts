/**
 * An app on a fresh database, listening on a free loopback port, with a real GraphQL client.
 * `createApp` is the same factory `main.ts` uses; the test only chooses the database and the agent.
 * Given another server's `database`, it is a second instance on that same database (as behind a
 * load balancer), which leaves the database to its owner.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GraphQLClient } from 'graphql-request';
import pg from 'pg';
import type { Agent } from '../../src/agent/types.js';
import { type App, createApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/log.js';
import { createTestDatabase, databaseSettings, type TestDatabase } from './database.js';
import { defined } from './defined.js';
import { unscopedReason } from './user-scope.js';

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256';

export type TestServer = {
  /** `http://127.0.0.1:<port>`; WebSocket subscriptions are at `ws://127.0.0.1:<port>/graphql`. */
  url: string;
  app: App;
  config: Config;
  database: TestDatabase;
  /** A plain SQL client on the test database, for checking exactly what is stored. */
  db: pg.Client;
  /** A signed token for `userId`. */
  token(userId: string): Promise<string>;
  /** A GraphQL client acting as `userId` (no token when null). */
  client(userId: string | null): Promise<GraphQLClient>;
  /** Statements the ORM sent since the last `resetQueries()`. */
  queries: string[];
  resetQueries(): void;
  close(): Promise<void>;
};

export async function startTestServer(
  options: { agent?: Agent; env?: Record<string, string>; database?: TestDatabase; log?: Logger } = {},
): Promise<TestServer> {
  const owned = options.database === undefined;
  const database = options.database ?? (await createTestDatabase());
  const config = loadConfig({
    NODE_ENV: 'test',
    ...databaseSettings(database),
    JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...options.env,
  });
  const queries: string[] = [];
  // Every statement of every test is checked: one on user data without its user fails the file.
  const unscoped: string[] = [];
  const onQuery = (sql: string) => {
    queries.push(sql);
    const reason = unscopedReason(sql);
    if (reason) unscoped.push(`${reason}: ${sql}`);
  };
  const app = await createApp(config, { log: options.log ?? createLogger(config.logLevel), agent: options.agent, onQuery });
  const server: Server = createServer(app.serverOptions, app.express);
  const detach = app.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const token = (userId: string) => defined(app.auth.sign, 'app.auth.sign (a config that can sign tokens)').call(app.auth, userId);
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  return {
    url,
    app,
    config,
    database,
    db,
    token,
    async client(userId) {
      const headers: Record<string, string> = userId === null ? {} : { authorization: `Bearer ${await token(userId)}` };
      return new GraphQLClient(`${url}/graphql`, { headers });
    },
    queries,
    resetQueries: () => {
      queries.length = 0;
    },
    async close() {
      await db.end();
      await detach();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.close();
      if (owned) await database.drop();
      if (unscoped.length > 0) {
        throw new Error(
          `the server sent ${unscoped.length} statement(s) on user data without a user_id:\n${[...new Set(unscoped)].join('\n')}`,
        );
      }
    },
  };
}
