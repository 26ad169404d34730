/**
 * Helpers of the security suite (`test/security/`): raw HTTP requests that show the status and
 * body exactly as a client sees them (graphql-request hides both behind exceptions), tokens with
 * any claims at all, and what a user has stored (row counts and a checksum of every row), so a
 * test can say "nothing was stored" and "nothing of bob's changed".
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { type JWTPayload, SignJWT } from 'jose';
import type pg from 'pg';
import { expect } from 'vitest';
import { defined, first } from './defined.js';
import { TEST_JWT_SECRET, type TestServer } from './server.js';

/** The tables that hold user data; every one has a `user_id` column. */
export const USER_TABLES = ['conversation', 'message', 'tool_call', 'task'] as const;
export type UserTable = (typeof USER_TABLES)[number];

export type GraphQLErrorBody = { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> & { code?: string } };
/** A GraphQL answer; `D` is the shape of `data` the test selected (by default: not looked into). */
export type GraphQLBody<D = Record<string, unknown>> = { data?: D | null; errors?: GraphQLErrorBody[] };

/** A connection as the tests select it: only the cursors of its edges. */
export type Cursored = { edges: { cursor: string }[] };

/** One valid cursor of each connection, made by the server for `user` (who has a conversation with a tool call and a task). */
export type OwnCursors = Record<'conversation' | 'message' | 'toolCall' | 'task', string>;

export async function ownCursors(server: TestServer, user: string, conversationId: string): Promise<OwnCursors> {
  const mine = await gql<{ conversations: Cursored; tasks: Cursored; conversation: { messages: Cursored; toolCalls: Cursored } }>(
    server,
    user,
    `query ($id: ID!) { conversations(first: 1) { edges { cursor } } tasks(first: 1) { edges { cursor } }
      conversation(id: $id) { messages(first: 1) { edges { cursor } } toolCalls(first: 1) { edges { cursor } } } }`,
    { id: conversationId },
  );
  const data = defined(mine.body?.data, 'the data of the cursor query');
  return {
    conversation: first(data.conversations.edges, 'a conversation edge').cursor,
    task: first(data.tasks.edges, 'a task edge').cursor,
    message: first(data.conversation.messages.edges, 'a message edge').cursor,
    toolCall: first(data.conversation.toolCalls.edges, 'a tool call edge').cursor,
  };
}

/** The data of `{ viewer { id } }`. */
export type ViewerData = { viewer?: { id: string } | null };

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

/** A user id no other test uses: tests never share state through a user. */
export const uniqueUser = (name: string): string => `${name}-${randomUUID().slice(0, 8)}`;

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

/**
 * The answer was not a failure of the server: not HTTP 5xx, not INTERNAL_SERVER_ERROR, and a
 * body a client can read. The message shows the answer, so a failure says what came back.
 */
export function expectNoServerError(answer: Answer, what = 'the request'): void {
  const shown = `${what} -> HTTP ${answer.status} ${answer.text.slice(0, 600)}`;
  expect(answer.status, shown).toBeLessThan(500);
  expect(answer.text, shown).not.toContain('INTERNAL_SERVER_ERROR');
}

/** Words of PostgreSQL's and the driver's own errors, which must never reach a client. */
export const RAW_DATABASE_TEXT =
  /invalid byte sequence|invalid message format|operator does not exist|invalid input syntax|value out of range for type|timestamp out of range|date\/time field value out of range|unsupported Unicode escape|violates|syntax error at|relation "|column "|SQLSTATE|postgres|MikroORM|DriverException/i;

/**
 * A token for whatever claims are given, signed HS256 with the test secret: `sub` may be an
 * object, `exp` a string, `iat` in the future. Nothing is added (no `iat`, no `exp`) unless given.
 */
export function signClaims(claims: Record<string, unknown>, secret: string = TEST_JWT_SECRET): Promise<string> {
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

/** Seconds since the epoch, as JWT claims count time. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** How many rows of each user table belong to `userId`. */
export async function countRows(db: pg.Client, userId: string): Promise<Record<UserTable, number>> {
  const counts = {} as Record<UserTable, number>;
  for (const table of USER_TABLES) {
    const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from ${table} where user_id = $1`, [userId]);
    counts[table] = first(rows, `the count of ${table} rows`).n;
  }
  return counts;
}

/** Nothing of `userId` is stored in any user table. */
export async function expectNothingStored(db: pg.Client, userId: string, what = 'a refused request'): Promise<void> {
  expect(await countRows(db, userId), `${what} stored rows for ${JSON.stringify(userId)}`).toEqual({
    conversation: 0,
    message: 0,
    tool_call: 0,
    task: 0,
  });
}

/**
 * An md5 of every row of `userId` in each user table (`md5(string_agg(t::text, ',' order by id))`):
 * equal before and after means not one column of one row changed, and no row came or went.
 */
export async function rowsChecksum(db: pg.Client, userId: string): Promise<Record<UserTable, string | null>> {
  const sums = {} as Record<UserTable, string | null>;
  for (const table of USER_TABLES) {
    const { rows } = await db.query<{ sum: string | null }>(
      `select md5(string_agg(t::text, ',' order by id)) as sum from ${table} t where user_id = $1`,
      [userId],
    );
    sums[table] = first(rows, `the checksum of ${table} rows`).sum;
  }
  return sums;
}

/** The fast-check seed of this run: `FC_SEED` when set (to replay a failure), else a fixed one. */
export function fuzzSeed(fallback: number): number {
  const given = process.env.FC_SEED;
  return given === undefined || given === '' ? fallback : Number(given);
}

/**
 * Sends `head` (the request line and headers, `\r\n`-separated, without the blank line) and
 * `body` as raw bytes over one connection, for what `fetch` refuses to send: a NUL or bytes that
 * are not UTF-8 in a header. Returns the status of the answer (0 when the connection closed
 * without one) and its raw text.
 */
export function rawRequest(url: string, head: Buffer, body: Buffer): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.write(Buffer.concat([head, Buffer.from(`\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`), body]));
  });
}
