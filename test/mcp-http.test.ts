/**
 * `/mcp`: the built-in todo server for outside MCP clients, driven by the SDK's own `Client` over
 * Streamable HTTP, with the bearer auth of GraphQL and the token's user as the acting user.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defined } from './support/defined.js';
import { postMcp } from './support/http.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await server?.close();
});

/** An MCP client connected to `/mcp` with `authorization` (none when undefined). */
async function connect(authorization?: string): Promise<Client> {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers } });
  const client = new Client({ name: 'mcp-http-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function connectAs(userId: string): Promise<Client> {
  return connect(`Bearer ${await server.token(userId)}`);
}

const TASKS = /* GraphQL */ `{ tasks(first: 10) { edges { node { id title completed } } } }`;
type Tasks = { tasks: { edges: { node: { id: string; title: string; completed: boolean } }[] } };

type RpcBody = { jsonrpc: string; id: unknown; result?: unknown; error?: { code: number; message: string; data?: unknown } };

/** A raw JSON-RPC POST to `/mcp`, as a client without an SDK sends it. */
async function post(body: unknown, headers: Record<string, string> = {}) {
  const answer = await postMcp(server, body, { headers });
  return { status: answer.status, headers: answer.headers, body: defined(answer.body, `a JSON answer, got: ${answer.text}`) as RpcBody };
}

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1.0.0' } },
};

describe('/mcp with a valid token', () => {
  it('offers the five todo tools', async () => {
    const client = await connectAs('mona');
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(['add_task', 'complete_task', 'delete_task', 'list_tasks', 'update_task']);
    expect(client.getServerVersion()?.name).toBe('todo');
  });

  it("adds and lists tasks as the token's user: GraphQL shows them to that user and to no one else", async () => {
    const client = await connectAs('mona');
    const added = await client.callTool({ name: 'add_task', arguments: { title: 'water the plants' } });
    expect(added.isError).toBeFalsy();
    expect(added.structuredContent).toEqual({ task_id: expect.any(String), status: 'created', title: 'water the plants' });
    const taskId = (added.structuredContent as { task_id: string }).task_id;

    const listed = await client.callTool({ name: 'list_tasks', arguments: {} });
    expect(listed.structuredContent).toEqual({
      tasks: [{ task_id: taskId, title: 'water the plants', description: null, completed: false, created_at: expect.any(String) }],
    });

    const mona = await (await server.client('mona')).request<Tasks>(TASKS);
    expect(mona.tasks.edges.map((edge) => edge.node)).toEqual([{ id: taskId, title: 'water the plants', completed: false }]);
    const nils = await (await server.client('nils')).request<Tasks>(TASKS);
    expect(nils.tasks.edges).toEqual([]);
    const nilsOverMcp = await (await connectAs('nils')).callTool({ name: 'list_tasks', arguments: {} });
    expect(nilsOverMcp.structuredContent).toEqual({ tasks: [] });
  });

  it('keeps nothing between requests: each request is answered without a session id', async () => {
    const response = await post(INITIALIZE, { authorization: `Bearer ${await server.token('mona')}` });
    expect(response.status).toBe(200);
    expect(response.headers.get('mcp-session-id')).toBeNull();
    expect(response.body).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'todo' } } });
  });
});

describe('/mcp without a valid token', () => {
  it.each([
    ['no token', undefined],
    ['a token that is not a JWT', 'Bearer not-a-token'],
    ['a token signed with another secret', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtb25hIn0.c2lnbmF0dXJlLW9mLWFub3RoZXIta2V5'],
  ])('refuses the SDK client with 401 for %s', async (_name, authorization) => {
    const failure = await connect(authorization).then(
      () => new Error('expected the connection to fail'),
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(StreamableHTTPError);
    expect((failure as StreamableHTTPError).code).toBe(401);
  });

  it('answers a raw request with 401, a JSON-RPC error body and a Bearer challenge', async () => {
    const absent = await post(INITIALIZE);
    expect(absent.status).toBe(401);
    expect(absent.headers.get('www-authenticate')).toBe('Bearer realm="mcp"');
    expect(absent.body).toEqual({
      jsonrpc: '2.0',
      error: { code: -32001, message: expect.stringContaining('Missing bearer token'), data: { code: 'UNAUTHENTICATED' } },
      id: null,
    });

    const wrong = await post(INITIALIZE, { authorization: 'Bearer not-a-token' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="mcp", error="invalid_token"');
    expect(wrong.body.error).toMatchObject({ code: -32001, message: expect.stringContaining('Invalid bearer token') });
  });

  it('stores nothing for a refused call', async () => {
    const call = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'add_task', arguments: { title: 'sneaky' } } };
    expect((await post(call, { authorization: 'Bearer not-a-token' })).status).toBe(401);
    const { rows } = await server.db.query(`select count(*)::int as n from task where title = 'sneaky'`);
    expect(rows[0].n).toBe(0);
  });
});

describe('/mcp methods other than POST', () => {
  it.each(['GET', 'DELETE'])('answers %s with 405 and a JSON-RPC error: stateless mode has no sessions', async (method) => {
    const response = await fetch(`${server.url}/mcp`, { method, headers: { authorization: `Bearer ${await server.token('mona')}` } });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
    expect(await response.json()).toEqual({
      jsonrpc: '2.0',
      error: { code: -32000, message: expect.stringContaining('Method not allowed') },
      id: null,
    });
  });

  it('answers a body that is not JSON with a JSON-RPC parse error', async () => {
    const response = await post('{"jsonrpc": ', { authorization: `Bearer ${await server.token('mona')}` });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ jsonrpc: '2.0', error: { code: -32700 }, id: null });
  });
});
