/**
 * Streaming through whole turns: HTTP -> GraphQL -> turn -> agent -> (the real `openai` SDK ->
 * the fake's Server-Sent Events) -> MCP todo tools -> PostgreSQL. The server's agent is wrapped to
 * record what it gives to `onText`, the seam later parts will publish from; each test states that
 * the pieces concatenate to exactly the stored reply, or how a broken stream fails the turn.
 */
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OfflineAgent } from '../src/agent/offline.js';
import { OpenAiAgent } from '../src/agent/openai-agent.js';
import type { Agent, AgentInput, AgentReply } from '../src/agent/types.js';
import { createLogger } from '../src/log.js';
import { cutStream, type FakeOpenAi, reply, startFakeOpenAi, toolCalls, usage } from './support/fake-openai.js';
import { gqlError, SEND, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

/** Runs `inner` (changed per test) and keeps every piece of text it gives. */
class RecordingAgent implements Agent {
  readonly name = 'recording';
  inner: Agent = new OfflineAgent();
  pieces: string[] = [];

  run(input: AgentInput): Promise<AgentReply> {
    return this.inner.run({
      ...input,
      onText: (piece) => {
        this.pieces.push(piece);
        input.onText?.(piece);
      },
    });
  }
}

let fake: FakeOpenAi;
let server: TestServer;
let db: pg.Client;
const agent = new RecordingAgent();

const openAiAgent = () =>
  new OpenAiAgent({
    apiKey: 'test-key',
    baseURL: `${fake.url}/v1`,
    model: 'fake-model',
    maxRetries: 2,
    maxToolRounds: 3,
    contextTokens: 10_000,
    systemPrompt: 'You manage todo lists.',
    titleModel: null,
    log: createLogger('silent'),
  });

beforeAll(async () => {
  fake = await startFakeOpenAi();
  server = await startTestServer({ agent });
  db = server.db;
});

afterAll(async () => {
  await server?.close();
  await fake?.close();
});

beforeEach(() => {
  fake.reset();
  agent.pieces = [];
  agent.inner = new OfflineAgent();
});

type MessageRow = { seq: number; status: string; content: string | null; model: string | null; total_tokens: number | null };

async function replyRow(conversationId: string, seq: number): Promise<MessageRow | undefined> {
  const result = await db.query<MessageRow>(
    'select seq, status, content, model, total_tokens from message where conversation_id = $1 and seq = $2',
    [conversationId, seq],
  );
  return result.rows[0];
}

describe('streaming turns', () => {
  it('the offline agent gives its reply in a few pieces that concatenate to exactly the stored reply', async () => {
    const client = await server.client('offline-stream');
    const turn = await send(client, 'add buy oat milk');

    expect(turn.response).toBe('Added “buy oat milk” to your tasks.');
    expect(agent.pieces.length).toBeGreaterThanOrEqual(3);
    expect(agent.pieces.join('')).toBe(turn.response);
    expect(await replyRow(turn.conversation.id, 2)).toEqual({
      seq: 2,
      status: 'complete',
      content: 'Added “buy oat milk” to your tasks.',
      model: 'offline',
      total_tokens: null,
    });
  });

  it('a streamed model turn with text beside its tool calls: the pieces concatenate to exactly the stored reply, usage from the final chunks', async () => {
    agent.inner = openAiAgent();
    fake.script(
      toolCalls([{ id: 'call_add', name: 'add_task', arguments: '{"title":"buy bread"}' }], {
        content: 'Adding it now.',
        usage: usage(20, 6),
      }),
      reply('Done: “buy bread” is on your list.', { usage: usage(40, 9) }),
    );
    const client = await server.client('model-stream');
    const turn = await send(client, 'please add buy bread');

    const stored = 'Adding it now.\n\nDone: “buy bread” is on your list.';
    expect(turn.response).toBe(stored);
    expect(agent.pieces.length).toBeGreaterThan(4);
    expect(agent.pieces.join('')).toBe(stored);
    expect(turn.toolCalls.map(({ name, arguments: args, isError }) => ({ name, args, isError }))).toEqual([
      { name: 'add_task', args: { title: 'buy bread' }, isError: false },
    ]);
    expect(await replyRow(turn.conversation.id, 2)).toEqual({
      seq: 2,
      status: 'complete',
      content: stored,
      model: 'fake-model',
      total_tokens: 26 + 49,
    });
    // Both model calls streamed, asking for the usage chunk.
    expect(fake.requests.map(({ body }) => [body.stream, body.stream_options])).toEqual([
      [true, { include_usage: true }],
      [true, { include_usage: true }],
    ]);
    // The step's text is sent back beside its tool call, as the model wrote it.
    expect(fake.requests[1]?.body.messages.at(-2)).toMatchObject({ role: 'assistant', content: 'Adding it now.' });
  });

  it('a server that sends no usage chunk leaves the reply’s usage null', async () => {
    agent.inner = openAiAgent();
    fake.script(reply('No usage here.', { usage: null }));
    const client = await server.client('model-no-usage');
    const turn = await send(client, 'hello');
    expect(agent.pieces.join('')).toBe('No usage here.');
    expect(await replyRow(turn.conversation.id, 2)).toMatchObject({ content: 'No usage here.', total_tokens: null });
  });

  it('a stream cut off in the middle fails the turn with UPSTREAM_ERROR and a failed reply, as an HTTP error does', async () => {
    agent.inner = openAiAgent();
    fake.script(cutStream('This answer never gets to its end.'));
    const client = await server.client('model-cut');
    const failure = await gqlError(client, SEND, { input: { message: 'hello', clientMessageId: 'cut-1' } });

    expect(failure.code).toBe('UPSTREAM_ERROR');
    // The SDK retries a request, not a stream that broke after it began.
    expect(fake.requests).toHaveLength(1);
    // Pieces given before the break (the fake sends two of three pieces, cut mid-word) were provisional: the reply stored is the failed one.
    expect(agent.pieces.join('')).toBe('This answer never gets t');
    const conversations = await db.query<{ id: string }>(
      `select c.id from conversation c join message m on m.conversation_id = c.id where m.client_message_id = 'cut-1'`,
    );
    const conversationId = conversations.rows[0]?.id ?? '';
    expect(await replyRow(conversationId, 2)).toEqual({
      seq: 2,
      status: 'failed',
      content: 'The agent failed to answer.',
      model: null,
      total_tokens: null,
    });
  });
});
