/**
 * The OpenAI agent end to end: HTTP -> GraphQL -> turn -> the real `openai` SDK -> a scripted
 * OpenAI-compatible fake over HTTP -> MCP todo tools -> PostgreSQL. The server builds the agent
 * from its configuration, as in production. Each test states what the client receives, exactly
 * what is stored, and what the model was sent.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SYSTEM_PROMPT, loadConfig } from '../src/config.js';
import { at, defined } from './support/defined.js';
import { delayed, type FakeOpenAi, httpError, reply, startFakeOpenAi, toolCalls, usage } from './support/fake-openai.js';
import { gqlError, SEND, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

const TODO_TOOLS = ['add_task', 'complete_task', 'delete_task', 'list_tasks', 'update_task'];

let fake: FakeOpenAi;
let server: TestServer;
let db: pg.Client;

/** The server's settings for the fake model; `overrides` on top. */
function modelEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    OPENAI_API_KEY: 'test-key',
    OPENAI_BASE_URL: `${fake.url}/v1`,
    OPENAI_MODEL: 'fake-model',
    // Titles by the model have their own suite (titles.test.ts): here every request is a turn's.
    TITLE_MODEL: 'off',
    OPENAI_MAX_RETRIES: '2',
    MAX_TOOL_ROUNDS: '3',
    ...overrides,
  };
}

beforeAll(async () => {
  fake = await startFakeOpenAi();
  server = await startTestServer({ env: modelEnv() });
  db = server.db;
});

afterAll(async () => {
  await server?.close();
  await fake?.close();
});

beforeEach(() => {
  fake.reset();
});

/** The rows of `sql`; `Row` is the shape the test selected (by default: compared, not looked into). */
async function rows<Row = Record<string, unknown>>(sql: string, params: unknown[]): Promise<Row[]> {
  return (await db.query(sql, params)).rows as Row[];
}

type MessageRow = {
  seq: number;
  role: string;
  status: string;
  content: string | null;
  model: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
};

type ToolCallRow = {
  message_id: string;
  call_id: string;
  server: string;
  name: string;
  arguments: unknown;
  result: { error?: string } & Record<string, unknown>;
  is_error: boolean;
};

const messagesOf = (conversationId: string) =>
  rows<MessageRow>(
    `select seq, role, status, content, model, prompt_tokens, completion_tokens, total_tokens
     from message where conversation_id = $1 order by seq`,
    [conversationId],
  );

const toolCallsOf = (conversationId: string) =>
  rows<ToolCallRow>(
    'select message_id, call_id, server, name, arguments, result, is_error from tool_call where conversation_id = $1 order by call_id',
    [conversationId],
  );

/** The messages of the `index`-th request the model received. */
const sentMessages = (index: number) => at(fake.requests, index, 'the requests to the model').body.messages;

describe('a turn on an OpenAI-compatible model', () => {
  it('answers in plain text: the reply, the model the API reported and the usage are stored and summed per conversation', async () => {
    fake.script(
      reply('Hello! What should I add to your list?', { usage: usage(12, 7), model: 'fake-model-2026-01-01' }),
      reply('Still here.', { usage: usage(30, 4) }),
    );
    const client = await server.client('plain');
    const first = await send(client, 'hello');
    const second = await send(client, 'are you there?', first.conversation.id);

    expect(first.response).toBe('Hello! What should I add to your list?');
    expect(first.assistantMessage).toMatchObject({ seq: 2, status: 'COMPLETE', model: 'fake-model-2026-01-01' });
    expect(first.toolCalls).toEqual([]);
    expect(second.response).toBe('Still here.');
    expect(second.assistantMessage).toMatchObject({ seq: 4, status: 'COMPLETE', model: 'fake-model' });

    const read = await client.request<{
      conversation: { usage: unknown; messages: { edges: { node: { seq: number; model: string | null; usage: unknown } }[] } };
    }>(
      `query ($id: ID!) { conversation(id: $id) {
         usage { promptTokens completionTokens totalTokens }
         messages(first: 10) { edges { node { seq model usage { promptTokens completionTokens totalTokens } } } } } }`,
      { id: first.conversation.id },
    );
    expect(read.conversation.usage).toEqual({ promptTokens: 42, completionTokens: 11, totalTokens: 53 });
    expect(read.conversation.messages.edges.map((edge) => edge.node)).toEqual([
      { seq: 1, model: null, usage: null },
      { seq: 2, model: 'fake-model-2026-01-01', usage: { promptTokens: 12, completionTokens: 7, totalTokens: 19 } },
      { seq: 3, model: null, usage: null },
      { seq: 4, model: 'fake-model', usage: { promptTokens: 30, completionTokens: 4, totalTokens: 34 } },
    ]);

    expect(await messagesOf(first.conversation.id)).toEqual([
      {
        seq: 1,
        role: 'user',
        status: 'complete',
        content: 'hello',
        model: null,
        prompt_tokens: null,
        completion_tokens: null,
        total_tokens: null,
      },
      {
        seq: 2,
        role: 'assistant',
        status: 'complete',
        content: 'Hello! What should I add to your list?',
        model: 'fake-model-2026-01-01',
        prompt_tokens: 12,
        completion_tokens: 7,
        total_tokens: 19,
      },
      {
        seq: 3,
        role: 'user',
        status: 'complete',
        content: 'are you there?',
        model: null,
        prompt_tokens: null,
        completion_tokens: null,
        total_tokens: null,
      },
      {
        seq: 4,
        role: 'assistant',
        status: 'complete',
        content: 'Still here.',
        model: 'fake-model',
        prompt_tokens: 30,
        completion_tokens: 4,
        total_tokens: 34,
      },
    ]);
    expect(
      await rows('select prompt_tokens, completion_tokens, total_tokens from conversation where id = $1', [first.conversation.id]),
    ).toEqual([{ prompt_tokens: 42, completion_tokens: 11, total_tokens: 53 }]);

    expect(fake.requests).toHaveLength(2);
    const request = at(fake.requests, 0, 'the requests to the model');
    expect(request.headers.authorization).toBe('Bearer test-key');
    expect(request.body.model).toBe('fake-model');
    const tools = defined(request.body.tools, 'the tools offered to the model');
    expect(tools.map((tool) => tool.function.name).sort()).toEqual(TODO_TOOLS);
    expect(tools.find((tool) => tool.function.name === 'add_task')).toMatchObject({
      type: 'function',
      function: { description: expect.any(String), parameters: { type: 'object', properties: { title: expect.any(Object) } } },
    });
    expect(sentMessages(0)).toEqual([
      { role: 'system', content: DEFAULT_SYSTEM_PROMPT },
      { role: 'user', content: 'hello' },
    ]);
    expect(sentMessages(1)).toEqual([
      { role: 'system', content: DEFAULT_SYSTEM_PROMPT },
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'Hello! What should I add to your list?' },
      { role: 'user', content: 'are you there?' },
    ]);
  });

  it('runs a tool call through MCP, records it under the provider call id and sends the result back to the model', async () => {
    fake.script(
      toolCalls([{ id: 'call_add_1', name: 'add_task', arguments: '{"title":"buy milk"}' }], { usage: usage(20, 10) }),
      reply('Added “buy milk” to your tasks.', { usage: usage(40, 6) }),
    );
    const client = await server.client('one-call');
    const turn = await send(client, 'add buy milk');

    expect(turn.response).toBe('Added “buy milk” to your tasks.');
    const [task] = await rows<{ id: string; title: string; completed: boolean }>(
      'select id, title, completed from task where user_id = $1',
      ['one-call'],
    );
    expect(task).toEqual({ id: expect.any(String), title: 'buy milk', completed: false });
    const result = { task_id: defined(task, 'the stored task').id, status: 'created', title: 'buy milk' };
    expect(turn.toolCalls).toEqual([
      {
        callId: 'call_add_1',
        server: 'todo',
        name: 'add_task',
        arguments: { title: 'buy milk' },
        result,
        isError: false,
        durationMs: expect.any(Number),
      },
    ]);

    expect(await toolCallsOf(turn.conversation.id)).toEqual([
      {
        message_id: turn.assistantMessage.id,
        call_id: 'call_add_1',
        server: 'todo',
        name: 'add_task',
        arguments: { title: 'buy milk' },
        result,
        is_error: false,
      },
    ]);
    // Usage is the sum over both model calls of the turn.
    expect((await messagesOf(turn.conversation.id))[1]).toMatchObject({
      status: 'complete',
      model: 'fake-model',
      prompt_tokens: 60,
      completion_tokens: 16,
      total_tokens: 76,
    });

    expect(fake.requests).toHaveLength(2);
    const [assistantStep, toolResult] = sentMessages(1).slice(2);
    expect(assistantStep).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_add_1', type: 'function', function: { name: 'add_task', arguments: '{"title":"buy milk"}' } }],
    });
    expect(toolResult).toEqual({ role: 'tool', tool_call_id: 'call_add_1', content: expect.any(String) });
    expect(JSON.parse(defined(defined(toolResult, 'the tool message sent').content, 'the content of the tool message'))).toEqual(result);
  });

  it('runs two tool calls of one step, records both and sends both results back', async () => {
    fake.script(
      toolCalls([
        { id: 'call_a', name: 'add_task', arguments: '{"title":"walk the dog"}' },
        { id: 'call_b', name: 'add_task', arguments: '{"title":"water the plants"}' },
      ]),
      reply('Added both tasks.'),
    );
    const client = await server.client('parallel');
    const turn = await send(client, 'add walk the dog and water the plants');

    expect(turn.response).toBe('Added both tasks.');
    expect(turn.toolCalls.map((call) => call.callId).sort()).toEqual(['call_a', 'call_b']);
    const tasks = await rows('select title from task where user_id = $1 order by title', ['parallel']);
    expect(tasks).toEqual([{ title: 'walk the dog' }, { title: 'water the plants' }]);
    expect(await toolCallsOf(turn.conversation.id)).toEqual([
      expect.objectContaining({
        call_id: 'call_a',
        name: 'add_task',
        arguments: { title: 'walk the dog' },
        is_error: false,
        result: expect.objectContaining({ title: 'walk the dog' }),
      }),
      expect.objectContaining({
        call_id: 'call_b',
        name: 'add_task',
        arguments: { title: 'water the plants' },
        is_error: false,
        result: expect.objectContaining({ title: 'water the plants' }),
      }),
    ]);

    const sent = sentMessages(1);
    expect(defined(at(sent, -3, 'the messages sent').tool_calls, 'the tool calls of the assistant step').map((call) => call.id)).toEqual([
      'call_a',
      'call_b',
    ]);
    expect(
      sent
        .slice(-2)
        .map((message) => [
          message.role,
          message.tool_call_id,
          JSON.parse(defined(message.content, 'the content of a tool message')).title,
        ]),
    ).toEqual([
      ['tool', 'call_a', 'walk the dog'],
      ['tool', 'call_b', 'water the plants'],
    ]);
  });

  it('stops a model that keeps calling tools at MAX_TOOL_ROUNDS with a plain explanation, every call recorded', async () => {
    const listing = (id: string) => toolCalls([{ id, name: 'list_tasks', arguments: '{}' }]);
    fake.script(listing('call_loop_1'), listing('call_loop_2'), listing('call_loop_3'));
    fake.otherwise(listing('call_loop_more'));
    const client = await server.client('looping');
    const turn = await send(client, 'list my tasks');

    expect(turn.assistantMessage.status).toBe('COMPLETE');
    expect(turn.response).toContain('more than 3 rounds of tool calls');
    expect(fake.requests).toHaveLength(3);
    expect(await toolCallsOf(turn.conversation.id)).toEqual(
      ['call_loop_1', 'call_loop_2', 'call_loop_3'].map((id) =>
        expect.objectContaining({
          message_id: turn.assistantMessage.id,
          call_id: id,
          name: 'list_tasks',
          arguments: {},
          result: { tasks: [] },
          is_error: false,
        }),
      ),
    );
    expect((await messagesOf(turn.conversation.id))[1]).toMatchObject({
      status: 'complete',
      content: turn.response,
      model: 'fake-model',
      total_tokens: 45,
    });
    // The last request carried the two earlier rounds, each call followed by its result.
    expect(
      sentMessages(2)
        .slice(2)
        .map((message) => message.tool_call_id ?? message.tool_calls?.[0]?.id),
    ).toEqual(['call_loop_1', 'call_loop_1', 'call_loop_2', 'call_loop_2']);
  });

  it('records malformed JSON arguments as an error, tells the model, and completes the turn', async () => {
    fake.script(
      toolCalls([{ id: 'call_bad_json', name: 'add_task', arguments: '{"title": "buy milk"' }]),
      reply('Sorry, I could not add that task.'),
    );
    const client = await server.client('bad-json');
    const turn = await send(client, 'add buy milk');

    expect(turn.response).toBe('Sorry, I could not add that task.');
    expect(turn.assistantMessage.status).toBe('COMPLETE');
    expect(turn.toolCalls).toEqual([
      expect.objectContaining({ callId: 'call_bad_json', name: 'add_task', arguments: '{"title": "buy milk"', isError: true }),
    ]);
    const [call] = await toolCallsOf(turn.conversation.id);
    expect(call).toEqual({
      message_id: turn.assistantMessage.id,
      call_id: 'call_bad_json',
      server: 'todo',
      name: 'add_task',
      arguments: '{"title": "buy milk"',
      result: { error: expect.stringMatching(/^Invalid tool arguments: not valid JSON/) },
      is_error: true,
    });
    expect(await rows('select count(*)::int as n from task where user_id = $1', ['bad-json'])).toEqual([{ n: 0 }]);
    expect(sentMessages(1).at(-1)).toEqual({
      role: 'tool',
      tool_call_id: 'call_bad_json',
      content: defined(call, 'the stored tool call').result.error,
    });
  });

  it('records a call of an unknown tool as an error, tells the model the tools it has, and completes the turn', async () => {
    fake.script(
      toolCalls([{ id: 'call_pizza', name: 'order_pizza', arguments: '{"size":"large"}' }]),
      reply('I cannot order pizza, but I can keep your todo list.'),
    );
    const client = await server.client('unknown-tool');
    const turn = await send(client, 'order a pizza');

    expect(turn.response).toBe('I cannot order pizza, but I can keep your todo list.');
    const [call] = await toolCallsOf(turn.conversation.id);
    expect(call).toEqual({
      message_id: turn.assistantMessage.id,
      call_id: 'call_pizza',
      server: 'unknown',
      name: 'order_pizza',
      arguments: { size: 'large' },
      result: { error: expect.stringMatching(/^Unknown tool "order_pizza"\. Available tools: .*add_task/) },
      is_error: true,
    });
    expect(sentMessages(1).at(-1)).toEqual({
      role: 'tool',
      tool_call_id: 'call_pizza',
      content: defined(call, 'the stored tool call').result.error,
    });
  });

  it('retries a 429 in the SDK and stores one reply', async () => {
    fake.script(httpError(429), reply('Done after a short wait.'));
    const client = await server.client('rate-limited');
    const turn = await send(client, 'hello');

    expect(turn.response).toBe('Done after a short wait.');
    expect(fake.requests).toHaveLength(2);
    expect(at(fake.requests, 1, 'the requests to the model').body).toEqual(at(fake.requests, 0, 'the requests to the model').body);
    expect((await messagesOf(turn.conversation.id)).map((m) => `${m.seq}:${m.role}:${m.status}`)).toEqual([
      '1:user:complete',
      '2:assistant:complete',
    ]);
  });

  it('answers UPSTREAM_ERROR when the model fails every time, keeps the user message and a failed reply, and a retry completes it in place', async () => {
    fake.script(reply('Hi.'));
    const client = await server.client('failing-model');
    const { conversation } = await send(client, 'hello');

    fake.otherwise(httpError(500));
    const input = { conversationId: conversation.id, message: 'add buy milk', clientMessageId: 'retry-after-500' };
    const failure = await gqlError(client, SEND, { input });
    expect(failure.code).toBe('UPSTREAM_ERROR');
    // One request and OPENAI_MAX_RETRIES retries, all by the SDK.
    expect(fake.requests).toHaveLength(1 + 1 + 2);
    expect(await messagesOf(conversation.id)).toEqual([
      expect.objectContaining({ seq: 1, role: 'user', status: 'complete' }),
      expect.objectContaining({ seq: 2, role: 'assistant', status: 'complete', content: 'Hi.' }),
      expect.objectContaining({ seq: 3, role: 'user', status: 'complete', content: 'add buy milk' }),
      {
        seq: 4,
        role: 'assistant',
        status: 'failed',
        content: 'The agent failed to answer.',
        model: null,
        prompt_tokens: null,
        completion_tokens: null,
        total_tokens: null,
      },
    ]);

    fake.reset();
    fake.script(reply('Now it works.', { usage: usage(8, 2) }));
    const retry = await send(client, input.message, conversation.id, { clientMessageId: input.clientMessageId });
    expect(retry.replayed).toBe(false);
    expect(retry.response).toBe('Now it works.');
    expect([retry.userMessage.seq, retry.assistantMessage.seq, retry.assistantMessage.status]).toEqual([3, 4, 'COMPLETE']);
    expect((await messagesOf(conversation.id)).slice(2)).toEqual([
      expect.objectContaining({ seq: 3, role: 'user', status: 'complete' }),
      {
        seq: 4,
        role: 'assistant',
        status: 'complete',
        content: 'Now it works.',
        model: 'fake-model',
        prompt_tokens: 8,
        completion_tokens: 2,
        total_tokens: 10,
      },
    ]);
    expect(await rows('select message_count, next_seq, turn_id from conversation where id = $1', [conversation.id])).toEqual([
      { message_count: 4, next_seq: 5, turn_id: null },
    ]);
    // The failed reply is not part of what the model reads.
    expect(sentMessages(0)).toEqual([
      { role: 'system', content: DEFAULT_SYSTEM_PROMPT },
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'Hi.' },
      { role: 'user', content: 'add buy milk' },
    ]);
  });

  it('replays earlier tool use on the next turn as assistant tool_calls followed by their tool results', async () => {
    fake.script(
      toolCalls([{ id: 'call_hist_1', name: 'add_task', arguments: '{"title":"call mom"}' }]),
      reply('Added “call mom”.'),
      reply('You added “call mom”.'),
    );
    const client = await server.client('history');
    const first = await send(client, 'add call mom');
    const second = await send(client, 'what did you add?', first.conversation.id);
    expect(second.response).toBe('You added “call mom”.');

    const [stored] = await toolCallsOf(first.conversation.id);
    const sent = sentMessages(2);
    expect(sent).toEqual([
      { role: 'system', content: DEFAULT_SYSTEM_PROMPT },
      { role: 'user', content: 'add call mom' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_hist_1', type: 'function', function: { name: 'add_task', arguments: '{"title":"call mom"}' } }],
      },
      { role: 'tool', tool_call_id: 'call_hist_1', content: expect.any(String) },
      { role: 'assistant', content: 'Added “call mom”.' },
      { role: 'user', content: 'what did you add?' },
    ]);
    expect(JSON.parse(defined(at(sent, 3, 'the messages sent').content, 'the content of the tool message'))).toEqual(
      defined(stored, 'the stored tool call').result,
    );
  });
});

describe('the turn deadline and the system prompt setting', () => {
  let strict: TestServer;

  beforeAll(async () => {
    strict = await startTestServer({ env: modelEnv({ TURN_DEADLINE: '1500', SYSTEM_PROMPT: 'You are a terse todo assistant.' }) });
  });

  afterAll(async () => {
    await strict?.close();
  });

  it('ends a turn whose answer is slower than TURN_DEADLINE with UPSTREAM_ERROR, and the conversation takes the next message', async () => {
    fake.script(reply('First answer.'));
    const client = await strict.client('slow-model');
    const { conversation } = await send(client, 'hello');

    fake.script(delayed(10_000, reply('Far too late.')));
    const failure = await gqlError(client, SEND, { input: { conversationId: conversation.id, message: 'are you there?' } });
    expect(failure.code).toBe('UPSTREAM_ERROR');
    expect(fake.requests).toHaveLength(2);

    fake.script(reply('Back again.'));
    const next = await send(client, 'hello again', conversation.id);
    expect([next.userMessage.seq, next.assistantMessage.seq, next.response]).toEqual([5, 6, 'Back again.']);
    const stored = await strictRows('select seq, role, status, content from message where conversation_id = $1 order by seq', [
      conversation.id,
    ]);
    expect(stored).toEqual([
      { seq: 1, role: 'user', status: 'complete', content: 'hello' },
      { seq: 2, role: 'assistant', status: 'complete', content: 'First answer.' },
      { seq: 3, role: 'user', status: 'complete', content: 'are you there?' },
      { seq: 4, role: 'assistant', status: 'failed', content: 'The agent failed to answer.' },
      { seq: 5, role: 'user', status: 'complete', content: 'hello again' },
      { seq: 6, role: 'assistant', status: 'complete', content: 'Back again.' },
    ]);
    // SYSTEM_PROMPT replaces the default one.
    expect(sentMessages(2)[0]).toEqual({ role: 'system', content: 'You are a terse todo assistant.' });
  });

  async function strictRows(sql: string, params: unknown[]) {
    const client = new pg.Client({ connectionString: strict.database.url });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows;
    } finally {
      await client.end();
    }
  }
});

describe('the system prompt of the configuration', () => {
  it('is SYSTEM_PROMPT, else the content of SYSTEM_PROMPT_FILE (read by loadConfig), else the default', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'system-prompt-'));
    try {
      const file = path.join(dir, 'prompt.txt');
      await writeFile(file, 'Prompt from a file.\n');
      const empty = path.join(dir, 'empty.txt');
      await writeFile(empty, ' \n');
      expect(loadConfig({ SYSTEM_PROMPT: 'Prompt text.' }).openai.systemPrompt).toBe('Prompt text.');
      expect(loadConfig({ SYSTEM_PROMPT_FILE: file }).openai.systemPrompt).toBe('Prompt from a file.\n');
      expect(loadConfig({}).openai.systemPrompt).toBe(DEFAULT_SYSTEM_PROMPT);
      expect(() => loadConfig({ SYSTEM_PROMPT: 'a', SYSTEM_PROMPT_FILE: file })).toThrow(
        'Set SYSTEM_PROMPT or SYSTEM_PROMPT_FILE, not both',
      );
      expect(() => loadConfig({ SYSTEM_PROMPT_FILE: path.join(dir, 'missing.txt') })).toThrow(/^SYSTEM_PROMPT_FILE: cannot read/);
      expect(() => loadConfig({ SYSTEM_PROMPT_FILE: empty })).toThrow(`SYSTEM_PROMPT_FILE: ${JSON.stringify(empty)} is empty`);
      // The agent's module hands on what the configuration loaded.
      expect(loadConfig({ SYSTEM_PROMPT_FILE: file }).openai.systemPrompt).toBe('Prompt from a file.\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
