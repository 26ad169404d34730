/**
 * External MCP servers from `MCP_CONFIG`: a real server this project did not write
 * (`@modelcontextprotocol/server-everything`, over stdio), a server that cannot start, and this
 * app's own `/mcp` reached over Streamable HTTP. Their tools are offered under `server__tool`
 * names, calls go through MCP and are recorded, a dead server is reconnected, and a malformed
 * config stops the server at start with what is wrong.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { taskStore } from '../src/db/stores/tasks.js';
import { createLogger } from '../src/log.js';
import { loadMcpConfig, parseMcpConfig } from '../src/mcp/config.js';
import type { McpServerStatus } from '../src/mcp/connection.js';
import { connectMcpServers, type McpHub } from '../src/mcp/hub.js';
import { createToolBox, type ToolLimits, type ToolServer } from '../src/mcp/toolbox.js';
import { connectTurnTools } from '../src/mcp/turn-tools.js';
import { defined } from './support/defined.js';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from './support/server.js';
import { until } from './support/wait.js';

const EVERYTHING = path.resolve('node_modules/@modelcontextprotocol/server-everything/dist/index.js');
const TODO_TOOLS = ['add_task', 'complete_task', 'delete_task', 'list_tasks', 'update_task'];
// Secrets of this process that a stdio child must never see.
const PARENT_SECRETS = {
  JWT_SECRET: 'parent-jwt-secret',
  OPENAI_API_KEY: 'sk-parent-key',
  DATABASE_URL: 'postgresql://parent:secret@db/app',
};

let dir: string;
let server: TestServer;
let everythingTools: McpTool[];
const savedEnv: Record<string, string | undefined> = {};
const closeAfter: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  for (const [key, value] of Object.entries(PARENT_SECRETS)) {
    savedEnv[key] = process.env[key];
    process.env[key] = value;
  }
  dir = await mkdtemp(path.join(tmpdir(), 'mcp-external-'));
  const config = path.join(dir, 'mcp.json');
  await writeJson(config, {
    mcpServers: {
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: { GREETING: 'hello from mcp.json' } },
      missing: { command: path.join(dir, 'no-such-mcp-server') },
    },
  });
  server = await startTestServer({ env: { MCP_CONFIG: config } });
  everythingTools = await listDirectly();
});

afterAll(async () => {
  await Promise.all(closeAfter.map((thing) => thing.close()));
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  for (const [key, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

// Private: server-everything's own tool list, asked by a client of our own, to compare with.
async function listDirectly(): Promise<McpTool[]> {
  const client = new Client({ name: 'mcp-external-test', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' }));
  try {
    return (await client.listTools()).tools;
  } finally {
    await client.close();
  }
}

/** The tool limits of the server's configuration, as the app gives them to every tool box. */
const toolLimits = (): ToolLimits => ({
  timeoutMs: server.config.limits.toolTimeoutMs,
  maxResultBytes: server.config.limits.toolResultMaxBytes,
});

/** The tool box a turn of `userId` gets: the todo server plus the app's shared external servers. */
async function turnTools(userId: string, shared: ToolServer[] = server.app.mcp.servers()) {
  const turnTools = await connectTurnTools({
    tasks: taskStore(server.app.orm.em.fork()),
    todo: {},
    shared: () => shared,
    limits: toolLimits(),
  });
  closeAfter.push(turnTools);
  return turnTools.open(userId);
}

/** The status of the hub's server `name`. */
function statusOf(hub: McpHub, name: string): McpServerStatus {
  return defined(
    hub.status().find((status) => status.name === name),
    `the status of ${name}`,
  );
}

/** A logger whose JSON lines are kept in `lines`. */
function memoryLogger() {
  const lines: { level: number; msg: string; mcpServer?: string; err?: { message: string; code?: unknown } }[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

describe('external MCP servers from MCP_CONFIG', () => {
  it('lists every tool in Query.tools: the todo tools, then each of server-everything’s under "everything__<tool>"', async () => {
    const client = await server.client('ivy');
    const { tools } = await client.request<{
      tools: { server: string; name: string; description: string; inputSchema: Record<string, unknown> }[];
    }>(`{ tools { server name description inputSchema } }`);
    expect(
      tools
        .filter((tool) => tool.server === 'todo')
        .map((tool) => tool.name)
        .sort(),
    ).toEqual(TODO_TOOLS);
    const external = tools.filter((tool) => tool.server !== 'todo');
    expect(external).toEqual(
      everythingTools.map((tool) => ({
        server: 'everything',
        name: `everything__${tool.name}`,
        description: tool.description ?? '',
        inputSchema: tool.inputSchema,
      })),
    );
    expect(external.find((tool) => tool.name === 'everything__echo')).toEqual({
      server: 'everything',
      name: 'everything__echo',
      description: 'Echoes back the input string',
      inputSchema: expect.objectContaining({
        type: 'object',
        properties: { message: expect.objectContaining({ type: 'string' }) },
        required: ['message'],
      }),
    });
  });

  it('skips a server that fails to start and keeps serving: its tools are simply not offered', async () => {
    expect(server.app.mcp.status().find((status) => status.name === 'missing')).toEqual({
      name: 'missing',
      transport: 'stdio',
      state: 'failed',
      tools: 0,
      error: expect.stringContaining('ENOENT'),
    });
    expect(server.app.mcp.servers().map((shared) => shared.name)).toEqual(['everything']);
  });

  it('shows each external server on /readyz by name, state and tool count only (no pid, no error text), and stays ready', async () => {
    const ready = await fetch(`${server.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([
      200,
      {
        status: 'ready',
        mcpServers: [
          { name: 'everything', state: 'connected', tools: everythingTools.length },
          { name: 'missing', state: 'failed', tools: 0 },
        ],
      },
    ]);
  });

  it('calls an external tool through MCP and records it like any other call', async () => {
    const tools = await turnTools('ivy');
    const outcome = await tools.call('everything__echo', '{"message": "hello over stdio"}', 'call_echo_1');
    expect(outcome).toEqual({ content: 'Echo: hello over stdio', structured: { text: 'Echo: hello over stdio' }, isError: false });
    expect(tools.calls).toEqual([
      {
        callId: 'call_echo_1',
        server: 'everything',
        name: 'everything__echo',
        arguments: { message: 'hello over stdio' },
        result: { text: 'Echo: hello over stdio' },
        isError: false,
        startedAt: expect.any(Date),
        durationMs: expect.any(Number),
      },
    ]);
    const sum = await tools.call('everything__get-sum', { a: 2, b: 3 });
    expect(sum).toMatchObject({ isError: false, content: expect.stringContaining('5') });
  });

  it('gives a stdio server its configured env over a minimal default, never this process’s secrets', async () => {
    const tools = await turnTools('ivy');
    const outcome = await tools.call('everything__get-env', {});
    expect(outcome.isError).toBe(false);
    const env = JSON.parse(outcome.content) as Record<string, string>;
    expect(env.GREETING).toBe('hello from mcp.json');
    expect(env.PATH).toBe(process.env.PATH);
    expect(Object.keys(env).filter((key) => !['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'GREETING'].includes(key))).toEqual([]);
    for (const secret of Object.values(PARENT_SECRETS)) expect(outcome.content).not.toContain(secret);
  });

  it('reconnects a server whose process died; a call during the outage is a recorded error, not a crash', async () => {
    const hub = server.app.mcp;
    const running = await turnTools('ivy');
    expect((await running.call('everything__echo', { message: 'before' })).isError).toBe(false);
    const { pid } = defined(
      hub.status().find((status) => status.name === 'everything'),
      'the status of everything',
    );
    expect(pid).toEqual(expect.any(Number));

    process.kill(defined(pid, 'the pid of everything'), 'SIGKILL');
    await until(() => statusOf(hub, 'everything').state !== 'connected', 'the hub to see everything drop');
    expect(statusOf(hub, 'everything')).toMatchObject({ state: 'reconnecting' });

    // A turn that was running and a turn that starts now: the tools are still offered; a call fails as data.
    const started = await turnTools('ivy');
    expect(started.list().map((tool) => tool.name)).toContain('everything__echo');
    for (const tools of [running, started]) {
      const outcome = await tools.call('everything__echo', { message: 'during' });
      expect(outcome).toMatchObject({ isError: true, content: expect.stringContaining('everything__echo') });
      expect(tools.calls.at(-1)).toMatchObject({
        server: 'everything',
        name: 'everything__echo',
        arguments: { message: 'during' },
        isError: true,
      });
    }

    await until(() => statusOf(hub, 'everything').state === 'connected', 'everything to be connected again');
    const after = statusOf(hub, 'everything');
    expect(after).toMatchObject({ state: 'connected', tools: everythingTools.length });
    expect(after.pid).not.toBe(pid);
    const later = await turnTools('ivy');
    expect(await later.call('everything__echo', { message: 'after' })).toMatchObject({ isError: false, content: 'Echo: after' });
  });

  it('connects to a Streamable HTTP server: this app’s own /mcp, with the bearer token in the configured headers', async () => {
    const token = await server.token('remy');
    const hub = await connectMcpServers(
      parseMcpConfig(
        { mcpServers: { remote: { url: `${server.url}/mcp`, headers: { Authorization: `Bearer ${token}` } } } },
        'test config',
      ),
      createLogger('silent'),
    );
    closeAfter.push(hub);
    expect(hub.status()).toEqual([{ name: 'remote', transport: 'http', state: 'connected', tools: 5 }]);

    const tools = await createToolBox(hub.servers(), toolLimits());
    expect(
      tools
        .list()
        .map((tool) => `${tool.server}/${tool.name}`)
        .sort(),
    ).toEqual(TODO_TOOLS.map((name) => `remote/remote__${name}`));
    const added = await tools.call('remote__add_task', { title: 'call the plumber' });
    expect(added).toMatchObject({ isError: false, structured: { status: 'created', title: 'call the plumber' } });
    expect(tools.calls).toEqual([expect.objectContaining({ server: 'remote', name: 'remote__add_task', isError: false })]);

    // The remote server acted as the token's user.
    const { tasks } = await (await server.client('remy')).request<{ tasks: { edges: { node: { title: string } }[] } }>(
      `{ tasks(first: 5) { edges { node { title } } } }`,
    );
    expect(tasks.edges.map((edge) => edge.node.title)).toEqual(['call the plumber']);
  });

  it('refreshes its cached tools when a server announces that they changed', async () => {
    // A stdio server of our own whose `grow` tool registers a new tool, which makes the SDK send
    // notifications/tools/list_changed.
    const sdk = (module: string) => pathToFileURL(path.resolve('node_modules/@modelcontextprotocol/sdk/dist/esm', module)).href;
    const script = path.join(dir, 'growing-server.mjs');
    await writeFile(
      script,
      `import { McpServer } from '${sdk('server/mcp.js')}';
import { StdioServerTransport } from '${sdk('server/stdio.js')}';
const server = new McpServer({ name: 'growing', version: '1.0.0' });
let grown = 0;
server.registerTool('grow', { description: 'Adds a tool' }, async () => {
  const name = 'leaf_' + ++grown;
  server.registerTool(name, { description: 'A grown tool' }, async () => ({ content: [{ type: 'text', text: 'I am ' + name }] }));
  return { content: [{ type: 'text', text: 'grew ' + name }] };
});
await server.connect(new StdioServerTransport());
`,
    );
    const hub = await connectMcpServers(
      parseMcpConfig({ mcpServers: { growing: { command: process.execPath, args: [script] } } }, 'test config'),
      createLogger('silent'),
    );
    closeAfter.push(hub);
    const first = await createToolBox(hub.servers(), toolLimits());
    expect(first.list().map((tool) => tool.name)).toEqual(['growing__grow']);

    expect(await first.call('growing__grow', {})).toMatchObject({ isError: false, content: 'grew leaf_1' });
    await until(() => statusOf(hub, 'growing').tools === 2, 'the hub to list the new tool of growing');
    const second = await createToolBox(hub.servers(), toolLimits());
    expect(second.list().map((tool) => tool.name)).toEqual(['growing__grow', 'growing__leaf_1']);
    expect(await second.call('growing__leaf_1', {})).toMatchObject({ isError: false, content: 'I am leaf_1' });
  });

  it('logs and skips servers that cannot be reached, and still connects the others', async () => {
    const { log, lines } = memoryLogger();
    const hub = await connectMcpServers(
      parseMcpConfig(
        {
          mcpServers: {
            missing: { command: path.join(dir, 'no-such-mcp-server') },
            locked: { url: `${server.url}/mcp`, headers: { Authorization: 'Bearer not-a-token' } },
            everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
          },
        },
        'test config',
      ),
      log,
    );
    closeAfter.push(hub);
    expect(hub.servers().map((shared) => shared.name)).toEqual(['everything']);
    expect(hub.status()).toEqual([
      { name: 'missing', transport: 'stdio', state: 'failed', tools: 0, error: expect.stringContaining('ENOENT') },
      { name: 'locked', transport: 'http', state: 'failed', tools: 0, error: expect.stringContaining('HTTP 401') },
      { name: 'everything', transport: 'stdio', state: 'connected', tools: everythingTools.length, pid: expect.any(Number) },
    ]);
    const failures = lines.filter((line) => line.msg.startsWith('external MCP server failed to start'));
    expect(failures.map((line) => [line.mcpServer, line.level, line.err?.code]).sort()).toEqual([
      ['locked', 40, 401],
      ['missing', 40, 'ENOENT'],
    ]);
  });
});

describe('MCP_CONFIG validation', () => {
  it('normalizes both kinds of entries, leaves out disabled ones and resolves a relative cwd from the file', async () => {
    const file = path.join(dir, 'valid.json');
    await writeJson(file, {
      mcpServers: {
        local: { command: 'node', args: ['server.js'], cwd: 'servers/local' },
        remote: { type: 'http', url: 'https://mcp.example.com/mcp' },
        off: { command: 'node', disabled: true },
      },
    });
    expect(await loadMcpConfig(file)).toEqual({
      servers: {
        local: { transport: 'stdio', command: 'node', args: ['server.js'], env: {}, cwd: path.join(dir, 'servers/local') },
        remote: { transport: 'http', url: 'https://mcp.example.com/mcp', headers: {} },
      },
    });
  });

  it.each([
    ['a file that is not JSON', '{"mcpServers": ', 'is not valid JSON'],
    ['no "mcpServers" object', { servers: {} }, 'mcpServers: Invalid input: expected record'],
    [
      'both command and url',
      { mcpServers: { x: { command: 'node', url: 'http://localhost/mcp' } } },
      'mcpServers.x: give either "command"',
    ],
    ['neither command nor url', { mcpServers: { x: { args: [] } } }, 'mcpServers.x: give either "command"'],
    [
      'args that are not a list of strings',
      { mcpServers: { x: { command: 'node', args: 'a b' } } },
      'mcpServers.x.args: Invalid input: expected array',
    ],
    [
      'an env value that is not a string',
      { mcpServers: { x: { command: 'node', env: { PORT: 8080 } } } },
      'mcpServers.x.env.PORT: Invalid input: expected string',
    ],
    [
      'a url that is not http(s)',
      { mcpServers: { x: { url: 'ftp://example.com/mcp' } } },
      'mcpServers.x.url: expected an http:// or https:// URL',
    ],
    [
      'the deprecated SSE transport',
      { mcpServers: { x: { type: 'sse', url: 'http://localhost/sse' } } },
      'mcpServers.x: the HTTP+SSE transport is deprecated',
    ],
    [
      'a server name that cannot prefix tool names',
      { mcpServers: { 'my server': { command: 'node' } } },
      'mcpServers.my server: a server name is 1 to 32',
    ],
    [
      'the name of the built-in server',
      { mcpServers: { todo: { command: 'node' } } },
      'mcpServers.todo: "todo" is the name of the built-in server',
    ],
  ])('rejects %s, naming the file and the place', async (_name, content, message) => {
    const file = path.join(dir, 'bad.json');
    await writeJson(file, content);
    const error = await loadMcpConfig(file).then(
      () => null,
      (failure: Error) => failure,
    );
    expect(error?.message).toContain(file);
    expect(error?.message).toContain(message);
  });

  it('lists every problem of a file at once', () => {
    const attempt = () => parseMcpConfig({ mcpServers: { a: { command: '' }, b: { url: 'nope' } } }, 'mcp.json');
    expect(attempt).toThrow(
      /Invalid MCP_CONFIG file mcp\.json:\n {2}mcpServers\.a\.command: .*\n {2}mcpServers\.b\.url: .*\nExpected the form/,
    );
  });

  it('stops the app at start, before the database is opened, for a malformed file', async () => {
    const file = path.join(dir, 'broken.json');
    await writeJson(file, { mcpServers: { x: { command: 42 } } });
    const config = loadConfig({
      NODE_ENV: 'test',
      // Never reached: the config file is read first.
      DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/never',
      JWT_SECRET: TEST_JWT_SECRET,
      MCP_CONFIG: file,
    });
    await expect(createApp(config, { log: createLogger('silent') })).rejects.toThrow(
      `Invalid MCP_CONFIG file ${file}:\n  mcpServers.x.command`,
    );
  });

  it('stops the app at start for a file that does not exist', async () => {
    const file = path.join(dir, 'absent.json');
    const config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/never',
      JWT_SECRET: TEST_JWT_SECRET,
      MCP_CONFIG: file,
    });
    await expect(createApp(config, { log: createLogger('silent') })).rejects.toThrow(`MCP_CONFIG: cannot read ${file}`);
  });
});
