/**
 * Text is text. PostgreSQL cannot store NUL, and the driver turns a lone UTF-16 surrogate into
 * U+FFFD without a word, so every string a client sends is checked where it arrives: a string with
 * a lone surrogate or a NUL is refused (BAD_USER_INPUT with `extensions.field` naming the argument
 * or field, 400 on the REST route, a tool error on `/mcp`), never a 500, and nothing is stored.
 * What is accepted is stored exactly as sent. The same holds for metadata at any depth (at most 8
 * levels, at most METADATA_MAX_BYTES = 8 KiB, no blank keys) and for every cursor of every
 * connection: a cursor the server did not make is BAD_USER_INPUT, not a database error.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defined } from '../support/defined.js';
import { SEND, type SendResult } from '../support/graphql.js';
import { type Answer, callMcpTool, firstError, type GraphQLBody, gql, postRest, request } from '../support/http.js';
import {
  countRows,
  expectNoServerError,
  expectNothingStored,
  type OwnCursors,
  ownCursors,
  RAW_DATABASE_TEXT,
  rawRequest,
} from '../support/security.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { uniqueUser } from '../support/users.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

/** Strings that are not text: PostgreSQL cannot keep them as they are. */
const NOT_TEXT = [
  ['a lone high surrogate', '\ud800'],
  ['a lone low surrogate', '\udfff'],
  ['a NUL', '\u0000'],
] as const;

/** The answer is BAD_USER_INPUT for the field `field` names (a pattern on `extensions.field`). */
function expectBadInput(answer: Answer<GraphQLBody>, field: RegExp, what: string): void {
  expectNoServerError(answer, what);
  const error = firstError(answer);
  const shown = `${what} -> HTTP ${answer.status} ${answer.text.slice(0, 500)}`;
  expect(error.extensions?.code, shown).toBe('BAD_USER_INPUT');
  expect(String(error.extensions?.field), shown).toMatch(field);
  expect(answer.text, shown).not.toMatch(RAW_DATABASE_TEXT);
}

type Started = { conversationId: string; userMessageId: string; toolCallId: string; taskId: string };

/** A conversation of `user` with two messages, an add_task tool call and the task it made. */
async function startConversation(user: string): Promise<Started> {
  const answer = await gql<SendResult>(server, user, SEND, { input: { message: 'add a task to buy milk' } });
  expect(answer.status, answer.text).toBe(200);
  const turn = defined(answer.body?.data, 'the data of the turn').sendMessage;
  const { rows } = await server.db.query('select id from task where user_id = $1', [user]);
  const calls = await server.db.query('select id from tool_call where user_id = $1', [user]);
  return { conversationId: turn.conversation.id, userMessageId: turn.userMessage.id, toolCallId: calls.rows[0].id, taskId: rows[0].id };
}

const field = (name: string) => new RegExp(`(^|\\.)${name}$`);
const METADATA_FIELD = /(^|\.)metadata([.[]|$)/;

describe('sendMessage', () => {
  describe.each(NOT_TEXT)('with %s', (_name, bad) => {
    it('refuses it in message, naming the field, and stores nothing', async () => {
      const user = uniqueUser('text');
      const answer = await gql<SendResult>(server, user, SEND, { input: { message: `add a task to buy milk${bad}` } });
      expectBadInput(answer, field('message'), 'message');
      await expectNothingStored(server.db, user);
    });

    it('refuses it in clientMessageId, naming the field, and stores nothing', async () => {
      const user = uniqueUser('text');
      const answer = await gql<SendResult>(server, user, SEND, {
        input: { message: 'add a task to buy milk', clientMessageId: `key-${bad}` },
      });
      expectBadInput(answer, field('clientMessageId'), 'clientMessageId');
      await expectNothingStored(server.db, user);
    });

    it('refuses it in conversationId, naming the field, and adds nothing to the conversation', async () => {
      const user = uniqueUser('text');
      const { conversationId } = await startConversation(user);
      const before = await countRows(server.db, user);
      const answer = await gql<SendResult>(server, user, SEND, {
        input: { message: 'add a task to buy eggs', conversationId: `${conversationId}${bad}` },
      });
      expectBadInput(answer, field('conversationId'), 'conversationId');
      expect(await countRows(server.db, user)).toEqual(before);
    });

    it.each([
      ['a value', { source: `web${bad}` }],
      ['a key', { [`so${bad}urce`]: 'web' }],
      ['a value three levels down', { a: { b: { c: `deep${bad}` } } }],
      ['a key three levels down', { a: { b: { [`c${bad}`]: 1 } } }],
      ['a string in an array', { tags: ['ok', `bad${bad}`] }],
      ['a key of an object in an array', { list: [1, { [`k${bad}`]: true }] }],
    ])('refuses it in metadata (%s), naming metadata, and stores nothing', async (_where, metadata) => {
      const user = uniqueUser('text');
      const answer = await gql<SendResult>(server, user, SEND, { input: { message: 'add a task to buy milk', metadata } });
      expectBadInput(answer, METADATA_FIELD, `metadata ${JSON.stringify(metadata)}`);
      await expectNothingStored(server.db, user);
    });
  });

  it('refuses a lone surrogate written into the document itself (a parse error) and a NUL escape (BAD_USER_INPUT)', async () => {
    const user = uniqueUser('literal');
    const surrogate = await gql(server, user, 'mutation { sendMessage(input: { message: "buy \\ud800 milk" }) { response } }');
    expectNoServerError(surrogate, 'a \\ud800 escape in a literal');
    expect(surrogate.status).toBe(400);
    const nul = await gql(server, user, 'mutation { sendMessage(input: { message: "buy \\u0000 milk" }) { response } }');
    expectNoServerError(nul, 'a \\u0000 escape in a literal');
    expect(firstError(nul).extensions?.code, nul.text).toBe('BAD_USER_INPUT');
    await expectNothingStored(server.db, user);
  });

  it('stores text exactly as sent: emoji, combining marks, right-to-left, U+FFFD itself, other control characters', async () => {
    const user = uniqueUser('exact');
    const message = 'add a task to buy 🦊 e\u0301clair \u05e9\u05dc\u05d5\u05dd \ufffd \u0001\u001f\u007f\u0085 \ufeff done';
    const clientMessageId = `key-🦊-\u00e9-${randomUUID()}`;
    const metadata = { source: 'web', tags: ['🦊', 'e\u0301', ''], nested: { n: 1.5, nil: null, t: true, bom: '\ufeff', c1: '\u0085' } };
    const answer = await gql<SendResult>(server, user, SEND, { input: { message, clientMessageId, metadata } });
    expect(answer.status, answer.text).toBe(200);
    const turn = defined(answer.body?.data, 'the data of the turn').sendMessage;
    const stored = await server.db.query('select content, client_message_id from message where id = $1', [turn.userMessage.id]);
    expect(stored.rows).toEqual([{ content: message, client_message_id: clientMessageId }]);
    const conversation = await server.db.query('select metadata from conversation where id = $1', [turn.conversation.id]);
    expect(conversation.rows).toEqual([{ metadata }]);
  });

  it('cuts the title from a long message without splitting a surrogate pair: the title is a well-formed prefix', async () => {
    const user = uniqueUser('title');
    // The fox (two UTF-16 units) straddles the 80th unit, where the title is cut.
    const message = `add a task to ${'x'.repeat(65)}🦊 and then some more words`;
    const answer = await gql<SendResult>(server, user, SEND, { input: { message } });
    expect(answer.status, answer.text).toBe(200);
    const title = defined(defined(answer.body?.data, 'the data of the turn').sendMessage.conversation.title, 'the conversation title');
    const { rows } = await server.db.query('select title from conversation where user_id = $1', [user]);
    expect(rows[0].title, 'stored title').toBe(title);
    expect(title.isWellFormed(), `title ${JSON.stringify(title)}`).toBe(true);
    expect(message.startsWith(title), `title ${JSON.stringify(title)} is not a prefix of the message`).toBe(true);
  });
});

describe('metadata: depth, size and keys', () => {
  /** `levels` objects nested in each other, the innermost holding `{ leaf: 'x' }`. */
  const nested = (levels: number): Record<string, unknown> => {
    let value: Record<string, unknown> = { leaf: 'x' };
    for (let level = 1; level < levels; level++) value = { down: value };
    return value;
  };

  it('accepts 7 levels and 4 KB and stores them exactly', async () => {
    const user = uniqueUser('meta');
    const metadata = { ...nested(7), note: 'n'.repeat(4_000) };
    const answer = await gql<SendResult>(server, user, SEND, { input: { message: 'hello', metadata } });
    expect(answer.status, answer.text.slice(0, 300)).toBe(200);
    const { rows } = await server.db.query('select metadata from conversation where user_id = $1', [user]);
    expect(rows).toEqual([{ metadata }]);
  });

  it.each([
    ['10 levels of objects', nested(10)],
    ['10 levels through arrays', { a: [[[[[[[[[['deep']]]]]]]]]] }],
    ['9,000 bytes in one value', { note: 'n'.repeat(9_000) }],
    ['3,000 three-byte characters (9,000 bytes of UTF-8)', { note: '€'.repeat(3_000) }],
    ['4,000 small keys', Object.fromEntries(Array.from({ length: 4_000 }, (_, i) => [`k${i}`, 1]))],
    ['a blank key', { ' ': 'blank' }],
    ['a key of whitespace', { '\t\n ': 'blank' }],
    ['a blank key two levels down', { a: { '  ': 1 } }],
  ])('refuses %s with BAD_USER_INPUT and stores nothing', async (_name, metadata) => {
    const user = uniqueUser('meta');
    const answer = await gql<SendResult>(server, user, SEND, { input: { message: 'hello', metadata } });
    expectBadInput(answer, METADATA_FIELD, _name);
    await expectNothingStored(server.db, user);
  });

  it('refuses metadata over the limits when merged into an existing conversation, and keeps the old metadata', async () => {
    const user = uniqueUser('meta');
    const first = await gql<SendResult>(server, user, SEND, { input: { message: 'hello', metadata: { kept: true } } });
    const conversationId = defined(first.body?.data, 'the data of the first turn').sendMessage.conversation.id;
    const before = await countRows(server.db, user);
    const answer = await gql<SendResult>(server, user, SEND, {
      input: { message: 'again', conversationId, metadata: { note: `x${'\u0000'}`, big: 'n'.repeat(9_000) } },
    });
    expectBadInput(answer, METADATA_FIELD, 'merged metadata');
    expect(await countRows(server.db, user)).toEqual(before);
    const { rows } = await server.db.query('select metadata from conversation where id = $1', [conversationId]);
    expect(rows).toEqual([{ metadata: { kept: true } }]);
  });

  it('survives 10,000 levels of nesting in a variable: 400 or BAD_USER_INPUT, nothing stored, and the server answers on', async () => {
    const user = uniqueUser('abyss');
    const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const deepArrays = `${'['.repeat(10_000)}1${']'.repeat(10_000)}`;
    for (const metadata of [deep, `{"list":${deepArrays}}`]) {
      const body = `{"query":${JSON.stringify(SEND)},"variables":{"input":{"message":"hello","metadata":${metadata}}}}`;
      const answer = await request<GraphQLBody>(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await server.token(user)}` },
        body,
      });
      expectNoServerError(answer, 'metadata nested 10,000 deep');
      expect(answer.status === 400 || answer.body?.errors?.[0]?.extensions?.code === 'BAD_USER_INPUT', answer.text.slice(0, 300)).toBe(
        true,
      );
    }
    await expectNothingStored(server.db, user);
    expect((await gql(server, user, '{ viewer { id } }')).body?.data).toEqual({ viewer: { id: user } });
  });
});

describe('ids and filters of queries', () => {
  it.each(NOT_TEXT)('refuses %s in conversation(id), message(id) and toolCalls(name)', async (_name, bad) => {
    const user = uniqueUser('args');
    const { conversationId, userMessageId } = await startConversation(user);
    expectBadInput(
      await gql(server, user, 'query ($id: ID!) { conversation(id: $id) { id } }', { id: `${conversationId}${bad}` }),
      field('id'),
      'conversation(id)',
    );
    expectBadInput(
      await gql(server, user, 'query ($id: ID!) { message(id: $id) { id } }', { id: `${userMessageId}${bad}` }),
      field('id'),
      'message(id)',
    );
    expectBadInput(
      await gql(
        server,
        user,
        'query ($id: ID!, $name: String) { conversation(id: $id) { toolCalls(name: $name) { edges { node { id } } } } }',
        {
          id: conversationId,
          name: `add_task${bad}`,
        },
      ),
      field('name'),
      'toolCalls(name)',
    );
  });

  it('refuses a date filter that is not text with BAD_USER_INPUT, not a 500', async () => {
    const user = uniqueUser('filter');
    for (const [, bad] of NOT_TEXT) {
      const answer = await gql(server, user, 'query ($f: ConversationFilter) { conversations(filter: $f) { edges { node { id } } } }', {
        f: { updatedAfter: `2026-01-01T00:00:00Z${bad}` },
      });
      expectNoServerError(answer, 'filter.updatedAfter');
      expect(firstError(answer).extensions?.code, answer.text).toBe('BAD_USER_INPUT');
    }
  });
});

describe('cursors', () => {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const uuid = '0190f0c0-0000-7000-8000-000000000000';

  type Target = { name: string; query: string; argument: 'after' | 'before'; own: (c: Cursors) => string; specific: [string, string][] };
  type Cursors = OwnCursors;

  // Per connection: where its cursor goes, and the malformed cursors only it can be given.
  const targets: Target[] = [
    ...(['after', 'before'] as const).map((argument) => ({
      name: `conversations(${argument})`,
      query: `query ($c: String) { conversations(${argument === 'after' ? 'first' : 'last'}: 5, ${argument}: $c) { edges { node { id } } } }`,
      argument,
      own: (c: Cursors) => c.conversation,
      specific: [
        ['a non-UUID id', b64(['conversation', '2026-01-01T00:00:00.000Z', 'not-a-uuid'])],
        ['an id with SQL in it', b64(['conversation', '2026-01-01T00:00:00.000Z', "' or 1=1 --"])],
        ['a date PostgreSQL cannot hold (year -10000)', b64(['conversation', '-010000-01-01T00:00:00.000Z', uuid])],
        ['a date past the end of time', b64(['conversation', '+275760-09-13T00:00:00.001Z', uuid])],
        ['a date that is no date', b64(['conversation', 'yesterday', uuid])],
        ['a number for the date', b64(['conversation', 1e300, uuid])],
        ['an id with a NUL', b64(['conversation', '2026-01-01T00:00:00.000Z', `${uuid}\u0000`])],
      ] as [string, string][],
    })),
    ...(['after', 'before'] as const).map((argument) => ({
      name: `Conversation.messages(${argument})`,
      query: `query ($id: ID!, $c: String) { conversation(id: $id) { messages(${argument === 'after' ? 'first' : 'last'}: 5, ${argument}: $c) { edges { node { id } } } } }`,
      argument,
      own: (c: Cursors) => c.message,
      specific: [
        ['seq 2^31 (past int)', b64(['message', 2 ** 31])],
        ['seq -2^31-1 (past int)', b64(['message', -(2 ** 31) - 1])],
        ['seq 2^53', b64(['message', 2 ** 53])],
        ['seq 1e300', b64(['message', 1e300])],
        ['seq 1.5', b64(['message', 1.5])],
        ['seq as a string', b64(['message', '1'])],
      ] as [string, string][],
    })),
    {
      name: 'Conversation.toolCalls(after)',
      query: 'query ($id: ID!, $c: String) { conversation(id: $id) { toolCalls(first: 5, after: $c) { edges { node { id } } } } }',
      argument: 'after',
      own: (c) => c.toolCall,
      specific: [
        ['a non-UUID id', b64(['toolCall', 'not-a-uuid'])],
        ['an id with SQL in it', b64(['toolCall', "' or 1=1 --"])],
        ['a number for the id', b64(['toolCall', 2 ** 31])],
        ['an id with a NUL', b64(['toolCall', `${uuid}\u0000`])],
      ],
    },
    {
      name: 'tasks(after)',
      query: 'query ($c: String) { tasks(first: 5, after: $c) { edges { node { id } } } }',
      argument: 'after',
      own: (c) => c.task,
      specific: [
        ['a non-UUID id', b64(['task', 'not-a-uuid'])],
        ['an id with a lone surrogate', b64(['task', `${uuid}\ud800`])],
      ],
    },
  ];

  /** Malformed cursors that no connection may accept; `own` is a valid cursor of the connection under test. */
  const common = (own: string, others: string[]): [string, string][] => [
    ['random base64', Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x10, 0x80]).toString('base64url')],
    ['base64 of an empty string', ''],
    ['base64 of {}', b64({})],
    ['base64 of []', b64([])],
    ['base64 of null', b64(null)],
    ['base64 of a number', b64(12)],
    ['base64 of an unknown kind', b64(['user', 'bob'])],
    ['base64 of a kind alone', b64(['task'])],
    ['base64 of too many keys', b64([...(JSON.parse(Buffer.from(own, 'base64url').toString()) as unknown[]), 'extra'])],
    ...others.map((cursor, i): [string, string] => [`a valid cursor of another connection (${i + 1})`, cursor]),
    ['a valid cursor with a lone surrogate appended', `${own}\ud800`],
    ['a valid cursor with a NUL appended', `${own}\u0000`],
    ['a valid cursor with a NUL inside', `${own.slice(0, 4)}\u0000${own.slice(4)}`],
    ['a 100 KB cursor', 'A'.repeat(100_000)],
  ];

  it.each(targets.map((target) => [target.name, target] as const))(
    '%s: every malformed cursor is BAD_USER_INPUT',
    async (_name, target) => {
      const user = uniqueUser('cursor');
      const { conversationId } = await startConversation(user);
      const cursors = await ownCursors(server, user, conversationId);
      const own = target.own(cursors);
      const others = Object.values(cursors).filter((cursor) => cursor !== own);

      // The connection works with its own cursor: the malformed ones below are refused for what they are.
      const valid = await gql(server, user, target.query, { id: conversationId, c: own });
      expect(valid.body?.errors, valid.text).toBeUndefined();

      const wrong: string[] = [];
      for (const [label, cursor] of [...common(own, others), ...target.specific]) {
        const answer = await gql(server, user, target.query, { id: conversationId, c: cursor });
        const error = answer.body?.errors?.[0];
        const ok = answer.status < 500 && error?.extensions?.code === 'BAD_USER_INPUT' && !RAW_DATABASE_TEXT.test(answer.text);
        if (!ok) wrong.push(`${label}: ${JSON.stringify(cursor.slice(0, 80))} -> HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
      }
      expect(wrong.join('\n'), `malformed cursors of ${target.name} not refused with BAD_USER_INPUT`).toBe('');
    },
  );
});

describe('the REST route', () => {
  it.each(NOT_TEXT)('refuses %s in message and in conversation_id with 400, and stores nothing', async (_name, bad) => {
    const user = uniqueUser('rest');
    const message = await postRest(server, user, { message: `add a task to buy milk${bad}` }, { user });
    expectNoServerError(message, 'REST message');
    expect(message.status, message.text).toBe(400);
    expect(message.body?.error?.code).toBe('BAD_USER_INPUT');
    await expectNothingStored(server.db, user);

    const { conversationId } = await startConversation(user);
    const before = await countRows(server.db, user);
    const conversation = await postRest(
      server,
      user,
      { conversation_id: `${conversationId}${bad}`, message: 'add a task to buy eggs' },
      { user },
    );
    expectNoServerError(conversation, 'REST conversation_id');
    expect(conversation.status, conversation.text).toBe(400);
    expect(await countRows(server.db, user)).toEqual(before);
  });

  it('refuses an Idempotency-Key holding a NUL byte with 400, and stores nothing', async () => {
    const user = uniqueUser('rest');
    const head = Buffer.concat([
      Buffer.from(
        `POST /api/${user}/chat HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${await server.token(user)}\r\nidempotency-key: key-`,
      ),
      Buffer.from([0x00]),
      Buffer.from('-end'),
    ]);
    const answer = await rawRequest(server.url, head, Buffer.from(JSON.stringify({ message: 'add a task to buy milk' })));
    expect(answer.status, answer.text.slice(0, 300)).toBe(400);
    await expectNothingStored(server.db, user);
  });

  it('refuses an Idempotency-Key whose bytes are not UTF-8 (ED A0 80, the bytes of a lone \\ud800) with 400, and stores nothing', async () => {
    const user = uniqueUser('rest');
    const head = Buffer.concat([
      Buffer.from(
        `POST /api/${user}/chat HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${await server.token(user)}\r\nidempotency-key: key-`,
      ),
      Buffer.from([0xed, 0xa0, 0x80]),
    ]);
    const answer = await rawRequest(server.url, head, Buffer.from(JSON.stringify({ message: 'add a task to buy milk' })));
    const stored = await server.db.query(`select client_message_id from message where user_id = $1 and role = 'user'`, [user]);
    expect({ status: answer.status, stored: stored.rows }, answer.text.slice(0, 300)).toEqual({ status: 400, stored: [] });
  });
});

describe('/mcp tool arguments', () => {
  it.each(NOT_TEXT)(
    'refuses %s in any tool argument with a tool error that shows no database text, and stores nothing',
    async (_name, bad) => {
      const user = uniqueUser('mcp');
      const { taskId } = await startConversation(user);
      const before = await server.db.query('select id, title, description, completed from task where user_id = $1', [user]);
      const calls: [string, Record<string, unknown>][] = [
        ['add_task', { title: `buy milk${bad}` }],
        ['add_task', { title: 'buy milk', description: `from the shop${bad}` }],
        ['update_task', { task_id: taskId, title: `buy oat milk${bad}` }],
        ['update_task', { task_id: taskId, description: `oat${bad}` }],
        ['complete_task', { task_id: `${taskId}${bad}` }],
        ['delete_task', { task_id: `${bad}${taskId}` }],
        ['list_tasks', { status: `all${bad}` }],
      ];
      const wrong: string[] = [];
      for (const [tool, args] of calls) {
        const answer = await callMcpTool(server, tool, args, { user });
        const ok = answer.status === 200 && answer.body?.result?.isError === true && !RAW_DATABASE_TEXT.test(answer.text);
        if (!ok) wrong.push(`${tool} ${JSON.stringify(args)} -> HTTP ${answer.status} ${answer.text.slice(0, 300)}`);
      }
      expect(wrong.join('\n'), 'tool calls not refused with a clean tool error').toBe('');
      const after = await server.db.query('select id, title, description, completed from task where user_id = $1', [user]);
      expect(after.rows).toEqual(before.rows);
    },
  );

  it('stores an accepted title exactly as sent (trimmed, as the tool documents)', async () => {
    const user = uniqueUser('mcp');
    const title = 'buy 🦊 e\u0301clair \u05e9\u05dc\u05d5\u05dd \ufffd';
    const answer = await callMcpTool(server, 'add_task', { title: `  ${title} `, description: 'from \u0001 the shop' }, { user });
    expect(answer.body?.result?.isError, answer.text).toBeFalsy();
    const { rows } = await server.db.query('select title, description from task where user_id = $1', [user]);
    expect(rows).toEqual([{ title, description: 'from \u0001 the shop' }]);
  });
});

describe('bodies in another charset', () => {
  it.each([
    ['/mcp', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' }],
    ['/graphql', '/graphql', { query: '{ viewer { id } }' }],
    ['the REST route', '/api/{user}/chat', { message: 'hello' }],
  ])('answers %s with Content-Type application/json; charset=latin1 with a 4xx, not a 500', async (_name, path, body) => {
    const user = uniqueUser('latin1');
    const answer = await request(`${server.url}${path.replace('{user}', user)}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=latin1',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${await server.token(user)}`,
      },
      body: Buffer.from(JSON.stringify(body), 'latin1'),
    });
    expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
    expect(answer.status, answer.text).toBeLessThan(500);
    await expectNothingStored(server.db, user);
  });
});
