/**
 * One external MCP server of `MCP_CONFIG` as this process holds it: its current client, its cached
 * tool list and the reconnection loop that keeps it.
 *
 * A connection is opened once, at start; a server that cannot be reached then is `failed` and
 * skipped for the life of the process, never fatal. The tool list is kept in memory (refreshed when
 * the server sends `notifications/tools/list_changed`), so that a turn lists tools without a round
 * trip. A connection that drops (the child exits, the remote forgets our session) is reconnected in
 * the background, with a delay that doubles up to a bound; meanwhile its tools stay offered and a
 * call to one is an `isError` outcome of the tool box.
 */
import { createInterface } from 'node:readline';
import type { PassThrough } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { backoff } from '../backoff.js';
import type { Logger } from '../log.js';
import type { McpServerConfig } from './config.js';

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

export type ConnectionSettings = {
  /** Deadline of one connection attempt: start, initialize and list the tools. */
  connectTimeoutMs: number;
  /** Delay before the first reconnection attempt after a drop, doubled after each failure. */
  reconnectDelayMs: number;
  /** Upper bound of the delay between reconnection attempts. */
  maxReconnectDelayMs: number;
};

const CLIENT_INFO = { name: 'stateless-chat', version: '1.0.0' };
// A server that keeps answering with a next cursor must not keep us listing forever.
const MAX_TOOL_PAGES = 100;
const STDERR_TAIL_LINES = 20;

/**
 * One configured server, its current client and cached tools, and its reconnection loop. A new
 * `Client` per connection attempt, as the SDK asks: a closed one cannot be connected again.
 *
 * A stdio child gets a minimal environment (the SDK's `getDefaultEnvironment()`: HOME, LOGNAME,
 * PATH, SHELL, TERM, USER) with its entry's `env` over it, never this process's environment: that
 * holds JWT_SECRET, OPENAI_API_KEY and DATABASE_URL, and an external server is someone else's code.
 * Its stderr goes to `log` at debug level; the last lines are quoted when it fails.
 */
export class McpConnection {
  // Read by the hub, changed only here.
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
    private readonly settings: ConnectionSettings,
    private readonly log: Logger,
  ) {}

  /** The first connection attempt; a failure leaves the connection `failed`, logged, never thrown. */
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

  /** How it is doing, for `McpHub.status()`. */
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

  /** Stops reconnecting and closes the client (a stdio child is stopped). */
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
    this.schedule();
  }

  private schedule(): void {
    const delay = backoff({ baseMs: this.settings.reconnectDelayMs, maxMs: this.settings.maxReconnectDelayMs })(this.failures);
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
