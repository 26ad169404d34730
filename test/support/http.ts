/**
 * Raw HTTP requests to a test server, which show the status and the body exactly as a client sees
 * them (graphql-request hides both behind exceptions): GraphQL, the REST route and `/mcp`, as a
 * user (a token the server signs), with a given token, or anonymously.
 */
import { expect } from 'vitest';
import { defined } from './defined.js';
import type { TestServer } from './server.js';

export type GraphQLErrorBody = { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> & { code?: string } };
/** A GraphQL answer; `D` is the shape of `data` the test selected (by default: not looked into). */
export type GraphQLBody<D = Record<string, unknown>> = { data?: D | null; errors?: GraphQLErrorBody[] };

/** A JSON-RPC result of `/mcp` (tools/call or tools/list), read loosely: each test checks what it needs. */
export type McpResult = { isError?: boolean; content?: { type: string; text?: string }[]; structuredContent?: unknown; tools?: unknown[] };

/** A JSON answer of the REST route, read loosely: a turn or an error. */
export type RestBody = {
  conversation_id?: string;
  response?: string;
  tool_calls?: unknown[];
  error?: { code?: string; message?: string };
};

/** An HTTP answer: status, headers, the raw text and, when it is JSON, the parsed body. */
export type Answer<T = unknown> = { status: number; headers: Headers; text: string; body: T | undefined; ms: number };

/** Sends `init` to `url` and reads the whole answer (never throws on an HTTP error status). */
export async function request<T = unknown>(url: string, init: RequestInit): Promise<Answer<T>> {
  const started = performance.now();
  const response = await fetch(url, init);
  const text = await response.text();
  let body: T | undefined;
  try {
    body = JSON.parse(text) as T;
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body, ms: performance.now() - started };
}

export type As = { user?: string; token?: string; headers?: Record<string, string> };

async function authHeaders(server: TestServer, as: As): Promise<Record<string, string>> {
  const token = as.token ?? (as.user !== undefined ? await server.token(as.user) : undefined);
  return { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...as.headers };
}

/**
 * POSTs a GraphQL request to `/graphql` as `as.user` (a token signed by the server), with
 * `as.token`, or anonymously. `body` is sent as it is when it is a string (batches, broken JSON).
 */
export async function postGraphQL<D = Record<string, unknown>>(
  server: TestServer,
  body: string | { query: string; variables?: Record<string, unknown>; operationName?: string } | unknown[],
  as: As = {},
): Promise<Answer<GraphQLBody<D>>> {
  return request<GraphQLBody<D>>(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await authHeaders(server, as)) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** `postGraphQL` for the usual case: a query, its variables, a user. */
export function gql<D = Record<string, unknown>>(
  server: TestServer,
  user: string | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<Answer<GraphQLBody<D>>> {
  return postGraphQL<D>(server, { query, variables }, user === null ? {} : { user });
}

/** POSTs a JSON body to the REST route `POST /api/:userId/chat`. */
export async function postRest(server: TestServer, pathUser: string, body: unknown, as: As = {}): Promise<Answer<RestBody>> {
  return request(`${server.url}/api/${encodeURIComponent(pathUser)}/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await authHeaders(server, as)) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export type RpcAnswer = Answer<{
  jsonrpc: string;
  id: unknown;
  result?: McpResult;
  error?: { code: number; message: string; data?: unknown };
}>;

/** POSTs one JSON-RPC message to `/mcp`, as a client without an SDK sends it. */
export async function postMcp(server: TestServer, message: unknown, as: As = {}): Promise<RpcAnswer> {
  return request(`${server.url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(await authHeaders(server, as)) },
    body: typeof message === 'string' ? message : JSON.stringify(message),
  });
}

let rpcId = 0;
/** Calls the `/mcp` tool `name` with `args` (any JSON, well-formed or not) as `as`. */
export function callMcpTool(server: TestServer, name: string, args: unknown, as: As): Promise<RpcAnswer> {
  return postMcp(server, { jsonrpc: '2.0', id: ++rpcId, method: 'tools/call', params: { name, arguments: args } }, as);
}

/** The `extensions.code` of every error of a GraphQL answer, in order. */
export const codes = (answer: Answer<GraphQLBody>): string[] => (answer.body?.errors ?? []).map((error) => String(error.extensions?.code));

/** The first error of a GraphQL answer; fails the test when there is none. */
export function firstError(answer: Answer<GraphQLBody>): GraphQLErrorBody {
  const error = answer.body?.errors?.[0];
  expect(error, `expected a GraphQL error, got HTTP ${answer.status}: ${answer.text.slice(0, 500)}`).toBeDefined();
  return defined(error, 'the first GraphQL error');
}
