/**
 * The tools of one turn, reached as an MCP client through the protocol.
 *
 * Each server is an MCP `Client` already connected (the built-in todo server over an in-memory
 * transport pair made for this turn). Every call is timed and recorded, and every failure (bad
 * JSON arguments, unknown tool, a tool's error, a broken transport) becomes an `isError`
 * outcome the agent can read, never an exception.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { ToolBox, ToolCallRecord, ToolInfo, ToolOutcome } from './types.js';

type Route = { info: ToolInfo; client: Client; remoteName: string };

/** Connects an MCP client to `server` over an in-memory transport pair. */
export async function connectInMemory(server: McpServer, clientName = 'stateless-chat'): Promise<Client> {
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const client = new Client({ name: clientName, version: '1.0.0' });
  await client.connect(clientTransport);
  return client;
}

/**
 * Builds a tool box over connected MCP clients. Tool names are offered as the server names them;
 * a later server's tool whose name is taken is offered as `server__name`.
 */
export async function createToolBox(servers: { name: string; client: Client }[]): Promise<ToolBox & { close(): Promise<void> }> {
  const routes = new Map<string, Route>();
  for (const { name: server, client } of servers) {
    const { tools } = await client.listTools();
    for (const tool of tools) {
      const name = routes.has(tool.name) ? `${server}__${tool.name}` : tool.name;
      routes.set(name, {
        info: { server, name, description: tool.description ?? '', inputSchema: tool.inputSchema as Record<string, unknown> },
        client,
        remoteName: tool.name,
      });
    }
  }
  const calls: ToolCallRecord[] = [];
  let generatedIds = 0;

  return {
    calls,
    list: () => [...routes.values()].map((route) => route.info),
    async call(name, args, callId = `call_${++generatedIds}`) {
      const startedAt = new Date();
      const route = routes.get(name);
      const record = (argsStored: unknown, outcome: ToolOutcome): ToolOutcome => {
        calls.push({
          callId,
          server: route?.info.server ?? 'unknown',
          name,
          arguments: argsStored,
          result: outcome.structured,
          isError: outcome.isError,
          startedAt,
          durationMs: Date.now() - startedAt.getTime(),
        });
        return outcome;
      };
      const parsed = parseArguments(args);
      if (!parsed.ok) return record(args, errorOutcome(`Invalid tool arguments: ${parsed.error}`));
      if (!route) return record(parsed.value, errorOutcome(`Unknown tool "${name}". Available tools: ${[...routes.keys()].join(', ')}.`));
      try {
        const result = await route.client.callTool({ name: route.remoteName, arguments: parsed.value });
        const text = textOf(result.content);
        const isError = result.isError === true;
        const structured = result.structuredContent ?? (isError ? { error: text } : { text });
        return record(parsed.value, { content: text, structured, isError });
      } catch (error) {
        return record(parsed.value, errorOutcome(`Tool "${name}" failed: ${(error as Error).message}`));
      }
    },
    async close() {
      await Promise.allSettled(servers.map(({ client }) => client.close()));
    },
  };
}

// Private: the model sends arguments as JSON text; agents in code may pass an object.
function parseArguments(args: unknown): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  let value = args;
  if (typeof args === 'string') {
    if (args.trim() === '') return { ok: true, value: {} };
    try {
      value = JSON.parse(args);
    } catch (error) {
      return { ok: false, error: `not valid JSON (${(error as Error).message})` };
    }
  }
  if (value === undefined || value === null) return { ok: true, value: {} };
  if (typeof value !== 'object' || Array.isArray(value)) return { ok: false, error: 'expected a JSON object' };
  return { ok: true, value: value as Record<string, unknown> };
}

function textOf(content: unknown): string {
  if (!Array.isArray(content)) return '';
  return content
    .map((part: { type?: string; text?: string }) => (part.type === 'text' ? part.text : `[${part.type} content]`))
    .join('\n');
}

function errorOutcome(message: string): ToolOutcome {
  return { content: message, structured: { error: message }, isError: true };
}
