/**
 * Streaming across instances: three apps on one database (as behind a load balancer, no sticky
 * sessions). A turn runs on one; its events reach subscribers on the others through PostgreSQL
 * (NOTIFY, the events stored), over `conversationEvents` on Server-Sent Events (graphql-sse, real
 * HTTP). Each test states what a client sees: the same sequence everywhere, the text of the
 * TEXT_DELTAs exactly the stored reply, a resume with `after:` that has no gap and no duplicate,
 * 200 subscribers on one instance served by one read per notification, not one each, and the
 * streams of a deleted conversation ended everywhere.
 */

import type { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OfflineAgent } from '../src/agent/offline.js';
import { encodeCursor } from '../src/graphql/pagination.js';
import { readEventStream } from './support/event-stream.js';
import {
  delayed,
  type FakeOpenAi,
  fakeModelAgent,
  httpError,
  reply,
  SwitchAgent,
  startFakeOpenAi,
  toolCalls,
  usage,
} from './support/fake-openai.js';
import { SEND, type SendResult } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';
import { until } from './support/wait.js';

let fake: FakeOpenAi;
let a: TestServer;
let b: TestServer;
let c: TestServer;
const agent = new SwitchAgent();

beforeAll(async () => {
  fake = await startFakeOpenAi();
  a = await startTestServer({ agent, env: { TITLE_MODEL: 'off' } });
  // 200 subscribers of one user on b: above the default cap per user.
  b = await startTestServer({ database: a.database, env: { TITLE_MODEL: 'off', SUBSCRIPTIONS_PER_USER: '250' } });
  c = await startTestServer({ database: a.database, env: { TITLE_MODEL: 'off' } });
});

afterAll(async () => {
  await c?.close();
  await b?.close();
  await a?.close();
  await fake?.close();
});

beforeEach(() => {
  fake.reset();
  agent.inner = new OfflineAgent();
});

const modelAgent = () => fakeModelAgent(fake);

const EVENTS = /* GraphQL */ `
  subscription Events($id: ID!, $after: String) {
    conversationEvents(conversationId: $id, after: $after) {
      __typename cursor type position turnId messageId
      ... on TextDeltaEvent { text }
      ... on ToolCallStartedEvent { callId name arguments }
      ... on ToolCallFinishedEvent { toolCall { id name arguments result isError } }
      ... on TurnCompletedEvent { message { id content status } }
      ... on TurnFailedEvent { code error failed: message { id content status } }
    }
  }
`;

type Event = {
  __typename: string;
  cursor: string;
  type: string;
  position: number;
  turnId: string;
  messageId: string;
  text?: string;
  name?: string;
  toolCall?: { id: string; name: string; arguments: unknown; result: unknown; isError: boolean };
  message?: { id: string; content: string; status: string };
  code?: string;
  failed?: { id: string; content: string; status: string };
};

type Subscription = { events: Event[]; errors: unknown[]; ended: Promise<void>; close(): void };

/** Subscribes on `server` over graphql-sse (POST /graphql, Accept: text/event-stream), collecting events. */
async function subscribe(server: TestServer, userId: string, conversationId: string, after: string | null): Promise<Subscription> {
  const gone = new AbortController();
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await server.token(userId)}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: EVENTS, variables: { id: conversationId, after } }),
    signal: gone.signal,
  });
  expect(response.status).toBe(200);
  const events: Event[] = [];
  const errors: unknown[] = [];
  const ended = readEventStream(response, ({ event, data }) => {
    if (event !== 'next') return;
    const payload = data as { data?: { conversationEvents: Event }; errors?: unknown[] };
    if (payload.errors) errors.push(...payload.errors);
    if (payload.data?.conversationEvents) events.push(payload.data.conversationEvents);
  }).catch((error: unknown) => {
    // A stream this side did not end: kept, for the test to see.
    if (!gone.signal.aborted) errors.push(error);
  });
  return { events, errors, ended, close: () => gone.abort() };
}

const textOf = (events: Event[]) =>
  events
    .filter((e) => e.type === 'TEXT_DELTA')
    .map((e) => e.text)
    .join('');
const ended = (events: Event[]) => events.some((e) => e.type === 'TURN_COMPLETED' || e.type === 'TURN_FAILED');
const summary = (events: Event[]) => events.map(({ position, type, text, name }) => ({ position, type, text, name }));

async function newConversation(client: GraphQLClient): Promise<string> {
  const data = await client.request<{ createConversation: { id: string } }>('mutation { createConversation(input: {}) { id } }');
  return data.createConversation.id;
}

async function startTurn(client: GraphQLClient, conversationId: string, message: string) {
  const data = await client.request<SendResult & { sendMessage: { eventCursor: string | null } }>(
    SEND.replace('replayed', 'replayed eventCursor'),
    { input: { conversationId, message, wait: false } },
  );
  return data.sendMessage;
}

const START = encodeCursor('event', [0]);

describe('conversationEvents across three instances on one database', () => {
  it('subscribers on two other instances see the same sequence of a streamed model turn with a tool call, and its text is the stored reply', async () => {
    agent.inner = modelAgent();
    fake.script(
      toolCalls([{ id: 'call_add', name: 'add_task', arguments: '{"title":"buy milk"}' }], { content: 'Adding it.', usage: usage(20, 6) }),
      delayed(600, reply('Done: “buy milk” is on your list.', { usage: usage(40, 9) })),
    );
    const client = await a.client('instances-1');
    const id = await newConversation(client);
    const onB = await subscribe(b, 'instances-1', id, START);
    const onC = await subscribe(c, 'instances-1', id, START);

    const sent = await startTurn(client, id, 'add a task to buy milk');
    expect(sent.assistantMessage.status).toBe('IN_PROGRESS');
    expect(sent.eventCursor).toBe(START);

    await until(() => ended(onB.events) && ended(onC.events), 'both subscribers to see the turn end');
    onB.close();
    onC.close();
    expect(onB.errors).toEqual([]);
    expect(summary(onC.events)).toEqual(summary(onB.events));
    expect(onB.events.map((e) => e.position)).toEqual(onB.events.map((_, i) => i + 1));
    expect(onB.events.map((e) => e.type)).toEqual([
      'TURN_STARTED',
      'TEXT_DELTA',
      'TOOL_CALL_STARTED',
      'TOOL_CALL_FINISHED',
      ...onB.events.slice(4, -1).map(() => 'TEXT_DELTA'),
      'TURN_COMPLETED',
    ]);
    const finished = onB.events.find((e) => e.type === 'TOOL_CALL_FINISHED');
    expect(finished?.toolCall).toMatchObject({ name: 'add_task', arguments: { title: 'buy milk' }, isError: false });

    const stored = await a.db.query<{ content: string; status: string }>('select content, status from message where id = $1', [
      sent.assistantMessage.id,
    ]);
    expect(stored.rows[0]).toEqual({ content: 'Adding it.\n\nDone: “buy milk” is on your list.', status: 'complete' });
    expect(textOf(onB.events)).toBe(stored.rows[0]?.content);
    expect(onB.events.at(-1)?.message).toEqual({ id: sent.assistantMessage.id, content: stored.rows[0]?.content, status: 'COMPLETE' });

    // Read back later from the database, the turn is exactly what was streamed live, field for field.
    const later = await subscribe(c, 'instances-1', id, START);
    await until(() => ended(later.events), 'the turn read back');
    later.close();
    expect(later.events).toEqual(onB.events);
  });

  it('the offline agent’s turn on one instance streams to another, its TEXT_DELTAs spelling the stored reply', async () => {
    const client = await a.client('instances-2');
    const id = await newConversation(client);
    const onB = await subscribe(b, 'instances-2', id, START);
    const sent = await startTurn(client, id, 'add a task to buy milk');
    await until(() => ended(onB.events), 'the turn to end on the subscriber');
    onB.close();
    const { rows } = await a.db.query<{ content: string }>('select content from message where id = $1', [sent.assistantMessage.id]);
    expect(onB.events.filter((e) => e.type === 'TEXT_DELTA').length).toBeGreaterThanOrEqual(1);
    expect(textOf(onB.events)).toBe(rows[0]?.content);
    expect(onB.events.map((e) => e.type)).toContain('TOOL_CALL_FINISHED');
  });

  it('a client that drops in the middle of a reply and resumes elsewhere with after: its last cursor misses nothing and gets nothing twice', async () => {
    agent.inner = modelAgent();
    fake.script(
      toolCalls([{ id: 'call_a', name: 'add_task', arguments: '{"title":"one"}' }], { content: 'First.', usage: usage(5, 5) }),
      delayed(
        500,
        toolCalls([{ id: 'call_b', name: 'add_task', arguments: '{"title":"two"}' }], { content: 'Second.', usage: usage(5, 5) }),
      ),
      delayed(500, reply('Both are on your list.', { usage: usage(5, 5) })),
    );
    const client = await a.client('instances-3');
    const id = await newConversation(client);
    const first = await subscribe(b, 'instances-3', id, START);
    const sent = await startTurn(client, id, 'add one and two');
    await until(() => first.events.some((e) => e.type === 'TOOL_CALL_FINISHED'), 'the first tool call on the first connection');
    first.close();
    await first.ended;
    const seen = [...first.events];
    const last = seen.at(-1);
    expect(last).toBeDefined();

    const resumed = await subscribe(c, 'instances-3', id, last?.cursor ?? null);
    await until(() => ended(resumed.events), 'the turn to end on the resumed connection');
    resumed.close();
    const all = [...seen, ...resumed.events];
    expect(all.map((e) => e.position)).toEqual(all.map((_, i) => i + 1));
    const { rows } = await a.db.query<{ content: string }>('select content from message where id = $1', [sent.assistantMessage.id]);
    expect(textOf(all)).toBe(rows[0]?.content);
    expect(rows[0]?.content).toBe('First.\n\nSecond.\n\nBoth are on your list.');
    // The database holds exactly what the two connections saw together.
    const stored = await a.db.query<{ position: number; kind: string }>(
      'select position, kind from conversation_event where conversation_id = $1 order by position',
      [id],
    );
    expect(stored.rows.map((row) => [row.position, row.kind.toUpperCase()])).toEqual(all.map((e) => [e.position, e.type]));
  });

  it('a reply longer than a NOTIFY payload reaches a subscriber on another instance whole', async () => {
    agent.inner = modelAgent();
    const long = Array.from({ length: 3_000 }, (_, i) => `token${i}`).join(' ');
    fake.script(reply(long, { usage: usage(10, 3_000) }));
    const client = await a.client('instances-4');
    const id = await newConversation(client);
    const onB = await subscribe(b, 'instances-4', id, START);
    await startTurn(client, id, 'write at length');
    await until(() => ended(onB.events), 'the long turn to end on the subscriber');
    onB.close();
    expect(textOf(onB.events)).toBe(long);
    expect(onB.events.at(-1)?.message?.content).toBe(long);
  });

  it('200 subscribers on one instance each get the whole turn, read from the database once per notification, not once each', async () => {
    agent.inner = modelAgent();
    const long = Array.from({ length: 2_000 }, (_, i) => `w${i}`).join(' ');
    fake.script(delayed(300, reply(long, { usage: usage(10, 2_000) })));
    const client = await a.client('instances-5');
    const id = await newConversation(client);
    // Subscribed from now (after: null): nothing to read back for any of them.
    const subscribers = await Promise.all(Array.from({ length: 200 }, () => subscribe(b, 'instances-5', id, null)));
    // Each subscription's current position is read once as it starts; give them time to be in place.
    await until(() => b.queries.filter((sql) => sql.includes('event_seq from conversation')).length >= 200, 'the 200 subscriptions');
    b.resetQueries();
    await startTurn(client, id, 'write for everyone');
    await until(() => subscribers.every((s) => ended(s.events)), 'all 200 subscribers to see the turn end', { ms: 60_000 });
    for (const s of subscribers) s.close();

    const reference = summary(subscribers[0]?.events ?? []);
    expect(textOf(subscribers[0]?.events ?? [])).toBe(long);
    for (const s of subscribers) expect(summary(s.events)).toEqual(reference);
    const reads = b.queries.filter((sql) => sql.includes('from conversation_event e'));
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.length).toBeLessThanOrEqual(5);
  });

  it('a turn whose model fails ends with TURN_FAILED on the other instances, with its code and the failed reply as stored', async () => {
    agent.inner = modelAgent();
    fake.script(httpError(500, { message: 'the model is down', headers: { 'x-should-retry': 'false' } }));
    const client = await a.client('instances-6');
    const id = await newConversation(client);
    const onB = await subscribe(b, 'instances-6', id, START);
    const sent = await startTurn(client, id, 'hello?');
    await until(() => ended(onB.events), 'the failed turn to end on the subscriber');
    onB.close();
    expect(onB.events.map((e) => e.type)).toEqual(['TURN_STARTED', 'TURN_FAILED']);
    expect(onB.events.at(-1)).toMatchObject({
      code: 'UPSTREAM_ERROR',
      failed: { id: sent.assistantMessage.id, status: 'FAILED', content: 'The agent failed to answer.' },
    });
  });

  it('deleting a conversation ends its streams with NOT_FOUND on every instance, listening or polling, and a resume is NOT_FOUND', async () => {
    // An instance without LISTEN: its event hub polls (DATABASE_POOLED=transaction, no LISTEN_DATABASE_URL).
    const polling = await startTestServer({
      database: a.database,
      env: { TITLE_MODEL: 'off', DATABASE_POOLED: 'transaction', LISTEN_DATABASE_URL: '', EVENT_POLL_INTERVAL: '100' },
    });
    try {
      const client = await a.client('instances-7');
      const id = await newConversation(client);
      const onB = await subscribe(b, 'instances-7', id, START);
      const onPolling = await subscribe(polling, 'instances-7', id, START);
      await startTurn(client, id, 'hello');
      await until(() => ended(onB.events) && ended(onPolling.events), 'the turn on both subscribers');
      await client.request('mutation ($id: ID!) { deleteConversation(id: $id) { deletedId } }', { id });
      await until(() => onB.errors.length > 0 && onPolling.errors.length > 0, 'both streams to end');
      await Promise.all([onB.ended, onPolling.ended]);
      for (const stream of [onB, onPolling]) {
        expect(stream.errors).toMatchObject([
          { message: 'The conversation was deleted; its events went with it', extensions: { code: 'NOT_FOUND' } },
        ]);
      }
      const resumed = await subscribe(c, 'instances-7', id, onB.events.at(-1)?.cursor ?? START);
      await resumed.ended;
      expect(resumed.events).toEqual([]);
      expect(resumed.errors).toMatchObject([{ extensions: { code: 'NOT_FOUND' } }]);
    } finally {
      await polling.close();
    }
  });

  it('another user’s conversation is NOT_FOUND and streams nothing', async () => {
    const owner = await a.client('instances-owner');
    const id = await newConversation(owner);
    const intruder = await subscribe(b, 'instances-intruder', id, START);
    await intruder.ended;
    expect(intruder.events).toEqual([]);
    expect(intruder.errors).toMatchObject([{ extensions: { code: 'NOT_FOUND' } }]);
  });
});
