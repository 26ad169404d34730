/**
 * The external MCP servers of `MCP_CONFIG`, shared by every turn of the process: the hub owns one
 * `McpConnection` per configured server, opens them all at start and closes them with the app.
 *
 * Holding connections across requests is the one exception to "servers hold no state": these are
 * caches of outside processes, identical on every instance, and losing them loses nothing.
 */
import type { Logger } from '../log.js';
import type { McpConfig } from './config.js';
import { type ConnectionSettings, McpConnection, type McpServerStatus } from './connection.js';
import type { ToolServer } from './toolbox.js';

export type McpHub = {
  /** The servers whose tools are offered, for `createToolBox`: prefixed, with their cached tools. */
  servers(): ToolServer[];
  /** Every configured server and how it is doing (`/readyz` shows their names, states and tool counts). */
  status(): McpServerStatus[];
  /** Stops reconnecting and closes every connection (stdio children are stopped). */
  close(): Promise<void>;
};

/** `ConnectionSettings`, each optional; the defaults are in `connectMcpServers`. */
export type McpHubOptions = Partial<ConnectionSettings>;

/**
 * Connects every server of `config` at the same time and resolves when each one is connected or
 * has failed (failures are logged on `log` and skipped). Never rejects for a server's failure.
 * Defaults: `connectTimeoutMs` 10 s, `reconnectDelayMs` 500 ms, `maxReconnectDelayMs` 30 s.
 * How a connection is made and kept is `McpConnection`'s.
 */
export async function connectMcpServers(config: McpConfig, log: Logger, options: McpHubOptions = {}): Promise<McpHub> {
  const settings: ConnectionSettings = {
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    reconnectDelayMs: options.reconnectDelayMs ?? 500,
    maxReconnectDelayMs: options.maxReconnectDelayMs ?? 30_000,
  };
  const connections = Object.entries(config.servers).map(
    ([name, server]) => new McpConnection(name, server, settings, log.child({ mcpServer: name })),
  );
  await Promise.all(connections.map((connection) => connection.start()));
  const connected = connections.filter((connection) => connection.state === 'connected');
  if (connections.length > 0) {
    log.info(
      { connected: connected.map((c) => c.name), skipped: connections.filter((c) => c.state === 'failed').map((c) => c.name) },
      'external MCP servers',
    );
  }

  return {
    servers: () =>
      connections.flatMap((connection) => {
        const client = connection.client;
        if (!client || (connection.state !== 'connected' && connection.state !== 'reconnecting')) return [];
        return [{ name: connection.name, client, prefixed: true, tools: connection.tools }];
      }),
    status: () => connections.map((connection) => connection.status()),
    async close() {
      await Promise.all(connections.map((connection) => connection.close()));
    },
  };
}
