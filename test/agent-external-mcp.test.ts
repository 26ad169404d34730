/**
 * The whole chain with a tool this project did not write: a scripted model (through the real
 * `openai` SDK) calls a tool of `@modelcontextprotocol/server-everything`, started over stdio from
 * MCP_CONFIG; the call and its result are stored and visible through GraphQL.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at, first } from './support/defined.js';
import { type FakeOpenAi, reply, startFakeOpenAi, toolCalls, usage } from './support/fake-openai.js';
import { send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

let fake: FakeOpenAi;
let server: TestServer;
let db: pg.Client;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'stateless-chat-mcp-config-'));
  const mcpConfig = path.join(dir, 'mcp.json');
  const everything = path.resolve('node_modules/@modelcontextprotocol/server-everything/dist/index.js');
  await writeFile(mcpConfig, JSON.stringify({ mcpServers: { everything: { command: process.execPath, args: [everything, 'stdio'] } } }));
  fake = await startFakeOpenAi();
  server = await startTestServer({
    env: {
      OPENAI_API_KEY: 'test-key',
      OPENAI_BASE_URL: `${fake.url}/v1`,
      OPENAI_MODEL: 'fake-model',
      TITLE_MODEL: 'off',
      MCP_CONFIG: mcpConfig,
    },
  });
  db = server.db;
});

afterAll(async () => {
  await server?.close();
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a model calling an external MCP server from MCP_CONFIG', () => {
  it('runs the call through MCP, stores it with its result, and shows it through GraphQL', async () => {
    fake.script(
      toolCalls([{ id: 'call_sum_1', name: 'everything__get-sum', arguments: '{"a": 19, "b": 23}' }], { usage: usage(50, 10) }),
      reply('19 + 23 = 42.', { usage: usage(70, 6) }),
    );
    const client = await server.client('external');
    const turn = await send(client, 'what is 19 + 23? use your tools');

    expect(turn.response).toBe('19 + 23 = 42.');
    expect(turn.toolCalls).toEqual([
      expect.objectContaining({
        callId: 'call_sum_1',
        server: 'everything',
        name: 'everything__get-sum',
        arguments: { a: 19, b: 23 },
        isError: false,
      }),
    ]);
    expect(JSON.stringify(first(turn.toolCalls, 'the tool calls of the turn').result)).toContain('42');

    // The model was offered the external tool and was sent its result.
    const offered =
      at(fake.requests, 0, 'the requests to the model').body.tools?.map((tool: { function: { name: string } }) => tool.function.name) ?? [];
    expect(offered).toEqual(expect.arrayContaining(['add_task', 'everything__get-sum', 'everything__echo']));
    const toolMessage = at(fake.requests, 1, 'the requests to the model').body.messages.find((m: { role: string }) => m.role === 'tool');
    expect(toolMessage).toMatchObject({ role: 'tool', tool_call_id: 'call_sum_1' });
    expect(String(toolMessage?.content)).toContain('42');

    const stored = await db.query(
      'select message_id, call_id, server, name, arguments, is_error from tool_call where conversation_id = $1',
      [turn.conversation.id],
    );
    expect(stored.rows).toEqual([
      {
        message_id: turn.assistantMessage.id,
        call_id: 'call_sum_1',
        server: 'everything',
        name: 'everything__get-sum',
        arguments: { a: 19, b: 23 },
        is_error: false,
      },
    ]);

    const browsed = await client.request<{
      conversation: {
        usage: { totalTokens: number };
        toolCalls: { edges: { node: { server: string; name: string; message: { seq: number } } }[] };
      };
    }>(
      `query ($id: ID!) { conversation(id: $id) { usage { totalTokens }
         toolCalls(first: 10, name: "everything__get-sum", isError: false) { edges { node { server name message { seq } } } } } }`,
      { id: turn.conversation.id },
    );
    expect(browsed.conversation.usage.totalTokens).toBe(136);
    expect(browsed.conversation.toolCalls.edges).toEqual([
      { node: { server: 'everything', name: 'everything__get-sum', message: { seq: 2 } } },
    ]);
    const filteredOut = await client.request<{ conversation: { toolCalls: { edges: unknown[] } } }>(
      `query ($id: ID!) { conversation(id: $id) { toolCalls(isError: true) { edges { cursor } } } }`,
      { id: turn.conversation.id },
    );
    expect(filteredOut.conversation.toolCalls.edges).toEqual([]);
  });
});
