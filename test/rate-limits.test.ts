/**
 * Per-user rate limits and quotas, kept in PostgreSQL: turns per minute, new conversations per
 * hour, model tokens per day, `/mcp` tool calls per minute and messages per batch, tasks per
 * user. Each test uses its own user, so the windows (a minute at least) start with the test and
 * nothing here depends on how fast the machine is: the tests count, they never time.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RATE_LIMITS_OFF } from '../src/config.js';
import { taskStore } from '../src/db/stores/tasks.js';
import { createTodoServer } from '../src/mcp/todo-server.js';
import { connectInMemory } from '../src/mcp/toolbox.js';
import { defined, first } from './support/defined.js';
import { type FakeOpenAi, reply, startFakeOpenAi } from './support/fake-openai.js';
import { gqlError, SEND, send } from './support/graphql.js';
import { postMcp } from './support/http.js';
import { startTestServer, type TestServer } from './support/server.js';

const LIMITS = {
  RATE_TURNS_PER_MINUTE: '3',
  RATE_CONVERSATIONS_PER_HOUR: '2',
  RATE_MCP_CALLS_PER_MINUTE: '25',
  MCP_BATCH_MAX: '5',
  QUOTA_TASKS: '10',
};
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: LIMITS });
});

afterAll(async () => {
  await server?.close();
});

async function count(sql: string, params: unknown[], on: TestServer = server): Promise<number> {
  const { rows } = await on.db.query<{ n: number }>(`select count(*)::int as n from (${sql}) t`, params);
  return first(rows, 'the count row').n;
}

async function counter(userId: string, kind: string): Promise<number | null> {
  const { rows } = await server.db.query<{ count: string }>('select count from rate_counter where user_id = $1 and kind = $2', [
    userId,
    kind,
  ]);
  return rows[0] ? Number(rows[0].count) : null;
}

type RpcResponse = {
  jsonrpc: string;
  id: unknown;
  result?: CallToolResult & Record<string, unknown>;
  error?: { code: number; message: string; data?: { retryAfterMs?: number } & Record<string, unknown> };
};

/** A raw JSON-RPC POST to `/mcp` as `userId` (one message, or a batch when given an array: then `B` is `RpcResponse[]`). */
async function mcp<B = RpcResponse>(userId: string, body: unknown, on: TestServer = server) {
  const answer = await postMcp(on, body, { user: userId });
  return { status: answer.status, headers: answer.headers, body: defined(answer.body, `a JSON answer, got: ${answer.text}`) as B };
}

let rpcId = 0;
const call = (name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id: ++rpcId,
  method: 'tools/call',
  params: { name, arguments: args },
});
const listTools = () => ({ jsonrpc: '2.0', id: ++rpcId, method: 'tools/list', params: {} });

describe('turns per user', () => {
  it('refuses a turn past RATE_TURNS_PER_MINUTE with RATE_LIMITED and retryAfterMs, and stores nothing for it', async () => {
    const tess = await server.client('tess');
    const first = await send(tess, 'add a task to buy milk');
    await send(tess, 'show my tasks', first.conversation.id);
    await send(tess, 'show my tasks', first.conversation.id);

    const refused = await gqlError(tess, SEND, { input: { conversationId: first.conversation.id, message: 'add a task to buy eggs' } });
    expect(refused.code).toBe('RATE_LIMITED');
    expect(refused.message).toContain('3 turns per minute');
    expect(refused.extensions.retryAfterMs).toBeGreaterThan(0);
    expect(refused.extensions.retryAfterMs).toBeLessThanOrEqual(MINUTE_MS);
    // A first message is refused the same way, and makes no conversation.
    expect((await gqlError(tess, SEND, { input: { message: 'add a task to call mom' } })).code).toBe('RATE_LIMITED');

    expect(await count('select 1 from message where user_id = $1', ['tess'])).toBe(6);
    expect(await count('select 1 from conversation where user_id = $1', ['tess'])).toBe(1);
    expect(await count('select 1 from task where user_id = $1', ['tess'])).toBe(1);
    const conversation = await server.db.query('select message_count, next_seq, turn_id from conversation where id = $1', [
      first.conversation.id,
    ]);
    expect(conversation.rows).toEqual([{ message_count: 6, next_seq: 7, turn_id: null }]);
    // The refused turns' increments rolled back with them.
    expect(await counter('tess', 'turns')).toBe(3);
    expect(await counter('tess', 'conversations')).toBe(1);
  });

  it('does not count a replay, and replays even at the limit', async () => {
    const rhea = await server.client('rhea');
    const first = await send(rhea, 'add a task to water plants', undefined, { clientMessageId: 'rhea-1' });
    for (let i = 0; i < 3; i++) {
      expect((await send(rhea, 'add a task to water plants', undefined, { clientMessageId: 'rhea-1' })).replayed).toBe(true);
    }
    await send(rhea, 'show my tasks', first.conversation.id);
    await send(rhea, 'show my tasks', first.conversation.id);
    expect((await gqlError(rhea, SEND, { input: { conversationId: first.conversation.id, message: 'show my tasks' } })).code).toBe(
      'RATE_LIMITED',
    );

    const replay = await send(rhea, 'add a task to water plants', undefined, { clientMessageId: 'rhea-1' });
    expect(replay).toMatchObject({
      replayed: true,
      conversation: { id: first.conversation.id },
      assistantMessage: { id: first.assistantMessage.id },
    });
    expect(await counter('rhea', 'turns')).toBe(3);
    expect(await count('select 1 from task where user_id = $1', ['rhea'])).toBe(1);
  });

  it('refuses a new conversation past RATE_CONVERSATIONS_PER_HOUR, while turns in existing ones go on', async () => {
    const cleo = await server.client('cleo');
    const first = await send(cleo, 'add a task to read a book');
    await send(cleo, 'add a task to write a letter');

    const refused = await gqlError(cleo, SEND, { input: { message: 'add a task to paint the fence' } });
    expect(refused.code).toBe('RATE_LIMITED');
    expect(refused.message).toContain('2 new conversations per hour');
    // The hour's window has most of its time left: far more than a minute.
    expect(refused.extensions.retryAfterMs).toBeGreaterThan(MINUTE_MS);
    expect(refused.extensions.retryAfterMs).toBeLessThanOrEqual(HOUR_MS);

    const third = await send(cleo, 'show my tasks', first.conversation.id);
    expect(third.userMessage.seq).toBe(3);
    expect(await count('select 1 from conversation where user_id = $1', ['cleo'])).toBe(2);
    expect(await count('select 1 from task where user_id = $1 and title = $2', ['cleo', 'paint the fence'])).toBe(0);
    expect(await counter('cleo', 'conversations')).toBe(2);
    expect(await counter('cleo', 'turns')).toBe(3);
  });

  it('counts a conversation made empty (createConversation) against the same limit, storing nothing past it', async () => {
    const dora = await server.client('dora');
    const CREATE = 'mutation ($title: String) { createConversation(input: { title: $title }) { id } }';
    await dora.request(CREATE, { title: 'one' });
    await send(dora, 'add a task to call mum');
    const refused = await gqlError(dora, CREATE, { title: 'three' });
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringContaining('2 new conversations per hour') });
    expect(refused.extensions.retryAfterMs).toBeGreaterThan(MINUTE_MS);
    expect((await gqlError(dora, SEND, { input: { message: 'add a task to swim' } })).code).toBe('RATE_LIMITED');
    expect(await count('select 1 from conversation where user_id = $1', ['dora'])).toBe(2);
    expect(await counter('dora', 'conversations')).toBe(2);
  });

  it('answers the REST route with 429, a Retry-After header in seconds and the JSON error', async () => {
    const post = async (body: unknown) => {
      const response = await fetch(`${server.url}/api/rory/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await server.token('rory')}` },
        body: JSON.stringify(body),
      });
      // The JSON a client gets back, read loosely: a turn or an error.
      type Body = { conversation_id?: string; error?: { code?: string; message?: string; retryAfterMs?: number } };
      return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as Body };
    };
    const first = await post({ message: 'add a task to fix the bike' });
    expect(first.status).toBe(200);
    for (let i = 0; i < 2; i++)
      expect((await post({ conversation_id: first.body.conversation_id, message: 'show my tasks' })).status).toBe(200);

    const refused = await post({ conversation_id: first.body.conversation_id, message: 'show my tasks' });
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      error: { code: 'RATE_LIMITED', message: expect.stringContaining('3 turns per minute'), retryAfterMs: expect.any(Number) },
    });
    expect(Number(refused.retryAfter)).toBe(
      Math.ceil(defined(refused.body.error?.retryAfterMs, 'error.retryAfterMs of the refusal') / 1000),
    );
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(60);
    expect(await count('select 1 from message where user_id = $1', ['rory'])).toBe(6);
  });
});

describe('/mcp per user', () => {
  it('counts every tools/call of a batch and answers 429 with Retry-After past RATE_MCP_CALLS_PER_MINUTE', async () => {
    for (let batch = 0; batch < 4; batch++) {
      const answered = await mcp<RpcResponse[]>(
        'mika',
        Array.from({ length: 5 }, () => call('list_tasks')),
      );
      expect(answered.status).toBe(200);
      expect(answered.body).toHaveLength(5);
    }
    const adds = await mcp<RpcResponse[]>(
      'mika',
      Array.from({ length: 5 }, (_, i) => call('add_task', { title: `task ${i}` })),
    );
    expect(adds.status).toBe(200);
    expect(adds.body.map((r: RpcResponse) => r.result?.isError ?? false)).toEqual([false, false, false, false, false]);

    // 27 of 25: the whole batch is refused before anything runs.
    const refused = await mcp('mika', [call('add_task', { title: 'one too many' }), call('add_task', { title: 'two too many' })]);
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({
      jsonrpc: '2.0',
      error: {
        code: -32000,
        message: expect.stringContaining('25 MCP tool calls per minute'),
        data: { code: 'RATE_LIMITED', retryAfterMs: expect.any(Number) },
      },
      id: null,
    });
    expect(Number(refused.headers.get('retry-after'))).toBe(
      Math.ceil(defined(refused.body.error?.data?.retryAfterMs, 'error.data.retryAfterMs of the refusal') / 1000),
    );
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect((await mcp('mika', call('list_tasks'))).status).toBe(429);
    expect(await count('select 1 from task where user_id = $1', ['mika'])).toBe(5);

    // Only tool calls count: listing the tools still works.
    const listed = await mcp('mika', listTools());
    expect(listed.status).toBe(200);
    expect(defined(listed.body.result, 'the tools/list result').tools).toHaveLength(5);
  });

  it('refuses a batch longer than MCP_BATCH_MAX with 400 and a JSON-RPC error naming the limit, running none of it', async () => {
    const refused = await mcp(
      'ben',
      Array.from({ length: 6 }, (_, i) => call('add_task', { title: `batched ${i}` })),
    );
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({
      jsonrpc: '2.0',
      error: { code: -32600, message: 'Batch of 6 messages: at most 5 are accepted in one request', data: { limit: 5 } },
      id: null,
    });
    expect(await count('select 1 from task where user_id = $1', ['ben'])).toBe(0);
    expect(await counter('ben', 'mcp_calls')).toBeNull();
    expect(
      (
        await mcp(
          'ben',
          Array.from({ length: 5 }, () => call('list_tasks')),
        )
      ).status,
    ).toBe(200);
  });
});

describe('tasks per user', () => {
  const LIMIT_TEXT = 'Task limit reached: 10 tasks; delete some first.';

  async function prefill(userId: string, tasks: number) {
    await server.db.query(
      `insert into task (id, user_id, title, created_at, updated_at) select gen_random_uuid(), $1, 'old ' || i, now(), now() from generate_series(1, $2) i`,
      [userId, tasks],
    );
  }

  it('never go past QUOTA_TASKS, even with 20 add_task through /mcp at once at the edge', async () => {
    await prefill('tara', 7);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => mcp('tara', call('add_task', { title: `racing ${i}` }))));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const results = answers.map((a) => a.body.result as CallToolResult);
    expect(results.filter((r) => !r.isError)).toHaveLength(3);
    const refusals = results.filter((r) => r.isError);
    expect(refusals).toHaveLength(17);
    for (const refusal of refusals) expect(refusal.content).toEqual([{ type: 'text', text: LIMIT_TEXT }]);
    expect(await count('select 1 from task where user_id = $1', ['tara'])).toBe(10);

    // Delete one, and there is room for one again.
    const { rows } = await server.db.query<{ id: string }>(`select id from task where user_id = 'tara' order by id limit 1`);
    const deleted = await mcp('tara', call('delete_task', { task_id: first(rows, 'the tasks of tara').id }));
    expect(defined(deleted.body.result, 'the delete_task result').isError).toBeFalsy();
    const fits = await mcp('tara', call('add_task', { title: 'fits again' }));
    expect(defined(fits.body.result, 'the add_task result').isError).toBeFalsy();
    expect((await mcp('tara', call('add_task', { title: 'does not fit' }))).body.result).toMatchObject({ isError: true });
    expect(await count('select 1 from task where user_id = $1', ['tara'])).toBe(10);
  });

  it("hold for the agent's add_task too: the tool call is an error the model reads, and the turn answers", async () => {
    await prefill('otto', 9);
    const otto = await server.client('otto');
    expect((await send(otto, 'add a task to buy milk')).toolCalls[0]).toMatchObject({ name: 'add_task', isError: false });
    const full = await send(otto, 'add a task to buy eggs');
    expect(full.toolCalls[0]).toMatchObject({ name: 'add_task', isError: true, result: { error: LIMIT_TEXT } });
    expect(full.assistantMessage.status).toBe('COMPLETE');
    expect(await count('select 1 from task where user_id = $1', ['otto'])).toBe(10);
    const stored = await server.db.query('select is_error from tool_call where message_id = $1', [full.assistantMessage.id]);
    expect(stored.rows).toEqual([{ is_error: true }]);
  });
});

describe('todo tools that fail unexpectedly', () => {
  beforeAll(async () => {
    // A database error whose text must not reach the client: a trigger that fails for one title.
    await server.db.query(`create function refuse_boom() returns trigger language plpgsql as $$
      begin raise exception 'secret detail of relation task (constraint boom_check)'; end $$`);
    await server.db.query(
      `create trigger refuse_boom before insert on task for each row when (new.title = 'boom') execute function refuse_boom()`,
    );
  });

  afterAll(async () => {
    await server.db.query('drop trigger refuse_boom on task; drop function refuse_boom()');
  });

  it('answer a generic tool error over /mcp, without the database text', async () => {
    const answer = await mcp('bram', call('add_task', { title: 'boom' }));
    expect(answer.status).toBe(200);
    expect(answer.body.result).toEqual({
      content: [{ type: 'text', text: 'Internal error: add_task could not be completed. Try again later.' }],
      isError: true,
    });
    expect(JSON.stringify(answer.body)).not.toContain('secret');
  });

  it('log the cause with the logger they are given', async () => {
    const logged: { obj: Record<string, unknown>; msg: string }[] = [];
    const log = { error: (obj: Record<string, unknown>, msg: string) => logged.push({ obj, msg }) } as never;
    const client: Client = await connectInMemory(createTodoServer(taskStore(server.app.orm.em.fork()), { userId: 'bram' }, { log }));
    try {
      const result = (await client.callTool({ name: 'add_task', arguments: { title: 'boom' } })) as CallToolResult;
      expect(result).toMatchObject({ isError: true, content: [{ type: 'text', text: expect.stringMatching(/^Internal error/) }] });
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ msg: 'todo tool failed', obj: { tool: 'add_task', userId: 'bram' } });
      expect(String((first(logged, 'the logged errors').obj.err as Error).message)).toContain('secret detail');
    } finally {
      await client.close();
    }
  });
});

describe('limits across two instances on one database', () => {
  let second: TestServer;

  beforeAll(async () => {
    second = await startTestServer({ env: LIMITS, database: server.database });
  });

  afterAll(async () => {
    await second?.close();
  });

  it('hold in total when requests alternate between the instances', async () => {
    const [onFirst, onSecond] = [await server.client('duo'), await second.client('duo')];
    const started = await send(onFirst, 'add a task to plan the trip');
    await send(onSecond, 'show my tasks', started.conversation.id);
    await send(onFirst, 'show my tasks', started.conversation.id);
    expect((await gqlError(onSecond, SEND, { input: { conversationId: started.conversation.id, message: 'show my tasks' } })).code).toBe(
      'RATE_LIMITED',
    );
    expect((await gqlError(onFirst, SEND, { input: { conversationId: started.conversation.id, message: 'show my tasks' } })).code).toBe(
      'RATE_LIMITED',
    );
    expect(await count('select 1 from message where user_id = $1', ['duo'])).toBe(6);

    for (let batch = 0; batch < 5; batch++) {
      expect(
        (
          await mcp(
            'duo',
            Array.from({ length: 5 }, () => call('list_tasks')),
            batch % 2 === 0 ? server : second,
          )
        ).status,
      ).toBe(200);
    }
    expect((await mcp('duo', call('list_tasks'), second)).status).toBe(429);
    expect((await mcp('duo', call('list_tasks'), server)).status).toBe(429);
    expect(await counter('duo', 'turns')).toBe(3);
  });
});

describe('SQL statements of a turn', () => {
  let unlimited: TestServer;

  beforeAll(async () => {
    unlimited = await startTestServer({ env: RATE_LIMITS_OFF });
  });

  afterAll(async () => {
    await unlimited?.close();
  });

  async function statementsOfTurn(on: TestServer, userId: string): Promise<string[]> {
    const client = await on.client(userId);
    const first = await send(client, 'add a task to count statements');
    on.resetQueries();
    await send(client, 'show my tasks', first.conversation.id);
    return [...on.queries];
  }

  it('do not grow with the limits on: the turn is counted, and the day’s tokens read, by the one statement that starts it', async () => {
    const limited = await statementsOfTurn(server, 'stan');
    const free = await statementsOfTurn(unlimited, 'stan');
    expect(limited.length).toBe(free.length);
    const counting = limited.filter((sql) => sql.includes('rate_counter'));
    expect(counting).toHaveLength(1);
    expect(counting[0]).toMatch(/^with c as .*insert into rate_counter.*insert into message/);
    // With the limits off the same statement runs, and counts nothing.
    const counters = await unlimited.db.query(`select kind from rate_counter where user_id = 'stan'`);
    expect(counters.rows).toEqual([]);
    const counted = await server.db.query(`select kind, count::int from rate_counter where user_id = 'stan' order by kind`);
    expect(counted.rows).toEqual([
      { kind: 'turns', count: 2 },
      { kind: 'conversations', count: 1 },
      { kind: 'tokens', count: 0 },
    ]);
  });
});

describe('model tokens per day', () => {
  let fake: FakeOpenAi;
  let model: TestServer;

  beforeAll(async () => {
    fake = await startFakeOpenAi();
    fake.otherwise(reply('Done.')); // 10 + 5 tokens each
    model = await startTestServer({
      env: {
        OPENAI_API_KEY: 'test-key',
        OPENAI_BASE_URL: `${fake.url}/v1`,
        OPENAI_MODEL: 'fake-model',
        TITLE_MODEL: 'off',
        QUOTA_TOKENS_PER_DAY: '40',
      },
    });
  });

  afterAll(async () => {
    await model?.close();
    await fake?.close();
  });

  it('adds each turn’s tokens when it finishes and refuses the next turn once the day’s count reaches QUOTA_TOKENS_PER_DAY', async () => {
    const tina = await model.client('tina');
    const first = await send(tina, 'hello');
    model.resetQueries();
    await send(tina, 'hello again', first.conversation.id);
    // Counted in the statements a turn runs anyway: the begin's upsert, and the finish's notice.
    const counting = model.queries.filter((sql) => sql.includes('rate_counter'));
    expect(counting).toHaveLength(2);
    expect(counting[1]).toContain('pg_notify');
    await send(tina, 'and again', first.conversation.id);
    const tokens = await model.db.query(`select count from rate_counter where user_id = 'tina' and kind = 'tokens'`);
    expect(tokens.rows).toEqual([{ count: '45' }]);

    const refused = await gqlError(tina, SEND, { input: { conversationId: first.conversation.id, message: 'one more' } });
    expect(refused.code).toBe('RATE_LIMITED');
    expect(refused.message).toContain('40 model tokens per day');
    expect(refused.extensions.retryAfterMs).toBeGreaterThan(HOUR_MS);
    // The refused turn never reached the model and stored nothing.
    expect(fake.requests).toHaveLength(3);
    expect(await count('select 1 from message where user_id = $1', ['tina'], model)).toBe(6);
  });
});
