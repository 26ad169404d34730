/** The REST route of the original sketch: its contract and its status codes. */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defined } from './support/defined.js';
import { postRest } from './support/http.js';
import { startTestServer, type TestServer } from './support/server.js';

/** A JSON answer of `POST /api/{user_id}/chat`: a turn or an error. */
type ChatBody = {
  conversation_id?: string;
  response?: string;
  tool_calls?: { name: string }[];
  error?: { code?: string; message?: string };
};

let server: TestServer;
let db: pg.Client;

beforeAll(async () => {
  server = await startTestServer();
  db = server.db;
});

afterAll(async () => {
  await server?.close();
});

async function chat(userId: string, body: unknown, token?: string | null, headers: Record<string, string> = {}) {
  const answer = await postRest(server, userId, body, token === null ? { headers } : { user: userId, token, headers });
  // The JSON a client gets back, read loosely: each test states the exact shape it expects.
  return { status: answer.status, body: defined(answer.body, `a JSON answer, got: ${answer.text}`) as ChatBody };
}

describe('POST /api/{user_id}/chat', () => {
  it('starts a conversation and continues it, answering conversation_id, response and tool_calls', async () => {
    const first = await chat('rita', { message: 'add a task to buy bread' });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      conversation_id: expect.any(String),
      response: expect.stringContaining('buy bread'),
      tool_calls: [expect.objectContaining({ server: 'todo', name: 'add_task', arguments: { title: 'buy bread' }, is_error: false })],
    });
    const second = await chat('rita', { conversation_id: first.body.conversation_id, message: 'list my tasks' });
    expect(second.status).toBe(200);
    expect(second.body.conversation_id).toBe(first.body.conversation_id);
    expect(defined(second.body.tool_calls, 'the tool_calls of the answer').map((c) => c.name)).toEqual(['list_tasks']);
    const stored = await db.query('select seq, role from message where conversation_id = $1 order by seq', [first.body.conversation_id]);
    expect(stored.rows.map((r) => `${r.seq}:${r.role}`)).toEqual(['1:user', '2:assistant', '3:user', '4:assistant']);
  });

  it('makes a retry with the same Idempotency-Key replay the first answer instead of running again', async () => {
    const first = await chat('ida', { message: 'add a task to renew passport' }, undefined, { 'Idempotency-Key': 'rest-key-1' });
    const retry = await chat('ida', { message: 'add a task to renew passport' }, undefined, { 'Idempotency-Key': 'rest-key-1' });
    expect(retry).toEqual(first);
    const tasks = await db.query('select title from task where user_id = $1', ['ida']);
    expect(tasks.rows).toEqual([{ title: 'renew passport' }]);
    const reused = await chat('ida', { message: 'something else' }, undefined, { 'Idempotency-Key': 'rest-key-1' });
    expect(reused).toEqual({ status: 422, body: { error: { code: 'IDEMPOTENCY_KEY_REUSED', message: expect.any(String) } } });
  });

  it('answers 401 without a valid token', async () => {
    expect((await chat('rita', { message: 'hi' }, null)).status).toBe(401);
    const bad = await chat('rita', { message: 'hi' }, 'not-a-token');
    expect(bad).toEqual({ status: 401, body: { error: { code: 'UNAUTHENTICATED', message: expect.any(String) } } });
  });

  it("answers 403 when the token's subject is not the user in the path", async () => {
    const response = await chat('rita', { message: 'hi' }, await server.token('sam'));
    expect(response).toEqual({ status: 403, body: { error: { code: 'FORBIDDEN', message: expect.any(String) } } });
  });

  it('answers 404 for an unknown or foreign conversation and stores nothing', async () => {
    const theirs = await chat('tom', { message: 'add secret' });
    const foreign = await chat('rita', { conversation_id: theirs.body.conversation_id, message: 'hi' });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error?.code).toBe('NOT_FOUND');
    const unknown = await chat('rita', { conversation_id: '0190a3c0-0000-7000-8000-000000000000', message: 'hi' });
    expect(unknown.status).toBe(404);
    const count = await db.query('select count(*)::int as n from message where conversation_id = $1', [theirs.body.conversation_id]);
    expect(count.rows[0].n).toBe(2);
  });

  it.each([
    ['a missing message', { conversation_id: null }],
    ['a message that is not a string', { message: 42 }],
    ['an empty message', { message: '' }],
    ['a malformed conversation_id', { conversation_id: 'abc', message: 'hi' }],
    ['a body that is not JSON', '{"message": '],
  ])('answers 400 with a JSON error for %s', async (_name, body) => {
    const response = await chat('uma', body);
    expect(response.status).toBe(400);
    expect(response.body.error?.message).toEqual(expect.any(String));
    const count = await db.query('select count(*)::int as n from message where user_id = $1', ['uma']);
    expect(count.rows[0].n).toBe(0);
  });
});

describe('health', () => {
  it('answers /healthz and /readyz with JSON', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect([health.status, await health.json()]).toEqual([200, { status: 'ok' }]);
    const ready = await fetch(`${server.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { status: 'ready', mcpServers: [] }]);
  });
});

describe('every response', () => {
  it('carries its request id and how long the server held it (Server-Timing: total;dur=<ms>)', async () => {
    const sentAt = Date.now();
    const response = await fetch(`${server.url}/readyz`, { headers: { 'x-request-id': 'timed-1' } });
    const elapsed = Date.now() - sentAt;
    expect(response.headers.get('x-request-id')).toBe('timed-1');
    const dur = Number(response.headers.get('server-timing')?.match(/^total;dur=([\d.]+)$/)?.[1]);
    expect(dur).toBeGreaterThanOrEqual(0);
    expect(dur).toBeLessThanOrEqual(elapsed + 1);
    const graphql = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(graphql.headers.get('server-timing')).toMatch(/^total;dur=[\d.]+$/);
  });
});
