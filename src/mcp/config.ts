/**
 * The `MCP_CONFIG` file: which external MCP servers to connect, read and validated once at start.
 *
 * The file has the common form `{"mcpServers": {"<name>": {"command", "args"?, "env"?, "cwd"?} |
 * {"url", "headers"?}}}`: a `command` is started as a child process spoken to over stdio, a `url` is
 * reached over Streamable HTTP. One zod schema describes the whole file, so that a malformed file
 * stops the server at start with every problem listed at once, each at its place in the file.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { TODO_SERVER_NAME } from './todo-server.js';

/** A server started as a child process and spoken to over its stdin/stdout. */
export type StdioServerConfig = {
  transport: 'stdio';
  command: string;
  args: string[];
  /** Variables given to the child on top of a minimal safe environment (see `McpConnection`). */
  env: Record<string, string>;
  /** Working directory of the child; a relative one is taken from the config file's directory. */
  cwd?: string;
};

/** A server reached over Streamable HTTP at `url`, with `headers` (e.g. `Authorization`) on every request. */
export type HttpServerConfig = { transport: 'http'; url: string; headers: Record<string, string> };

export type McpServerConfig = StdioServerConfig | HttpServerConfig;

/** The parsed `MCP_CONFIG`: servers by name (the name prefixes their tools: `name__tool`). */
export type McpConfig = { servers: Record<string, McpServerConfig> };

const SERVER_NAME = /^[A-Za-z0-9_-]{1,32}$/;
const HTTP_TYPES = ['http', 'streamable-http', 'streamableHttp'] as const;
const EXPECTED_FORM = '{"mcpServers": {"<name>": {"command", "args"?, "env"?, "cwd"?} | {"url", "headers"?}}}';

const stringMap = z.record(z.string(), z.string());

// A name that fails here leaves its entry unread: one problem per server is enough to fix it.
const serverName = z
  .string()
  .regex(SERVER_NAME, 'a server name is 1 to 32 letters, digits, "_" or "-", since it prefixes the names of its tools')
  .refine((name) => name !== TODO_SERVER_NAME, `"${TODO_SERVER_NAME}" is the name of the built-in server; choose another`);

const stdioServer = z
  .object({
    transport: z.literal('stdio'),
    type: z.literal('stdio').optional(),
    command: z.string().trim().min(1),
    args: z.array(z.string()).default([]),
    env: stringMap.default({}),
    cwd: z.string().min(1).optional(),
  })
  .transform(({ command, args, env, cwd }): StdioServerConfig => ({ transport: 'stdio', command, args, env, cwd }));

const httpServer = z
  .object({
    transport: z.literal('http'),
    type: z.enum(HTTP_TYPES).optional(),
    url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
    headers: stringMap.default({}),
  })
  .transform(({ url, headers }): HttpServerConfig => ({ transport: 'http', url, headers }));

// One entry: first what decides its kind (disabled, a retired transport, command or url), then the
// fields of that kind. `null` is an entry left out with `"disabled": true`.
const serverEntry = z
  .looseObject({}, { error: 'expected an object with "command" (a stdio server) or "url" (a Streamable HTTP server)' })
  .transform((fields, ctx) => {
    if (fields.disabled === true) return null;
    if (fields.type === 'sse') {
      ctx.addIssue({
        code: 'custom',
        message: "the HTTP+SSE transport is deprecated and not supported; give the server's Streamable HTTP endpoint",
      });
      return z.NEVER;
    }
    if ('command' in fields === 'url' in fields) {
      ctx.addIssue({
        code: 'custom',
        message: 'give either "command" (a stdio server) or "url" (a Streamable HTTP server), exactly one of them',
      });
      return z.NEVER;
    }
    return { ...fields, transport: 'command' in fields ? 'stdio' : 'http' };
  })
  .pipe(z.discriminatedUnion('transport', [stdioServer, httpServer]).nullable());

/** The whole `MCP_CONFIG` file, entries normalized; relative `cwd`s are resolved by `parseMcpConfig`. */
const configFile = z.object({ mcpServers: z.record(serverName, serverEntry) });

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
  const parsed = configFile.safeParse(raw);
  if (!parsed.success) throw invalidConfig(source, parsed.error.issues.map(problemOf));
  const servers: Record<string, McpServerConfig> = {};
  for (const [name, server] of Object.entries(parsed.data.mcpServers)) {
    if (server === null) continue;
    servers[name] =
      server.transport === 'stdio' && server.cwd !== undefined ? { ...server, cwd: path.resolve(baseDir, server.cwd) } : server;
  }
  return { servers };
}

// Private: "where: what", the place as a dotted path; a bad server name says why, not zod's
// generic "Invalid key in record".
function problemOf(issue: z.core.$ZodIssue): string {
  const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
  return `${issue.path.map(String).join('.') || '(top level)'}: ${message}`;
}

function invalidConfig(source: string, problems: string[]): Error {
  return new Error(`Invalid MCP_CONFIG file ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}\nExpected the form ${EXPECTED_FORM}.`);
}
