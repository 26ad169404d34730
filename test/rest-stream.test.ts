/**
 * The REST route with `Accept: text/event-stream`: the turn's events as Server-Sent Events while
 * it runs, written to PostgreSQL as it goes (`conversation_event`, the reply in progress), for the
 * offline agent and for the real `openai` SDK streaming from the fake model. The text of the
 * `text_delta`s is exactly the stored reply; a client that goes away does not stop the turn.
 */

import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OfflineAgent } from '../src/agent/offline.js';
import { readEventStream, type StreamedEvent } from './support/event-stream.js';
import { delayed, type FakeOpenAi, fakeModelAgent, reply, SwitchAgent, startFakeOpenAi, toolCalls, usage } from './support/fake-openai.js';
import { startTestServer, type TestServer } from './support/server.js';
import { until } from './support/wait.js';

let fake: FakeOpenAi;
let server: TestServer;
let db: pg.Client;
const agent = new SwitchAgent();

beforeAll(async () => {
  fake = await startFakeOpenAi();
  server = await startTestServer({ agent, env: { TITLE_MODEL: 'off' } });
  db = server.db;
});

afterAll(async () => {
  await server?.close();
  await fake?.close();
});

beforeEach(() => {
  fake.reset();
  agent.inner = new OfflineAgent();
});

const modelAgent = () => fakeModelAgent(fake);

async function post(userId: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/api/${userId}/chat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await server.token(userId)}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal,
  });
}

async function streamed(userId: string, body: Record<string, unknown>): Promise<StreamedEvent[]> {
  const response = await post(userId, body);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: StreamedEvent[] = [];
  await readEventStream(response, (event) => events.push(event));
  return events;
}

const texts = (events: StreamedEvent[]) =>
  events
    .filter((e) => e.event === 'text_delta')
    .map((e) => (e.data as { text: string }).text)
    .join('');

async function storedEvents(conversationId: string) {
  const rows = await db.query<{ position: number; kind: string; text: string | null }>(
    'select position, kind, text from conversation_event where conversation_id = $1 order by position',
    [conversationId],
  );
  return rows.rows;
}

describe('POST /api/{user}/chat with Accept: text/event-stream', () => {
  it('streams the offline agent’s turn, tool call included; the text_deltas spell the stored reply and every event is stored, positions gapless', async () => {
    const events = await streamed('rest-stream-1', { message: 'add a task to buy milk' });

    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe('turn_started');
    expect(kinds.at(-1)).toBe('turn_completed');
    expect(kinds).toContain('tool_call_started');
    expect(kinds).toContain('tool_call_finished');
    const started = events[0]?.data as { conversation_id: string; message_id: string };
    const done = events.at(-1)?.data as { conversation_id: string; response: string; tool_calls: { name: string; arguments: unknown }[] };
    expect(done.conversation_id).toBe(started.conversation_id);
    expect(done.tool_calls).toMatchObject([{ name: 'add_task', arguments: { title: 'buy milk' } }]);
    const finished = events.find((e) => e.event === 'tool_call_finished')?.data as { name: string; is_error: boolean; result: unknown };
    expect(finished).toMatchObject({ name: 'add_task', is_error: false });

    const { rows } = await db.query<{ content: string; status: string }>('select content, status from message where id = $1', [
      started.message_id,
    ]);
    expect(rows[0]).toEqual({ content: done.response, status: 'complete' });
    expect(texts(events)).toBe(done.response);

    // Stored as streamed: the same kinds, at positions 1..n, each event id a cursor.
    const stored = await storedEvents(started.conversation_id);
    expect(stored.map((row) => row.position)).toEqual(stored.map((_, index) => index + 1));
    expect(stored.map((row) => row.kind)).toEqual(kinds);
    expect(events.every((e) => typeof e.id === 'string' && e.id.length > 0)).toBe(true);
  });

  it('stores the reply in progress as it grows while the model is slow, and the events before it', async () => {
    agent.inner = modelAgent();
    fake.script(
      toolCalls([{ id: 'call_add', name: 'add_task', arguments: '{"title":"buy bread"}' }], {
        content: 'Adding it now.',
        usage: usage(20, 6),
      }),
      delayed(1_500, reply('Done: “buy bread” is on your list.', { usage: usage(40, 9) })),
    );
    const response = await post('rest-stream-2', { message: 'please add buy bread' });
    const events: StreamedEvent[] = [];
    const reading = readEventStream(response, (event) => events.push(event));
    await until(() => events.some((e) => e.event === 'tool_call_finished'), 'the tool call to be streamed');
    const started = events[0]?.data as { conversation_id: string; message_id: string };

    // While the model thinks: the text so far and the tool call are in the database.
    const during = await db.query<{ content: string; status: string }>('select content, status from message where id = $1', [
      started.message_id,
    ]);
    expect(during.rows[0]).toEqual({ content: 'Adding it now.', status: 'in_progress' });
    expect((await storedEvents(started.conversation_id)).map((row) => row.kind)).toEqual([
      'turn_started',
      'text_delta',
      'tool_call_started',
      'tool_call_finished',
    ]);

    await reading;
    const stored = 'Adding it now.\n\nDone: “buy bread” is on your list.';
    expect(texts(events)).toBe(stored);
    expect((events.at(-1)?.data as { response: string } | undefined)?.response).toBe(stored);
    const after = await db.query<{ content: string }>('select content from message where id = $1', [started.message_id]);
    expect(after.rows[0]?.content).toBe(stored);
  });

  it('streams a reply far longer than a NOTIFY payload (8,000 bytes) whole', async () => {
    agent.inner = modelAgent();
    const long = Array.from({ length: 2_000 }, (_, i) => `word${i} é`).join(' ');
    expect(Buffer.byteLength(long)).toBeGreaterThan(20_000);
    fake.script(reply(long, { usage: usage(10, 4_000) }));

    const events = await streamed('rest-stream-3', { message: 'write a lot' });
    expect(events.at(-1)?.event).toBe('turn_completed');
    expect(texts(events)).toBe(long);
    expect((events.at(-1)?.data as { response: string } | undefined)?.response).toBe(long);
  });

  it('a client that goes away mid-reply does not stop the turn: it completes and is stored', async () => {
    agent.inner = modelAgent();
    fake.script(delayed(800, reply('Finished without anyone listening.', { usage: usage(5, 5) })));
    const gone = new AbortController();
    const response = await post('rest-stream-4', { message: 'take your time' }, gone.signal);
    const events: StreamedEvent[] = [];
    const reading = readEventStream(response, (event) => events.push(event)).catch(() => undefined);
    await until(() => events.length > 0, 'turn_started');
    const started = events[0]?.data as { message_id: string };
    gone.abort();
    await reading;

    await until(async () => {
      const { rows } = await db.query<{ status: string }>('select status from message where id = $1', [started.message_id]);
      return rows[0]?.status === 'complete';
    }, 'the turn to complete after its client left');
    const { rows } = await db.query<{ content: string }>('select content from message where id = $1', [started.message_id]);
    expect(rows[0]?.content).toBe('Finished without anyone listening.');
  });

  it('refuses bad input before streaming, as JSON with its status', async () => {
    const response = await post('rest-stream-5', { message: '' });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'BAD_USER_INPUT' } });
  });
});
