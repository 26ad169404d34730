/**
 * Exact SQL statement counts, from the app run in this process with `onQuery`: one turn (without
 * and with a tool call) by history length, one browse by page size. Requests are sent one at a
 * time over HTTP, so that every statement counted between two requests belongs to the second.
 */
import 'reflect-metadata';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { createApp } from '../src/app.js';
import { loadConfig, RATE_LIMITS_OFF } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { defined } from '../test/support/defined.js';
import { BROWSE, NO_TOOL_MESSAGE, SEND, TOOL_MESSAGE } from './documents.js';
import { graphqlClient } from './load.js';
import { seed } from './seed.js';

export type TurnStatements = {
  tool: boolean;
  history: number;
  /** The distinct counts seen over the turns measured (one value when the count is steady). */
  statements: number[];
  /** Tool calls the agent made in one such turn. */
  toolCalls: number;
};
export type BrowseStatements = { n: number; statements: number[] };
export type Statements = { turns: TurnStatements[]; browse: BrowseStatements[] };

const TURNS = 5;
const BROWSES = 3;

/**
 * Counts the statements of turns at each of `histories` and of browses of `browseUserId` (seeded
 * by the caller) at each of `pageSizes`, on the app started here on `url` (which it migrates).
 */
export async function countStatements(
  url: string,
  db: pg.Client,
  options: { secret: string; histories: number[]; pageSizes: number[]; browseUserId: string },
): Promise<Statements> {
  const queries: string[] = [];
  const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: url, JWT_SECRET: options.secret, LOG_LEVEL: 'silent', ...RATE_LIMITS_OFF });
  const app = await createApp(config, { log: createLogger('silent'), onQuery: (sql) => queries.push(sql) });
  const sign = defined(app.auth.sign?.bind(app.auth), 'app.auth.sign (the bench config sets JWT_SECRET)');
  const server = createServer(app.serverOptions, app.express);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const graphql = graphqlClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, 1);
  const counted = async (send: () => Promise<Record<string, unknown>>) => {
    queries.length = 0;
    const data = await send();
    return { count: queries.length, data };
  };

  try {
    const turns: TurnStatements[] = [];
    for (const tool of [false, true]) {
      for (const history of options.histories) {
        const userId = `bench-statements-${tool ? 'tool' : 'plain'}-${history}`;
        const token = await sign(userId);
        const [conversationId] = await seed(db, userId, 1, history);
        const input = { conversationId, message: tool ? TOOL_MESSAGE : NO_TOOL_MESSAGE };
        await graphql.request(token, SEND, { input }); // warm-up: the first turn may fill caches
        const statements = new Set<number>();
        let toolCalls = 0;
        for (let i = 0; i < TURNS; i++) {
          const { count, data } = await counted(() => graphql.request(token, SEND, { input }));
          statements.add(count);
          toolCalls = (data.sendMessage as { toolCalls: unknown[] }).toolCalls.length;
        }
        turns.push({ tool, history, statements: [...statements].sort((a, b) => a - b), toolCalls });
      }
    }

    const browse: BrowseStatements[] = [];
    const token = await sign(options.browseUserId);
    for (const n of options.pageSizes) {
      await graphql.request(token, BROWSE, { n });
      const statements = new Set<number>();
      for (let i = 0; i < BROWSES; i++) statements.add((await counted(() => graphql.request(token, BROWSE, { n }))).count);
      browse.push({ n, statements: [...statements].sort((a, b) => a - b) });
    }
    return { turns, browse };
  } finally {
    graphql.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await app.close();
  }
}
