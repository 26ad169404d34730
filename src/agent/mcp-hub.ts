/**
 * The external MCP servers of `MCP_CONFIG`, shared by every turn of the process.
 *
 * The file has the common form `{"mcpServers": {"<name>": {"command", "args"?, "env"?, "cwd"?} |
 * {"url", "headers"?}}}`: a `command` is started as a child process spoken to over stdio, a `url` is
 * reached over Streamable HTTP. A malformed file stops the server at start with what is wrong.
 *
 * Each server is connected once, at start, all of them at the same time; a server that cannot be
 * reached then is logged and skipped for the life of the process, never fatal. Its tool list is
 * kept in memory (refreshed when the server sends `notifications/tools/list_changed`), so that a
 * turn lists tools without a round trip. A connection that drops (the child exits, the remote
 * forgets our session) is reconnected in the background, with a delay that doubles up to a bound;
 * meanwhile its tools stay offered and a call to one is an `isError` outcome of the tool box.
 *
 * Holding connections across requests is the one exception to "servers hold no state": these are
 * caches of outside processes, identical on every instance, and losing them loses nothing.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { PassThrough } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { TODO_SERVER_NAME } from '../mcp/todo-server.js';
import type { ToolServer } from '../mcp/toolbox.js';

/** A server started as a child process and spoken to over its stdin/stdout. */
export type StdioServerConfig = {
  transport: 'stdio';
  command: string;
  args: string[];
  /** Variables given to the child on top of a minimal safe environment (see `connectMcpServers`). */
  env: Record<string, string>;
  /** Working directory of the child; a relative one is taken from the config file's directory. */
  cwd?: string;
};

/** A server reached over Streamable HTTP at `url`, with `headers` (e.g. `Authorization`) on every request. */
export type HttpServerConfig = { transport: 'http'; url: string; headers: Record<string, string> };

export type McpServerConfig = StdioServerConfig | HttpServerConfig;

/** The parsed `MCP_CONFIG`: servers by name (the name prefixes their tools: `name__tool`). */
export type McpConfig = { servers: Record<string, McpServerConfig> };

/**
 * `connecting` at start; `connected`; `reconnecting` after a drop (tools still offered, calls
 * fail); `failed` when the first connection failed (skipped until restart); `closed` with the hub.
 */
export type McpServerState = 'connecting' | 'connected' | 'reconnecting' | 'failed' | 'closed';

export type McpServerStatus = {
  name: string;
  transport: McpServerConfig['transport'];
  state: McpServerState;
  /** Tools in the cached list. */
  tools: number;
  /** The child's process id, for stdio servers while connected. */
  pid?: number;
  /** Why the last connection attempt failed or the connection dropped. */
  error?: string;
};

export type McpHubEvents = {
  /** A server was connected (at start or again after a drop) and its tools listed. */
  connected: [name: string];
  /** A connected server's connection dropped; a reconnection is scheduled. */
  disconnected: [name: string, reason: string];
  /** A server announced a change of its tools and the cached list was replaced. */
  toolsChanged: [name: string];
};

export type McpHub = {
  /** The servers whose tools are offered, for `createToolBox`: prefixed, shared (not owned), with their cached tools. */
  servers(): ToolServer[];
  /** Every configured server and how it is doing. */
  status(): McpServerStatus[];
  /** Connection and tool list changes, for health checks and for tests that wait for one. */
  readonly events: EventEmitter<McpHubEvents>;
  /** Stops reconnecting and closes every connection (stdio children are stopped). */
  close(): Promise<void>;
};

export type McpHubOptions = {
  /** Deadline of one connection attempt: start, initialize and list the tools. Default 10 s. */
  connectTimeoutMs?: number;
  /** Delay before the first reconnection attempt after a drop, doubled after each failure. Default 500 ms. */
  reconnectDelayMs?: number;
  /** Upper bound of the delay between reconnection attempts. Default 30 s. */
  maxReconnectDelayMs?: number;
};

const CLIENT_INFO = { name: 'stateless-chat', version: '1.0.0' };
const SERVER_NAME = /^[A-Za-z0-9_-]{1,32}$/;
const HTTP_TYPES = ['http', 'streamable-http', 'streamableHttp'] as const;
const EXPECTED_FORM = '{"mcpServers": {"<name>": {"command", "args"?, "env"?, "cwd"?} | {"url", "headers"?}}}';
// A server that keeps answering with a next cursor must not keep us listing forever.
const MAX_TOOL_PAGES = 100;
const STDERR_TAIL_LINES = 20;

const stringMap = z.record(z.string(), z.string());
const stdioEntry = z.object({
  type: z.literal('stdio').optional(),
  command: z.string().trim().min(1),
  args: z.array(z.string()).default([]),
  env: stringMap.default({}),
  cwd: z.string().min(1).optional(),
});
const httpEntry = z.object({
  type: z.enum(HTTP_TYPES).optional(),
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  headers: stringMap.default({}),
});

/** Reads and validates the `MCP_CONFIG` file at `file`; throws one error listing every problem. */
export async function loadMcpConfig(file: string): Promise<McpConfig> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    throw new Error(`MCP_CONFIG: cannot read ${absolute}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`MCP_CONFIG: ${absolute} is not valid JSON: ${(error as Error).message}`);
  }
  return parseMcpConfig(raw, absolute, path.dirname(absolute));
}

/**
 * Validates a config in the `mcpServers` form (`source` names it in errors; relative `cwd`s are
 * taken from `baseDir`, default the process's working directory). Entries with `"disabled": true`
 * are left out. Throws one error listing every problem; values are not echoed, as `env` and
 * `headers` hold secrets.
 */
export function parseMcpConfig(raw: unknown, source: string, baseDir = process.cwd()): McpConfig {
  const top = z.object({ mcpServers: z.record(z.string(), z.unknown()) }).safeParse(raw);
  if (!top.success) throw invalidConfig(source, issuesOf(top.error, []));
  const servers: Record<string, McpServerConfig> = {};
  const problems: string[] = [];
  for (const [name, entry] of Object.entries(top.data.mcpServers)) {
    const at = ['mcpServers', name];
    const problem = (message: string) => problems.push(`${at.join('.')}: ${message}`);
    if (!SERVER_NAME.test(name)) {
      problem('a server name is 1 to 32 letters, digits, "_" or "-", since it prefixes the names of its tools');
      continue;
    }
    if (name === TODO_SERVER_NAME) {
      problem(`"${TODO_SERVER_NAME}" is the name of the built-in server; choose another`);
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problem('expected an object with "command" (a stdio server) or "url" (a Streamable HTTP server)');
      continue;
    }
    const fields = entry as Record<string, unknown>;
    if (fields.disabled === true) continue;
    if (fields.type === 'sse') {
      problem('the HTTP+SSE transport is deprecated and not supported; give the server\'s Streamable HTTP endpoint');
      continue;
    }
    if (('command' in fields) === ('url' in fields)) {
      problem('give either "command" (a stdio server) or "url" (a Streamable HTTP server), exactly one of them');
      continue;
    }
    if ('command' in fields) {
      const parsed = stdioEntry.safeParse(fields);
      if (!parsed.success) problems.push(...issuesOf(parsed.error, at));
      else {
        const { command, args, env, cwd } = parsed.data;
        servers[name] = { transport: 'stdio', command, args, env, cwd: cwd === undefined ? undefined : path.resolve(baseDir, cwd) };
      }
    } else {
      const parsed = httpEntry.safeParse(fields);
      if (!parsed.success) problems.push(...issuesOf(parsed.error, at));
      else servers[name] = { transport: 'http', url: parsed.data.url, headers: parsed.data.headers };
    }
  }
  if (problems.length > 0) throw invalidConfig(source, problems);
  return { servers };
}

/**
 * Connects every server of `config` at the same time and resolves when each one is connected or
 * has failed (failures are logged on `log` and skipped). Never rejects for a server's failure.
 *
 * A stdio child gets a minimal environment (the SDK's `getDefaultEnvironment()`: HOME, LOGNAME,
 * PATH, SHELL, TERM, USER) with its entry's `env` over it, never this process's environment: that
 * holds JWT_SECRET, OPENAI_API_KEY and DATABASE_URL, and an external server is someone else's code.
 * Its stderr goes to `log` at debug level; the last lines are quoted when it fails.
 */
export async function connectMcpServers(config: McpConfig, log: Logger, options: McpHubOptions = {}): Promise<McpHub> {
  const settings = {
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    reconnectDelayMs: options.reconnectDelayMs ?? 500,
    maxReconnectDelayMs: options.maxReconnectDelayMs ?? 30_000,
  };
  const events = new EventEmitter<McpHubEvents>();
  const connections = Object.entries(config.servers).map(
    ([name, server]) => new Connection(name, server, settings, log.child({ mcpServer: name }), events),
  );
  await Promise.all(connections.map((connection) => connection.start()));
  const connected = connections.filter((connection) => connection.state === 'connected');
  if (connections.length > 0) {
    log.info({ connected: connected.map((c) => c.name), skipped: connections.filter((c) => c.state === 'failed').map((c) => c.name) }, 'external MCP servers');
  }

  return {
    events,
    servers: () =>
      connections.flatMap((connection) => {
        const client = connection.client;
        if (!client || (connection.state !== 'connected' && connection.state !== 'reconnecting')) return [];
        return [{ name: connection.name, client, prefixed: true, owned: false, tools: connection.tools }];
      }),
    status: () => connections.map((connection) => connection.status()),
    async close() {
      await Promise.all(connections.map((connection) => connection.close()));
      events.removeAllListeners();
    },
  };
}

type Settings = Required<McpHubOptions>;

// Private: one configured server, its current client and cached tools, and its reconnection loop.
// A new `Client` per connection, as the SDK asks: a closed one cannot be connected again.
class Connection {
  state: McpServerState = 'connecting';
  client: Client | undefined;
  tools: McpTool[] = [];
  private pid: number | undefined;
  private error: string | undefined;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  // The last lines a stdio child wrote to stderr: why it failed is usually there.
  private stderrTail: string[] = [];

  constructor(
    readonly name: string,
    private readonly config: McpServerConfig,
    private readonly settings: Settings,
    private readonly log: Logger,
    private readonly events: EventEmitter<McpHubEvents>,
  ) {}

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (error) {
      if (this.state === 'closed') return;
      this.state = 'failed';
      this.error = this.withStderr(reasonOf(error));
      this.log.warn(
        { err: error, ...this.describe(), ...this.stderr() },
        'external MCP server failed to start; its tools are not offered until a restart',
      );
    }
  }

  status(): McpServerStatus {
    return {
      name: this.name,
      transport: this.config.transport,
      state: this.state,
      tools: this.tools.length,
      ...(this.pid !== undefined && this.state === 'connected' ? { pid: this.pid } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }

  async close(): Promise<void> {
    this.state = 'closed';
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => undefined);
  }

  // Private: one attempt. On success the new client becomes current; on failure it is closed and the error thrown.
  private async connect(): Promise<void> {
    const stderrTail: string[] = [];
    this.stderrTail = stderrTail;
    const transport = this.transport(stderrTail);
    const client = new Client(CLIENT_INFO, {
      capabilities: {},
      listChanged: { tools: { autoRefresh: false, onChanged: () => void this.refreshTools(client) } },
    });
    client.onclose = () => this.dropped(client);
    client.onerror = (error) => {
      // While connecting, the failed attempt is logged once, with its reason; no need to say it twice.
      this.log[client === this.client ? 'warn' : 'debug']({ err: error }, 'external MCP server transport error');
      // A stateful remote that restarted forgets our session and answers 404: start a new one.
      const sessionLost = error instanceof StreamableHTTPError && error.code === 404;
      if (sessionLost && transport instanceof StreamableHTTPClientTransport && transport.sessionId !== undefined) void client.close();
    };
    try {
      await client.connect(transport, { timeout: this.settings.connectTimeoutMs });
      const tools = await listAllTools(client, this.settings.connectTimeoutMs);
      if (this.state === 'closed' || client.transport === undefined) throw new Error('the connection closed while it was being opened');
      this.client = client;
      this.tools = tools;
      this.pid = transport instanceof StdioClientTransport ? (transport.pid ?? undefined) : undefined;
      this.state = 'connected';
      this.error = undefined;
      this.failures = 0;
      this.log.info({ tools: tools.length, pid: this.pid }, 'external MCP server connected');
      this.events.emit('connected', this.name);
    } catch (error) {
      await client.close().catch(() => undefined);
      throw error;
    }
  }

  private transport(stderrTail: string[]): StdioClientTransport | StreamableHTTPClientTransport {
    if (this.config.transport === 'http') {
      return new StreamableHTTPClientTransport(new URL(this.config.url), { requestInit: { headers: this.config.headers } });
    }
    const transport = new StdioClientTransport({
      command: this.config.command,
      args: this.config.args,
      env: { ...getDefaultEnvironment(), ...this.config.env },
      cwd: this.config.cwd,
      stderr: 'pipe',
    });
    // Read it always: an unread pipe fills up and blocks the child.
    createInterface({ input: transport.stderr as PassThrough }).on('line', (line) => {
      this.log.debug({ stderr: line }, 'external MCP server stderr');
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
    });
    return transport;
  }

  private async refreshTools(client: Client): Promise<void> {
    try {
      const tools = await listAllTools(client, this.settings.connectTimeoutMs);
      if (client !== this.client) return;
      this.tools = tools;
      this.log.info({ tools: tools.length }, 'external MCP server changed its tools');
      this.events.emit('toolsChanged', this.name);
    } catch (error) {
      this.log.warn({ err: error }, 'external MCP server announced new tools but listing them failed; keeping the old list');
    }
  }

  // Private: the current connection closed by itself (not by us, not a failed attempt): reconnect.
  private dropped(client: Client): void {
    if (client !== this.client || this.state !== 'connected') return;
    this.state = 'reconnecting';
    this.error = this.withStderr('the connection closed');
    this.log.warn({ ...this.stderr() }, 'external MCP server disconnected; reconnecting');
    this.events.emit('disconnected', this.name, this.error);
    this.schedule();
  }

  private schedule(): void {
    const delay = Math.min(this.settings.maxReconnectDelayMs, this.settings.reconnectDelayMs * 2 ** this.failures);
    // Unref'd: a pending reconnection must not keep a stopping process alive.
    this.timer = setTimeout(() => void this.reconnect(), delay).unref();
  }

  private async reconnect(): Promise<void> {
    if (this.state !== 'reconnecting') return;
    try {
      await this.connect();
    } catch (error) {
      if (this.state !== 'reconnecting') return;
      this.failures += 1;
      this.error = this.withStderr(reasonOf(error));
      this.log.warn({ err: error, attempt: this.failures, ...this.stderr() }, 'external MCP server reconnection failed; trying again');
      this.schedule();
    }
  }

  private stderr(): { stderr?: string[] } {
    return this.stderrTail.length > 0 ? { stderr: [...this.stderrTail] } : {};
  }

  private withStderr(reason: string): string {
    const last = this.stderrTail.at(-1);
    return last === undefined ? reason : `${reason} (last stderr line: ${last})`;
  }

  // Private: where the server is, for logs; not its args or query string, which may carry keys.
  private describe(): Record<string, unknown> {
    if (this.config.transport === 'stdio') return { command: this.config.command };
    const url = new URL(this.config.url);
    return { url: `${url.origin}${url.pathname}` };
  }
}

async function listAllTools(client: Client, timeout: number): Promise<McpTool[]> {
  const tools: McpTool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_TOOL_PAGES; page++) {
    const result = await client.listTools(cursor === undefined ? undefined : { cursor }, { timeout });
    tools.push(...result.tools);
    cursor = result.nextCursor;
    if (cursor === undefined) break;
  }
  return tools;
}

// Private: an HTTP failure's message lacks its status, and fetch's ("fetch failed") its cause; say them.
function reasonOf(error: unknown): string {
  if (error instanceof StreamableHTTPError) return `HTTP ${error.code}: ${error.message}`;
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message;
}

function issuesOf(error: z.ZodError, at: string[]): string[] {
  return error.issues.map((issue) => `${[...at, ...issue.path.map(String)].join('.') || '(top level)'}: ${issue.message}`);
}

function invalidConfig(source: string, problems: string[]): Error {
  return new Error(`Invalid MCP_CONFIG file ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}\nExpected the form ${EXPECTED_FORM}.`);
}
