/**
 * Helpers of the security suite (`test/security/`), on top of the raw requests of `http.ts`: tokens with
 * any claims at all, and what a user has stored (row counts and a checksum of every row), so a
 * test can say "nothing was stored" and "nothing of bob's changed".
 */
import { connect } from 'node:net';
import { type JWTPayload, SignJWT } from 'jose';
import type pg from 'pg';
import { expect } from 'vitest';
import { defined, first } from './defined.js';
import { type Answer, gql } from './http.js';
import { TEST_JWT_SECRET, type TestServer } from './server.js';

/** The tables that hold user data; every one has a `user_id` column. */
export const USER_TABLES = ['conversation', 'message', 'tool_call', 'task'] as const;
export type UserTable = (typeof USER_TABLES)[number];

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
