/**
 * The server through PgBouncer in transaction pooling mode (Debian's 1.18, which tracks no named
 * prepared statements and refuses the `options` startup parameter unless told to ignore it):
 * turns, a search with SEARCH_LANGUAGE=english (the language named in every message insert, since
 * no session setting survives the pooler), and a subscription's events, once with LISTEN on
 * PostgreSQL directly (LISTEN_DATABASE_URL) and once with no LISTEN session at all (the event hub
 * polls, and says so once in the log). Two instances on one database: the turn runs on the
 * listening one, the polling one streams it. Uses the run's PgBouncer (TEST_PGBOUNCER), else starts
 * its own; skipped where PgBouncer is not installed, except in CI.
 */
import { existsSync } from 'node:fs';
import type { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { readEventStream } from './support/event-stream.js';
import { send } from './support/graphql.js';
import { type PgBouncer, startPgBouncer } from './support/pgbouncer.js';
import { startTestServer, type TestServer } from './support/server.js';
import { until } from './support/wait.js';

const installed = existsSync('/usr/sbin/pgbouncer') || Boolean(process.env.CI);

let bouncer: PgBouncer | undefined;
let database: TestDatabase;
let listening: TestServer;
let polling: TestServer;
const pollingLog: string[] = [];

beforeAll(async () => {
  if (!installed) return;
  let base = inject('pgbouncerUrl');
  if (!base) {
    bouncer = await startPgBouncer(inject('adminDatabaseUrl'));
    base = bouncer.url;
  }
  database = await createTestDatabase();
  const pooled = new URL(base);
  pooled.pathname = new URL(database.url).pathname;
  database.pooledUrl = pooled.toString();
  const settings = { DATABASE_URL: database.pooledUrl, DATABASE_POOLED: 'transaction', SEARCH_LANGUAGE: 'english', TITLE_MODEL: 'off' };
  listening = await startTestServer({ database, env: { ...settings, LISTEN_DATABASE_URL: database.url } });
  const destination = { write: (line: string) => void pollingLog.push(line) };
  polling = await startTestServer({
    database,
    env: { ...settings, LISTEN_DATABASE_URL: '', EVENT_POLL_INTERVAL: '100' },
    log: createLogger('info', { destination }),
  });
});

afterAll(async () => {
  await polling?.close();
  await listening?.close();
  await database?.drop();
  await bouncer?.stop();
});

const EVENTS = /* GraphQL */ `
  subscription Events($id: ID!) {
    conversationEvents(conversationId: $id) { type position ... on TextDeltaEvent { text } }
  }
`;

type Event = { type: string; position: number; text?: string };

async function subscribe(server: TestServer, userId: string, conversationId: string) {
  const gone = new AbortController();
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await server.token(userId)}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: EVENTS, variables: { id: conversationId } }),
    signal: gone.signal,
  });
  expect(response.status).toBe(200);
  const events: Event[] = [];
  const ended = readEventStream(response, ({ event, data }) => {
    const payload = data as { data?: { conversationEvents: Event } };
    if (event === 'next' && payload.data?.conversationEvents) events.push(payload.data.conversationEvents);
  }).catch(() => undefined);
  return { events, ended, close: () => gone.abort() };
}

async function newConversation(client: GraphQLClient): Promise<string> {
  const data = await client.request<{ createConversation: { id: string } }>('mutation { createConversation(input: {}) { id } }');
  return data.createConversation.id;
}

describe.skipIf(!installed)('through PgBouncer in transaction mode', () => {
  it('runs turns, finds them with SEARCH_LANGUAGE=english, and streams their events with LISTEN direct and by polling', async () => {
    const client = await listening.client('bouncer-user');
    const conversationId = await newConversation(client);
    const direct = await subscribe(listening, 'bouncer-user', conversationId);
    const polled = await subscribe(polling, 'bouncer-user', conversationId);
    try {
      const first = await send(client, 'I was running to the stations', conversationId);
      expect(first.assistantMessage.status).toBe('COMPLETE');
      await send(client, 'and then walking home', conversationId);
      const third = await send(await polling.client('bouncer-user'), 'the trains were late', conversationId);
      expect(third.conversation.messageCount).toBe(6);

      const stored = await listening.db.query(`select search_config::text as config from message where user_id = 'bouncer-user'`);
      expect(new Set(stored.rows.map((row) => row.config))).toEqual(new Set(['english']));
      const found = await client.request<{ searchMessages: { edges: { node: { message: { content: string } | null } }[] } }>(
        `query { searchMessages(query: "run station", filter: { role: USER }) { edges { node { message { content } } } } }`,
      );
      expect(found.searchMessages.edges.map((edge) => edge.node.message?.content)).toEqual(['I was running to the stations']);

      const completed = (events: Event[]) => events.filter((event) => event.type === 'TURN_COMPLETED').length;
      await until(() => completed(direct.events) === 3 && completed(polled.events) === 3, 'three TURN_COMPLETED on both streams');
      const positions = (events: Event[]) => events.map((event) => event.position);
      expect(positions(polled.events)).toEqual(positions(direct.events));
      expect(positions(direct.events)).toEqual(direct.events.map((_, i) => i + 1));
    } finally {
      direct.close();
      polled.close();
      await Promise.all([direct.ended, polled.ended]);
    }
    const notices = pollingLog.filter((line) => line.includes('no LISTEN'));
    expect(notices).toHaveLength(1);
  });

  it('runs 30 turns at once without named prepared statements (which PgBouncer 1.18 mixes up between clients)', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, async (_, i) => send(await listening.client(`crowd-${i}`), `message number ${i}`)),
    );
    const failed = results.filter((result) => result.status === 'rejected');
    expect(failed.map((result) => String((result as PromiseRejectedResult).reason).slice(0, 200))).toEqual([]);
  });
});
