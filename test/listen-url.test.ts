/**
 * LISTEN_DATABASE_URL: the one listening connection of an instance (wake-ups, streamed events)
 * goes where it says, apart from the pool of DATABASE_URL (which may be a transaction-pooling
 * proxy, where LISTEN does not work). Unreachable, the server does not start, and says which setting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { send } from './support/graphql.js';
import { startTestServer, TEST_JWT_SECRET } from './support/server.js';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

describe('LISTEN_DATABASE_URL', () => {
  it('carries the listening connection: events of a turn reach a subscriber through it', async () => {
    const listenUrl = new URL(database.url);
    listenUrl.searchParams.set('application_name', 'listen-url-test');
    const server = await startTestServer({ database, env: { LISTEN_DATABASE_URL: listenUrl.toString() } });
    try {
      // The listener's session, on its own connection, LISTENing on both channels.
      const { rows } = await server.db.query<{ query: string }>(
        "select query from pg_stat_activity where datname = current_database() and query like 'LISTEN%'",
      );
      expect(rows.map((row) => row.query)).toContain('LISTEN turn_ended; LISTEN conversation_events');

      const client = await server.client('listen-url');
      const turn = await send(client, 'add a task to buy milk');
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await server.token('listen-url')}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
        },
        body: JSON.stringify({
          query: 'subscription ($id: ID!, $after: String) { conversationEvents(conversationId: $id, after: $after) { type } }',
          variables: { id: turn.conversation.id, after: null },
        }),
      });
      expect(response.status).toBe(200);
      const reader = response.body?.getReader();
      const decoder = new TextDecoder();
      let text = '';
      const second = send(client, 'show my tasks', turn.conversation.id);
      while (!text.includes('TURN_COMPLETED')) {
        const chunk = await reader?.read();
        if (!chunk || chunk.done) break;
        text += decoder.decode(chunk.value, { stream: true });
      }
      await second;
      await reader?.cancel();
      expect(text).toContain('TURN_STARTED');
      expect(text).toContain('TURN_COMPLETED');
    } finally {
      await server.close();
    }
  });

  it('unreachable, stops the start with a message naming it', async () => {
    const config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      LISTEN_DATABASE_URL: 'postgresql://nobody:nothing@127.0.0.1:1/none',
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'silent',
    });
    await expect(createApp(config, { log: createLogger('silent') })).rejects.toThrow(/^LISTEN_DATABASE_URL: cannot connect/);
  });
});
