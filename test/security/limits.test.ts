/**
 * Limits before execution: nothing a client sends reaches a resolver before the limits on
 * tokens, depth, aliases, directives, repeated fields, cost and `sendMessage`s per request. A
 * refusal is a 400 with `extensions.code` (GRAPHQL_PARSE_FAILED for tokens, else
 * GRAPHQL_VALIDATION_FAILED) and `extensions.limit` naming the limit, and not one SQL statement
 * was sent for it: that is how these tests know no resolver ran.
 *
 * Defaults under test: GRAPHQL_MAX_TOKENS 2000, GRAPHQL_MAX_DEPTH 10 (a field counts with its
 * leaf: `{ viewer { id } }` is 2 deep), GRAPHQL_MAX_ALIASES 30, GRAPHQL_MAX_DIRECTIVES 20,
 * GRAPHQL_MAX_COST 50,000 (a connection's `first`/`last`, default 20, multiplies what is under
 * it; a plain list counts 10; each object 1).
 *
 * The second half is a corpus of abusive documents; each must be refused quickly, with its code,
 * and without SQL, while the process keeps answering others.
 */
import { randomUUID } from 'node:crypto';
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEND } from '../support/graphql.js';
import { type Answer, codes, firstError, type GraphQLBody, gql, postGraphQL, request } from '../support/http.js';
import { countRows } from '../support/security.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { uniqueUser } from '../support/users.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

/** Sends `query` as a fresh user, with the SQL log cleared first: `server.queries` is then this request's. */
async function send<D = Record<string, unknown>>(
  query: string,
  variables?: Record<string, unknown>,
  user = uniqueUser('limits'),
): Promise<Answer<GraphQLBody<D>>> {
  server.resetQueries();
  return gql<D>(server, user, query, variables);
}

/**
 * The request was refused before execution: HTTP 400, no data, every error with `code`, the
 * first (or, with `anyOf`, some) error naming `limit`, and no SQL statement sent.
 */
function expectRefused(answer: Answer<GraphQLBody>, code: string, limit?: string | string[]): void {
  const shown = `HTTP ${answer.status} ${answer.text.slice(0, 800)}`;
  expect(answer.status, shown).toBe(400);
  expect(answer.body?.data ?? null, shown).toBeNull();
  expect(codes(answer).length, shown).toBeGreaterThan(0);
  expect(new Set(codes(answer)), shown).toEqual(new Set([code]));
  if (limit !== undefined) {
    const limits = (answer.body?.errors ?? []).map((error) => error.extensions?.limit);
    if (Array.isArray(limit))
      expect(
        limits.some((named) => limit.includes(named as string)),
        shown,
      ).toBe(true);
    else expect(firstError(answer).extensions?.limit, shown).toBe(limit);
  }
  expect(server.queries, `SQL ran for a refused request (${shown})`).toEqual([]);
}

function expectAnswered(answer: Answer<GraphQLBody>): void {
  const shown = `HTTP ${answer.status} ${answer.text.slice(0, 800)}`;
  expect(answer.status, shown).toBe(200);
  expect(answer.body?.errors, shown).toBeUndefined();
}

/** `n` aliased copies of `field`, named `prefix0`, `prefix1`, ... */
const aliased = (n: number, field: string, prefix = 'a') => Array.from({ length: n }, (_, i) => `${prefix}${i}: ${field}`).join(' ');

// 12 fields deep counting the leaf, 11 without it: over the depth limit whichever way one counts.
const TOO_DEEP = `{ conversations(first: 1) { edges { node { messages(first: 1) { edges { node {
  conversation { messages(first: 1) { edges { node { conversation { id } } } } } } } } } } } }`;
// 10 fields deep counting the leaf (`cursor`).
const TEN_DEEP = `{ conversations(first: 1) { edges { node { messages(first: 1) { edges { node {
  conversation { messages(first: 1) { edges { cursor } } } } } } } } } }`;
/** 100 conversations x (1 + 100 messages x (1 + 10 tool calls)) = 110,100 > 50,000. */
const costly = (
  conversations: number | '$n',
) => `query ${conversations === '$n' ? '($n: Int)' : ''} { conversations(first: ${conversations}) {
  edges { node { messages(first: 100) { edges { node { toolCalls { id } } } } } } } }`;

describe('what stays within the limits', () => {
  it('answers the nested browse of the README', async () => {
    const user = uniqueUser('browser');
    expect((await gql(server, user, SEND, { input: { message: 'add a task to buy milk' } })).status).toBe(200);
    const browse = `{
      viewer { id }
      conversations(first: 10) {
        edges { cursor node { id title messageCount lastMessage { content }
          messages(last: 20) { edges { node { seq role content toolCalls { name result } } } } } }
        pageInfo { hasNextPage endCursor }
      }
      tasks(first: 20) { edges { node { title completed } } }
    }`;
    const answer = await send<{ conversations: { edges: unknown[] } }>(browse, undefined, user);
    expectAnswered(answer);
    expect(answer.body?.data?.conversations.edges).toHaveLength(1);
  });

  it('answers a query 10 fields deep, 30 aliases, 20 directives, a field selected twice, and a cost of about 11,000', async () => {
    expectAnswered(await send(TEN_DEEP));
    expectAnswered(await send(`{ ${aliased(30, 'viewer { id }')} }`));
    expectAnswered(await send(`{ viewer { ${aliased(20, 'id @include(if: true)', 'd')} } }`));
    expectAnswered(await send('{ viewer { id id } }'));
    expectAnswered(await send(costly(10)));
  });

  it('answers the introspection query Apollo Sandbox sends: __schema is exempt from the depth limit', async () => {
    const answer = await send<{ __schema: { queryType: unknown } }>(getIntrospectionQuery());
    expectAnswered(answer);
    expect(answer.body?.data?.__schema.queryType).toMatchObject({ name: 'Query' });
  });
});

describe('limits, checked before any resolver runs', () => {
  it('refuses a document of more than 2000 tokens while parsing, naming the token limit', async () => {
    // 2,103 tokens; nothing else about it is abusive beyond the repeated field, which parsing never reaches.
    const answer = await send(`{ viewer { ${'id '.repeat(2_100)}} }`);
    expectRefused(answer, 'GRAPHQL_PARSE_FAILED', 'tokens');
    expect(firstError(answer).message).toMatch(/2000 tokens/);
  });

  it('refuses a query deeper than 10 fields', async () => {
    expectRefused(await send(TOO_DEEP), 'GRAPHQL_VALIDATION_FAILED', 'depth');
  });

  it('does not let __schema carry a deep query past the depth limit', async () => {
    const answer = await send(`{ __schema { queryType { name } } ${TOO_DEEP.slice(1)}`);
    expectRefused(answer, 'GRAPHQL_VALIDATION_FAILED', 'depth');
  });

  it('refuses more than 30 aliases', async () => {
    expectRefused(await send(`{ ${aliased(31, 'viewer { id }')} }`), 'GRAPHQL_VALIDATION_FAILED', 'aliases');
  });

  it('refuses more than 20 directives', async () => {
    expectRefused(await send(`{ viewer { ${aliased(21, 'id @include(if: true)', 'd')} } }`), 'GRAPHQL_VALIDATION_FAILED', 'directives');
  });

  it.each([
    ['a field', '{ viewer { id id id id id id id id id id } }'],
    ['an alias', '{ viewer { x: id x: id x: id x: id x: id x: id x: id x: id x: id x: id } }'],
    ['inline fragments', `{ viewer { ${'... on Viewer { id } '.repeat(10)}} }`],
    [
      'named fragments',
      `{ viewer { ${Array.from({ length: 10 }, (_, i) => `...F${i}`).join(' ')} } } ${Array.from({ length: 10 }, (_, i) => `fragment F${i} on Viewer { id }`).join(' ')}`,
    ],
  ])('refuses one response name repeated 10 times in one selection set (%s)', async (_how, query) => {
    expectRefused(await send(query), 'GRAPHQL_VALIDATION_FAILED', 'repeatedFields');
  });

  it('refuses a cost over 50,000: 100 conversations x 100 messages x their tool calls', async () => {
    const answer = await send(costly(100));
    expectRefused(answer, 'GRAPHQL_VALIDATION_FAILED', 'cost');
  });

  it('counts the page size given in a variable, and last as well as first', async () => {
    expectRefused(await send(costly('$n'), { n: 100 }), 'GRAPHQL_VALIDATION_FAILED', 'cost');
    expectRefused(
      await send(`{ conversations(last: 100) { edges { node { messages(last: 100) { edges { node { toolCalls { id } } } } } } } }`),
      'GRAPHQL_VALIDATION_FAILED',
      'cost',
    );
  });

  it('refuses two sendMessages in one request, by aliases, and stores nothing', async () => {
    const user = uniqueUser('twice');
    const answer = await send(
      `mutation { one: sendMessage(input: { message: "add a task to buy milk" }) { response }
                  two: sendMessage(input: { message: "add a task to buy eggs" }) { response } }`,
      undefined,
      user,
    );
    expectRefused(answer, 'GRAPHQL_VALIDATION_FAILED', 'sendMessage');
    expect(await countRows(server.db, user)).toEqual({ conversation: 0, message: 0, tool_call: 0, task: 0 });
  });

  it('refuses two sendMessages in one request, by fragments, and stores nothing', async () => {
    const user = uniqueUser('twice');
    const answer = await send(
      `mutation { ...One ...Two }
       fragment One on Mutation { one: sendMessage(input: { message: "add a task to buy milk" }) { response } }
       fragment Two on Mutation { ... on Mutation { two: sendMessage(input: { message: "add a task to buy eggs" }) { response } } }`,
      undefined,
      user,
    );
    expectRefused(answer, 'GRAPHQL_VALIDATION_FAILED', 'sendMessage');
    expect(await countRows(server.db, user)).toEqual({ conversation: 0, message: 0, tool_call: 0, task: 0 });
  });

  it('answers a subscription with a 4xx that says there are no subscriptions, never a 500', async () => {
    const answer = await send('subscription { viewer { id } }');
    expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
    expect(answer.status, answer.text).toBeLessThan(500);
    expect(firstError(answer).message).toMatch(/subscription/i);
    expect(codes(answer)).not.toContain('INTERNAL_SERVER_ERROR');
    expect(server.queries).toEqual([]);
  });

  it('suggests field, argument and type names outside production ("Did you mean")', async () => {
    const field = await send('{ viewer { idd } }');
    expectRefused(field, 'GRAPHQL_VALIDATION_FAILED');
    expect(firstError(field).message).toContain('Did you mean "id"?');
    const argument = await send('{ conversations(frist: 1) { pageInfo { hasNextPage } } }');
    expectRefused(argument, 'GRAPHQL_VALIDATION_FAILED');
    expect(firstError(argument).message).toContain('Did you mean "first"');
    const type = await send('query ($f: ConversationFiltr) { conversations(filter: $f) { pageInfo { hasNextPage } } }');
    expectRefused(type, 'GRAPHQL_VALIDATION_FAILED');
    expect(firstError(type).message).toContain('Did you mean "ConversationFilter"');
  });
});

describe('abusive documents: each refused with its code, quickly, before any SQL', () => {
  it('7 levels of conversation -> messages(first: 100): refused for depth or cost', async () => {
    let inner = 'id';
    for (let level = 0; level < 7; level++) inner = `conversation { messages(first: 100) { edges { node { ${inner} } } } }`;
    const query = `{ conversation(id: "${randomUUID()}") { messages(first: 100) { edges { node { ${inner} } } } } }`;
    expectRefused(await send(query), 'GRAPHQL_VALIDATION_FAILED', ['depth', 'cost']);
  });

  it('1,000 aliases of conversations(first: 100): over 2000 tokens, refused while parsing', async () => {
    const answer = await send(`{ ${aliased(1_000, 'conversations(first: 100) { edges { node { id title } } }')} }`);
    expectRefused(answer, 'GRAPHQL_PARSE_FAILED', 'tokens');
  });

  it('{ viewer { id x 20,000 } } with a comment never seen before: 400, and /healthz answers meanwhile', async () => {
    const query = `# ${randomUUID()}\n{ viewer { ${'id '.repeat(20_000)}} }`;
    server.resetQueries();
    const [abusive, health] = await Promise.all([
      postGraphQL(server, { query }, { user: uniqueUser('abuser') }),
      request(`${server.url}/healthz`, { method: 'GET' }),
    ]);
    expectRefused(abusive, 'GRAPHQL_PARSE_FAILED', 'tokens');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });
  });

  it.each([
    ['two fragments spreading each other', '{ viewer { ...A } } fragment A on Viewer { id ...B } fragment B on Viewer { id ...A }'],
    ['a fragment spreading itself', '{ viewer { ...A } } fragment A on Viewer { id ...A }'],
    [
      'a cycle through a nested field',
      '{ conversations { ...C } } fragment C on ConversationConnection { edges { node { messages { edges { node { conversation { messages { ...M } } } } } } } } fragment M on MessageConnection { edges { node { conversation { ...K } } } } fragment K on Conversation { messages { edges { node { conversation { id } } } } toolCalls { ...T } } fragment T on ToolCallConnection { edges { node { message { conversation { messages { ...M } } } } } }',
    ],
  ])('a fragment cycle (%s): refused', async (_name, query) => {
    expectRefused(await send(query), 'GRAPHQL_VALIDATION_FAILED');
  });

  it('a fragment bomb: 2^30 copies of `id` through fragments spread twice, level after level', async () => {
    const fragments = ['fragment F0 on Viewer { id }'];
    for (let level = 1; level <= 30; level++) fragments.push(`fragment F${level} on Viewer { ...F${level - 1} ...F${level - 1} }`);
    const answer = await send(`{ viewer { ...F30 } } ${fragments.join(' ')}`);
    expectRefused(answer, 'GRAPHQL_VALIDATION_FAILED', ['fields', 'repeatedFields', 'depth', 'aliases', 'cost']);
  });

  it('a fragment bomb of objects: 2^20 copies of conversations(first: 100) under aliases', async () => {
    const fragments = [
      'fragment Q0 on Query { c: conversations(first: 100) { edges { node { messages(first: 100) { edges { node { id } } } } } } }',
    ];
    for (let level = 1; level <= 20; level++) fragments.push(`fragment Q${level} on Query { ...Q${level - 1} ...Q${level - 1} }`);
    const answer = await send(`{ ...Q20 } ${fragments.join(' ')}`);
    expectRefused(answer, 'GRAPHQL_VALIDATION_FAILED', ['fields', 'repeatedFields', 'depth', 'aliases', 'cost']);
  });

  it('@include(if: true) 100 times on one field: refused for directives', async () => {
    expectRefused(await send(`{ viewer ${'@include(if: true) '.repeat(100)}{ id } }`), 'GRAPHQL_VALIDATION_FAILED', ['directives']);
  });

  it('a long document (500 KB, 150,000 tokens): refused while parsing', async () => {
    // Distinct aliases, so that even a server without the token limit answers in linear time.
    expectRefused(await send(`{ viewer { ${aliased(50_000, 'id', 'i')} } }`), 'GRAPHQL_PARSE_FAILED', 'tokens');
  });

  it('a body over the 1 MB limit: 413, before any SQL', async () => {
    server.resetQueries();
    const answer = await postGraphQL(server, { query: `{ viewer { id } } # ${'x'.repeat(1_100_000)}` }, { user: uniqueUser('big') });
    expect(answer.status, answer.text.slice(0, 300)).toBe(413);
    expect(server.queries).toEqual([]);
  });

  it('a batch (a JSON array of operations): 400, batching is off', async () => {
    server.resetQueries();
    const answer = await postGraphQL(server, [{ query: '{ viewer { id } }' }, { query: '{ viewer { id } }' }], {
      user: uniqueUser('batch'),
    });
    expect(answer.status, answer.text).toBe(400);
    expect(answer.text).not.toContain('INTERNAL_SERVER_ERROR');
    expect(server.queries).toEqual([]);
  });

  it('a batch of 50 sendMessages: 400, and nothing stored', async () => {
    const user = uniqueUser('batch');
    server.resetQueries();
    const batch = Array.from({ length: 50 }, (_, i) => ({ query: SEND, variables: { input: { message: `add a task to buy item ${i}` } } }));
    const answer = await postGraphQL(server, batch, { user });
    expect(answer.status, answer.text.slice(0, 500)).toBe(400);
    expect(server.queries).toEqual([]);
    expect(await countRows(server.db, user)).toEqual({ conversation: 0, message: 0, tool_call: 0, task: 0 });
  });

  it('50 aliased sendMessages: refused, and nothing stored', async () => {
    const user = uniqueUser('aliases');
    const answer = await send(
      `mutation { ${aliased(50, 'sendMessage(input: { message: "add a task to buy milk" }) { response }', 's')} }`,
      undefined,
      user,
    );
    expectRefused(answer, 'GRAPHQL_VALIDATION_FAILED', ['sendMessage', 'aliases']);
    expect(await countRows(server.db, user)).toEqual({ conversation: 0, message: 0, tool_call: 0, task: 0 });
  });
});
