/**
 * Text is text: every string a client sends is checked at the edge. A NUL, a lone surrogate, an
 * absurd nesting or a forged cursor is BAD_USER_INPUT naming the field (400 on REST, a tool error
 * on /mcp) — never a 500, never raw PostgreSQL text, never a silent replacement that would merge
 * two different keys into one — and nothing is stored.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { first } from './support/defined.js';
import { gqlError, SEND, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

const count = async (table: string, userId: string) =>
  ((await server.db.query(`select count(*)::int as n from ${table} where user_id = $1`, [userId])).rows[0] as { n: number }).n;

describe('sendMessage input', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['a NUL in message', { message: 'buy\u0000milk' }, 'input.message'],
    ['a lone surrogate in message', { message: 'buy \ud800 milk' }, 'input.message'],
    ['a NUL in clientMessageId', { message: 'hi', clientMessageId: 'key\u0000' }, 'input.clientMessageId'],
    ['a NUL in a metadata key', { message: 'hi', metadata: { 'a\u0000b': 1 } }, 'input.metadata'],
    ['a NUL in a metadata value', { message: 'hi', metadata: { a: ['x', { b: 'c\u0000' }] } }, 'input.metadata.a.1.b'],
    ['a lone surrogate in metadata', { message: 'hi', metadata: { a: '\udc00' } }, 'input.metadata.a'],
    ['a blank metadata key', { message: 'hi', metadata: { '  ': 1 } }, 'metadata'],
    [
      'metadata nested 9 levels',
      { message: 'hi', metadata: { a: { b: { c: { d: { e: { f: { g: { h: {} } } } } } } } } },
      'metadata.a.b.c.d.e.f.g.h',
    ],
    ['metadata over METADATA_MAX_BYTES', { message: 'hi', metadata: { big: 'x'.repeat(9000) } }, 'metadata'],
  ];

  it.each(cases)('refuses %s with BAD_USER_INPUT naming the field, and stores nothing', async (_name, input, field) => {
    const user = `text-${crypto.randomUUID()}`;
    const error = await gqlError(await server.client(user), SEND, { input });
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.extensions.field).toBe(field);
    expect(await count('conversation', user)).toBe(0);
    expect(await count('message', user)).toBe(0);
  });

  it('refuses metadata nested 10,000 deep without a stack overflow', async () => {
    let deep = '{}';
    for (let i = 0; i < 10_000; i++) deep = `{"a":${deep}}`;
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await server.token('deep')}` },
      body: `{"query":${JSON.stringify(SEND)},"variables":{"input":{"message":"hi","metadata":${deep}}}}`,
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect(await count('message', 'deep')).toBe(0);
  });

  it('keeps two keys that differ only in a lone surrogate apart: both refused, neither answered as a replay', async () => {
    const client = await server.client('keys');
    const { conversation } = await send(client, 'first');
    for (const key of ['k\ud800', 'k\udbff', 'k\ufffd\ud800']) {
      expect((await gqlError(client, SEND, { input: { message: 'x', conversationId: conversation.id, clientMessageId: key } })).code).toBe(
        'BAD_USER_INPUT',
      );
    }
    const accepted = await send(client, 'y', conversation.id, { clientMessageId: 'k\ufffd' });
    expect(accepted.replayed).toBe(false);
    expect(accepted.userMessage.clientMessageId).toBe('k\ufffd');
  });

  it('stores accepted text exactly as sent, astral characters and combining marks included', async () => {
    const text = 'emoji 😀 e\u0301 ℵ \u200d 中文';
    const { userMessage } = await send(await server.client('exact'), text, undefined, { metadata: { 'k😀': 'v\u0301' } });
    const row = (await server.db.query('select content from message where id = $1', [userMessage.id])).rows[0] as { content: string };
    expect(row.content).toBe(text);
  });
});

describe('cursors and filters', () => {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const forged = [
    'not a cursor',
    b64(['toolCall', 'not-a-uuid']),
    b64(['message', 2 ** 31]),
    b64(['message', -1]),
    b64(['conversation', '-271821-04-20T00:00:00.000Z', '0190a0b0-0000-7000-8000-000000000000']),
    b64(['conversation', 'not a date', '0190a0b0-0000-7000-8000-000000000000']),
    b64(['task', 'x']),
    b64(['toolCall', '0190a0b0-0000-7000-8000-000000000000', 'extra']),
  ];

  it('refuses every malformed cursor of every connection with BAD_USER_INPUT', async () => {
    const client = await server.client('cursors');
    const { conversation } = await send(client, 'add a task to buy milk');
    const connections = [
      (c: string) => `{ conversations(after: ${JSON.stringify(c)}) { edges { cursor } } }`,
      (c: string) => `{ conversation(id: "${conversation.id}") { messages(after: ${JSON.stringify(c)}) { edges { cursor } } } }`,
      (c: string) => `{ conversation(id: "${conversation.id}") { messages(last: 2, before: ${JSON.stringify(c)}) { edges { cursor } } } }`,
      (c: string) => `{ conversation(id: "${conversation.id}") { toolCalls(after: ${JSON.stringify(c)}) { edges { cursor } } } }`,
      (c: string) => `{ tasks(after: ${JSON.stringify(c)}) { edges { cursor } } }`,
    ];
    for (const query of connections) {
      for (const cursor of forged) {
        const error = await gqlError(client, query(cursor));
        expect(error.code, `${query(cursor)}: ${error.message}`).toBe('BAD_USER_INPUT');
      }
    }
  });

  it('refuses a NUL in a filter string and dates PostgreSQL cannot compare', async () => {
    const client = await server.client('filters');
    const { conversation } = await send(client, 'hello');
    expect(
      (await gqlError(client, `{ conversation(id: "${conversation.id}") { toolCalls(name: "a\\u0000") { edges { cursor } } } }`)).code,
    ).toBe('BAD_USER_INPUT');
    const byDate = `query($at: DateTimeISO) { conversations(filter: { updatedAfter: $at }) { edges { cursor } } }`;
    expect((await gqlError(client, byDate, { at: '0000-06-01T00:00:00.000Z' })).code).toBe('BAD_USER_INPUT');
  });
});

describe('the REST route and /mcp', () => {
  it('REST: a NUL in the body or a lone surrogate in the Idempotency-Key is 400 BAD_USER_INPUT, nothing stored', async () => {
    const headers = { authorization: `Bearer ${await server.token('rest-text')}`, 'content-type': 'application/json' };
    const nul = await fetch(`${server.url}/api/rest-text/chat`, { method: 'POST', headers, body: JSON.stringify({ message: 'a\u0000b' }) });
    expect(nul.status).toBe(400);
    expect(await nul.json()).toMatchObject({ error: { code: 'BAD_USER_INPUT' } });
    const lone = await fetch(`${server.url}/api/rest-text/chat`, { method: 'POST', headers, body: '{"message":"a\\ud800"}' });
    expect(lone.status).toBe(400);
    expect(await count('message', 'rest-text')).toBe(0);
  });

  it('/mcp: a NUL or a lone surrogate in tool arguments is a tool error in plain words, not PostgreSQL text', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${await server.token('mcp-text')}` } },
    });
    const client = new Client({ name: 'input-text-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      for (const args of [{ title: 'milk\u0000' }, { title: 'milk\ud800' }, { title: 'ok', description: 'd\u0000' }]) {
        const result = (await client.callTool({ name: 'add_task', arguments: args })) as { isError?: boolean; content: { text: string }[] };
        expect(result.isError).toBe(true);
        const { text } = first(result.content, 'the content of the tool result');
        expect(text).toMatch(/well-formed Unicode without NUL/);
        expect(text).not.toMatch(/invalid message format|operator does not exist|invalid byte sequence/);
      }
      for (const args of [{ task_id: 'x\u0000' }, { task_id: '\ud800' }]) {
        const result = (await client.callTool({ name: 'complete_task', arguments: args })) as {
          isError?: boolean;
          content: { text: string }[];
        };
        expect(result.isError).toBe(true);
      }
    } finally {
      await client.close();
    }
    expect(await count('task', 'mcp-text')).toBe(0);
  });
});
