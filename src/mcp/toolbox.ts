/**
 * The tools of one turn, reached as an MCP client through the protocol.
 *
 * Each server is an MCP `Client` already connected and shared by the process: the built-in todo
 * server over an in-memory transport pair, and the external servers of `MCP_CONFIG`. A tool box
 * is cheap: a map of names for one turn, nothing to open or close. Every call is timed, bounded (timeout, result size) and recorded, and every failure
 * (bad JSON arguments, unknown tool, a tool's error, a timeout, a broken transport) becomes an
 * `isError` outcome the agent can read, never an exception. Each call is a `tool.call` span
 * (server, name, isError; no arguments or result), a no-op unless `tracing.ts` started an SDK.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { StartingCall, ToolBox, ToolCallRecord, ToolInfo, ToolOutcome } from '../agent/types.js';

type Route = { info: ToolInfo; client: Client; remoteName: string; meta?: Record<string, unknown> };

/** Connects an MCP client to `server` over an in-memory transport pair. */
export async function connectInMemory(server: McpServer, clientName = 'stateless-chat'): Promise<Client> {
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const client = new Client({ name: clientName, version: '1.0.0' });
  await client.connect(clientTransport);
  return client;
}

/** An MCP server as a tool box sees it. */
export type ToolServer = {
  name: string;
  client: Client;
  /** Offer its tools as `name__tool` (external servers), so that no two servers' names collide. */
  prefixed: boolean;
  /** Request metadata sent with every call (`_meta`): who the call acts for, set by the caller, never by the model. */
  meta?: Record<string, unknown>;
  /** Its tools, when the caller keeps them; listed through the client otherwise. */
  tools?: McpTool[];
};

export type ToolLimits = {
  /** A call that takes longer is abandoned and recorded as an error. */
  timeoutMs: number;
  /** Results longer than this (UTF-8 bytes) are cut, with a visible marker, for the model and the record alike. */
  maxResultBytes: number;
};

const MAX_TOOL_NAME = 64;

/**
 * Builds a tool box over connected MCP servers; see `ToolServer` for how names are offered.
 * `limits` come from the configuration (`TOOL_TIMEOUT`, `TOOL_RESULT_MAX_BYTES`).
 * `onCall` hears of each call as soon as it completes (the turn stores it at once), `onStart` as it
 * starts (its arguments parsed when they could be).
 */
export async function createToolBox(
  servers: ToolServer[],
  limits: ToolLimits,
  onCall?: (call: ToolCallRecord) => void,
  onStart?: (call: StartingCall) => void,
): Promise<ToolBox> {
  const routes = new Map<string, Route>();
  for (const server of servers) {
    const tools = server.tools ?? (await server.client.listTools()).tools;
    for (const tool of tools) {
      const name = server.prefixed ? prefixedName(server.name, tool.name) : tool.name;
      if (routes.has(name)) continue;
      routes.set(name, {
        info: { server: server.name, name, description: tool.description ?? '', inputSchema: tool.inputSchema as Record<string, unknown> },
        client: server.client,
        remoteName: tool.name,
        ...(server.meta ? { meta: server.meta } : {}),
      });
    }
  }
  const calls: ToolCallRecord[] = [];
  // Agents without provider ids (the offline one) get ids unique across turns, as replayed history needs.
  const idPrefix = `call_${crypto.randomUUID().slice(0, 8)}_`;
  let generatedIds = 0;

  // Private: one call, its failure as data (`isError`), recorded and told to `onCall` as it completes.
  async function callTool(name: string, args: unknown, callId: string): Promise<ToolOutcome> {
    const startedAt = new Date();
    const route = routes.get(name);
    const record = (argsStored: unknown, outcome: ToolOutcome): ToolOutcome => {
      const capped = capOutcome(outcome, limits.maxResultBytes);
      const record: ToolCallRecord = {
        callId,
        server: route?.info.server ?? 'unknown',
        name,
        arguments: argsStored,
        result: capped.structured,
        isError: capped.isError,
        startedAt,
        durationMs: Date.now() - startedAt.getTime(),
      };
      calls.push(record);
      onCall?.(record);
      return capped;
    };
    const parsed = parseArguments(args);
    onStart?.({ callId, server: route?.info.server ?? 'unknown', name, arguments: parsed.ok ? parsed.value : args });
    if (!parsed.ok) return record(args, errorOutcome(`Invalid tool arguments: ${parsed.error}`));
    if (!route) return record(parsed.value, errorOutcome(`Unknown tool "${name}". Available tools: ${[...routes.keys()].join(', ')}.`));
    try {
      const params = { name: route.remoteName, arguments: parsed.value, ...(route.meta ? { _meta: route.meta } : {}) };
      const result = await route.client.callTool(params, undefined, {
        timeout: limits.timeoutMs,
      });
      const text = textOf(result.content);
      const isError = result.isError === true;
      const structured = result.structuredContent ?? (isError ? { error: text } : { text });
      return record(parsed.value, { content: text, structured, isError });
    } catch (error) {
      return record(parsed.value, errorOutcome(`Tool "${name}" failed: ${(error as Error).message}`));
    }
  }

  return {
    calls,
    list: () => [...routes.values()].map((route) => route.info),
    call(name, args, callId = `${idPrefix}${++generatedIds}`) {
      const server = routes.get(name)?.info.server ?? 'unknown';
      return tracer.startActiveSpan('tool.call', { attributes: { 'tool.server': server, 'tool.name': name } }, async (span) => {
        try {
          const outcome = await callTool(name, args, callId);
          span.setAttribute('tool.is_error', outcome.isError);
          if (outcome.isError) span.setStatus({ code: SpanStatusCode.ERROR });
          return outcome;
        } finally {
          span.end();
        }
      });
    },
  };
}

/** The tracer of the tool calls' spans (a no-op until an SDK is registered: `tracing.ts`). */
const tracer = trace.getTracer('stateless-chat');

/** `server__tool`, reduced to the characters and length that model APIs accept for function names. */
export function prefixedName(server: string, tool: string): string {
  return `${server}__${tool}`.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, MAX_TOOL_NAME);
}

// Private: the same cut for what the model reads and what is stored, so the record is faithful.
function capOutcome(outcome: ToolOutcome, maxBytes: number): ToolOutcome {
  const textBytes = Buffer.byteLength(outcome.content);
  const structuredText = JSON.stringify(outcome.structured) ?? 'null';
  const structuredBytes = Buffer.byteLength(structuredText);
  if (textBytes <= maxBytes && structuredBytes <= maxBytes) return outcome;
  const content = textBytes > maxBytes ? truncate(outcome.content, maxBytes) : outcome.content;
  const structured =
    structuredBytes > maxBytes
      ? { truncated: true, originalBytes: structuredBytes, text: truncate(structuredText, maxBytes) }
      : outcome.structured;
  return { ...outcome, content, structured };
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes (on a character boundary) and says how much was left out. */
export function truncate(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text);
  if (bytes.length <= maxBytes) return text;
  const kept = bytes
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
  return `${kept}\n…[truncated: ${bytes.length - Buffer.byteLength(kept)} of ${bytes.length} bytes omitted]`;
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
  return content.map((part: { type?: string; text?: string }) => (part.type === 'text' ? part.text : `[${part.type} content]`)).join('\n');
}

function errorOutcome(message: string): ToolOutcome {
  return { content: message, structured: { error: message }, isError: true };
}
