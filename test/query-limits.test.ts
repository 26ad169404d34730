/**
 * Limits before execution: each query below once knocked the server over or made it work for
 * seconds; now each is refused with 400, its limit named, before any SQL runs. Queries that real
 * clients send (Sandbox's introspection, the README's browse, the benchmark's 100 × 20 page) pass.
 */
import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defined, first } from './support/defined.js';
import { send } from './support/graphql.js';
import { postGraphQL } from './support/http.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let conversationId: string;

beforeAll(async () => {
  server = await startTestServer();
  conversationId = (await send(await server.client('alice'), 'add a task to buy milk')).conversation.id;
});

afterAll(async () => {
  await server?.close();
});

type Answer = { status: number; errors?: { message: string; extensions: Record<string, unknown> }[]; data?: unknown };

async function run(query: string, variables?: Record<string, unknown>): Promise<Answer> {
  const answer = await postGraphQL(server, { query, variables }, { user: 'alice' });
  return { status: answer.status, ...(defined(answer.body, `a JSON answer, got: ${answer.text}`) as Omit<Answer, 'status'>) };
}

/** Expects `query` refused with 400, `code` and `limit`, and no SQL statement sent. */
async function expectRefused(query: string, limit: string, code = 'GRAPHQL_VALIDATION_FAILED', variables?: Record<string, unknown>) {
  server.resetQueries();
  const answer = await run(query, variables);
  expect(answer.status, JSON.stringify(answer.errors)).toBe(400);
  expect(answer.errors?.[0]?.extensions).toMatchObject({ code, limit });
  expect(answer.data).toBeUndefined();
  expect(server.queries).toEqual([]);
  return first(defined(answer.errors, 'the errors of the answer'), 'the errors of the answer').message;
}

/** `conversation(id) { messages(first: 100) { edges { node { conversation { … } } } } }`, `levels` times. */
function nested(levels: number): string {
  let inner = 'content';
  for (let i = 0; i < levels; i++)
    inner = `messages(first: 100) { edges { node { ${i === levels - 1 ? '' : 'conversation { '}${inner}${i === levels - 1 ? '' : ' }'} } } }`;
  return `{ conversation(id: "${conversationId}") { ${inner} } }`;
}

describe('queries that once took the server down', () => {
  it('refuses the 592-byte query that nested messages → conversation seven levels deep (it ran the heap out)', async () => {
    expect(await expectRefused(nested(7), 'depth')).toMatch(/depth limit of 10 exceeded/);
  });

  it('refuses three levels of 100 × 100 × 100 by cost, though within the depth limit', async () => {
    const query = `{ conversations(first: 100) { edges { node { messages(first: 100) { edges { node { conversation { title } toolCalls { name } } } } } } } }`;
    expect(await expectRefused(query, 'cost')).toMatch(/cost limit of 50000 exceeded/);
    // The same with variables: the cost is computed with the values the request sends.
    const withVariables = `query($n: Int) { conversations(first: $n) { edges { node { messages(first: $n) { edges { node { toolCalls { name } } } } } } } }`;
    await expectRefused(withVariables, 'cost', undefined, { n: 100 });
    expect((await run(withVariables, { n: 5 })).status).toBe(200);
  });

  it('refuses 1,000 aliases of conversations(first: 100) — by the token limit, and 31 aliases by the alias limit', async () => {
    const alias = (i: number) =>
      `a${i}: conversations(first: 100) { edges { node { messages(last: 20) { edges { node { toolCalls { name } } } } } } }`;
    const many = `{ ${Array.from({ length: 1000 }, (_, i) => alias(i)).join(' ')} }`;
    server.resetQueries();
    const answer = await run(many);
    expect(answer.status).toBe(400);
    expect(answer.errors?.[0]?.extensions).toMatchObject({ code: 'GRAPHQL_PARSE_FAILED', limit: 'tokens' });
    expect(server.queries).toEqual([]);
    const few = `{ ${Array.from({ length: 31 }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`;
    expect(await expectRefused(few, 'aliases')).toMatch(/Aliases limit of 30 exceeded, found 31/);
  });

  it('refuses `{ viewer { id id … ×20,000 } }` with a random comment at once, while /healthz keeps answering', async () => {
    const query = `# ${crypto.randomUUID()}\n{ viewer { ${'id '.repeat(20_000)}} }`;
    const health = fetch(`${server.url}/healthz`);
    const answer = await run(query);
    expect(answer.status).toBe(400);
    expect(answer.errors?.[0]?.message).toMatch(/more than 2000 tokens/);
    expect((await health).status).toBe(200);
    // Without a token too: the limits come before authentication.
    const anonymous = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    expect(anonymous.status).toBe(400);
    expect(((await anonymous.json()) as Omit<Answer, 'status'>).errors?.[0]?.extensions).toMatchObject({
      code: 'GRAPHQL_PARSE_FAILED',
      limit: 'tokens',
    });
    // Under the token limit, a field repeated in one selection set (quadratic to validate) is refused too.
    expect(await expectRefused(`{ viewer { ${'id '.repeat(1_000)}} }`, 'repeatedFields')).toMatch(
      /"id" is selected 1000 times in one selection set; at most 5 are accepted/,
    );
    expect(await expectRefused(`{ viewer { ${'... on Viewer { id } '.repeat(6)}} }`, 'repeatedFields')).toBeTruthy();
  });

  it('refuses 50 aliased sendMessages (50 conversations in one request): one sendMessage per request', async () => {
    const sends = Array.from({ length: 50 }, (_, i) => `s${i}: sendMessage(input: { message: "hi ${i}" }) { response }`).join(' ');
    expect(await expectRefused(`mutation { ${sends} }`, 'sendMessage')).toMatch(/asks 50 times/);
    const two = `mutation { a: sendMessage(input: { message: "one" }) { response } ...More } fragment More on Mutation { b: sendMessage(input: { message: "two" }) { response } }`;
    expect(await expectRefused(two, 'sendMessage')).toMatch(/sendMessage once; this one asks 2 times/);
    const { count } = (await server.db.query(`select count(*)::int as count from conversation where user_id = 'alice'`)).rows[0] as {
      count: number;
    };
    expect(count).toBe(1);
  });

  it('refuses more directives than GRAPHQL_MAX_DIRECTIVES', async () => {
    const fields = Array.from({ length: 21 }, (_, i) => `f${i}: __typename @include(if: true)`).join(' ');
    expect(await expectRefused(`{ ${fields} }`, 'directives')).toMatch(/Directives limit of 20 exceeded, found 21/);
  });

  it('survives fragment cycles and fragment bombs (graphql-js reports the cycle; the bomb is refused by depth)', async () => {
    const cycle = await run('{ viewer { ...A } } fragment A on Viewer { ...B } fragment B on Viewer { ...A }');
    expect(cycle.status).toBe(400);
    expect(cycle.errors?.[0]?.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    let bomb = '{ conversations(first: 100) { ...F0 } }';
    bomb += ' fragment F0 on ConversationConnection { edges { node { ...F1 } } }';
    for (let i = 1; i < 12; i++)
      bomb += ` fragment F${i} on Conversation { messages(first: 100) { edges { node { conversation { ...F${i + 1} } } } } }`;
    bomb += ' fragment F12 on Conversation { id }';
    const answer = await run(bomb);
    expect(answer.status).toBe(400);
  });
});

describe('queries real clients send still pass', () => {
  it("Sandbox's introspection query", async () => {
    const answer = await run(
      getIntrospectionQuery({
        descriptions: true,
        inputValueDeprecation: true,
        specifiedByUrl: true,
        directiveIsRepeatable: true,
        schemaDescription: true,
      }),
    );
    expect(answer.status).toBe(200);
    expect(answer.errors).toBeUndefined();
  });

  it("the benchmark's browse: 100 conversations with their last 20 messages and their tool calls", async () => {
    const answer = await run(`{ conversations(first: 100) { edges { cursor node { id title messageCount lastMessage { content }
      messages(last: 20) { edges { node { seq role content toolCalls { name result } } } } } } pageInfo { hasNextPage endCursor } }
      tasks(first: 20) { edges { node { title completed } } } }`);
    expect(answer.status).toBe(200);
    expect(answer.errors).toBeUndefined();
  });
});
