/**
 * sendMessage end to end: HTTP -> GraphQL -> turn -> MCP todo server -> PostgreSQL, with the
 * offline agent. Each test states a behaviour a client relies on and checks the stored rows.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { first } from './support/defined.js';
import { gqlError, SEND, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let db: pg.Client;

beforeAll(async () => {
  server = await startTestServer();
  db = server.db;
});

afterAll(async () => {
  await server?.close();
});

describe('sendMessage', () => {
  it('starts a new conversation, calls add_task through MCP and stores both messages and the tool call', async () => {
    const alice = await server.client('alice');
    const turn = await send(alice, 'add a task to buy milk');

    expect(turn.replayed).toBe(false);
    expect(turn.conversation).toMatchObject({ title: 'add a task to buy milk', messageCount: 2, status: 'ACTIVE' });
    expect(turn.userMessage).toMatchObject({ seq: 1, role: 'USER', content: 'add a task to buy milk', status: 'COMPLETE' });
    expect(turn.assistantMessage).toMatchObject({ seq: 2, role: 'ASSISTANT', status: 'COMPLETE', model: 'offline' });
    expect(turn.response).toBe(turn.assistantMessage.content);
    expect(turn.response).toContain('buy milk');
    expect(turn.toolCalls).toHaveLength(1);
    expect(turn.toolCalls[0]).toMatchObject({ server: 'todo', name: 'add_task', arguments: { title: 'buy milk' }, isError: false });
    expect(first(turn.toolCalls, 'the tool calls of the turn').result).toMatchObject({ status: 'created', title: 'buy milk' });

    const messages = await db.query('select seq, role, content, user_id from message where conversation_id = $1 order by seq', [
      turn.conversation.id,
    ]);
    expect(messages.rows).toEqual([
      { seq: 1, role: 'user', content: 'add a task to buy milk', user_id: 'alice' },
      { seq: 2, role: 'assistant', content: turn.response, user_id: 'alice' },
    ]);
    const calls = await db.query(
      'select message_id, server, name, arguments, is_error, user_id from tool_call where conversation_id = $1',
      [turn.conversation.id],
    );
    expect(calls.rows).toEqual([
      {
        message_id: turn.assistantMessage.id,
        server: 'todo',
        name: 'add_task',
        arguments: { title: 'buy milk' },
        is_error: false,
        user_id: 'alice',
      },
    ]);
    const tasks = await db.query('select title, completed from task where user_id = $1', ['alice']);
    expect(tasks.rows).toEqual([{ title: 'buy milk', completed: false }]);
    const conversation = await db.query('select message_count, next_seq, turn_id from conversation where id = $1', [turn.conversation.id]);
    expect(conversation.rows).toEqual([{ message_count: 2, next_seq: 3, turn_id: null }]);
  });

  it('continues a conversation: seq keeps counting and the history reads back in order', async () => {
    const bob = await server.client('bob');
    const first = await send(bob, 'add walk the dog');
    const second = await send(bob, 'add water the plants', first.conversation.id);
    const third = await send(bob, 'show my tasks', first.conversation.id);

    expect([second.userMessage.seq, second.assistantMessage.seq, third.userMessage.seq, third.assistantMessage.seq]).toEqual([3, 4, 5, 6]);
    expect(third.conversation).toMatchObject({ id: first.conversation.id, messageCount: 6 });
    expect(third.toolCalls.map((c) => c.name)).toEqual(['list_tasks']);
    expect(third.response).toContain('walk the dog');
    expect(third.response).toContain('water the plants');

    const data = await bob.request<{ conversation: { messages: { edges: { node: { seq: number; role: string } }[] } } }>(
      `query ($id: ID!) { conversation(id: $id) { messages(first: 10) { edges { node { seq role } } } } }`,
      { id: first.conversation.id },
    );
    expect(data.conversation.messages.edges.map((e) => [e.node.seq, e.node.role])).toEqual([
      [1, 'USER'],
      [2, 'ASSISTANT'],
      [3, 'USER'],
      [4, 'ASSISTANT'],
      [5, 'USER'],
      [6, 'ASSISTANT'],
    ]);
  });

  it("answers NOT_FOUND for another user's conversation, stores nothing, and keeps it out of their list", async () => {
    const carol = await server.client('carol');
    const mallory = await server.client('mallory');
    const turn = await send(carol, 'add secret plan');

    const error = await gqlError(mallory, SEND, { input: { conversationId: turn.conversation.id, message: 'add intrusion' } });
    expect(error.code).toBe('NOT_FOUND');
    const rows = await db.query('select count(*)::int as n from message where conversation_id = $1', [turn.conversation.id]);
    expect(rows.rows[0].n).toBe(2);

    const seen = await mallory.request<{ conversation: unknown; conversations: { edges: unknown[] } }>(
      `query ($id: ID!) { conversation(id: $id) { id } conversations { edges { node { id } } } }`,
      { id: turn.conversation.id },
    );
    expect(seen).toEqual({ conversation: null, conversations: { edges: [] } });
    const unknown = await gqlError(carol, SEND, { input: { conversationId: '0190a3c0-0000-7000-8000-000000000000', message: 'hi' } });
    expect(unknown.code).toBe('NOT_FOUND');
  });

  it.each([
    ['an empty message', { message: '   ' }],
    ['a message over MAX_MESSAGE_CHARS', { message: 'x'.repeat(32_001) }],
    ['a malformed conversationId', { message: 'hi', conversationId: 'not-a-uuid' }],
    ['an oversized clientMessageId', { message: 'hi', clientMessageId: 'k'.repeat(256) }],
  ])('refuses %s with BAD_USER_INPUT and stores nothing', async (_name, input) => {
    const dave = await server.client('dave');
    const error = await gqlError(dave, SEND, { input });
    expect(error.code).toBe('BAD_USER_INPUT');
    const rows = await db.query('select count(*)::int as n from message where user_id = $1', ['dave']);
    expect(rows.rows[0].n).toBe(0);
  });

  it('replays a retry with the same clientMessageId without running anything again', async () => {
    const erin = await server.client('erin');
    const first = await send(erin, 'add call mom', undefined, { clientMessageId: 'key-1' });
    const retry = await send(erin, 'add call mom', undefined, { clientMessageId: 'key-1' });
    expect(retry.replayed).toBe(true);
    expect(retry.conversation.id).toBe(first.conversation.id);
    expect(retry.assistantMessage.id).toBe(first.assistantMessage.id);
    expect(retry.toolCalls).toEqual(first.toolCalls);
    const tasks = await db.query('select count(*)::int as n from task where user_id = $1', ['erin']);
    expect(tasks.rows[0].n).toBe(1);

    const reused = await gqlError(erin, SEND, { input: { message: 'add something else', clientMessageId: 'key-1' } });
    expect(reused.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('authentication', () => {
  it.each([
    ['no token', undefined],
    ['a malformed header', 'Token abc'],
    ['a token signed with another secret', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.2vJ8bXjH2n6yB5m3s5nJ0r3pZb9m2y1nQv0y8x7w6v4'],
    ['garbage', 'Bearer not.a.jwt'],
  ])('answers UNAUTHENTICATED for %s', async (_name, authorization) => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify({ query: '{ viewer { id } }' }),
    });
    const body = (await response.json()) as { data: unknown; errors: { extensions: { code: string } }[] };
    expect(first(body.errors, 'the GraphQL errors').extensions.code).toBe('UNAUTHENTICATED');
    expect(body.data).toBeNull();
  });

  it('answers viewer with the subject of a valid token', async () => {
    const frank = await server.client('frank');
    expect(await frank.request('{ viewer { id } }')).toEqual({ viewer: { id: 'frank' } });
  });
});
