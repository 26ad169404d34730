/**
 * Internal failures reach clients as INTERNAL_SERVER_ERROR, with no stack, SQL or table names;
 * request errors of GraphQL itself keep their own codes.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

async function post(body: unknown, userId = 'eve') {
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await server.token(userId)}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}

describe('errors', () => {
  it('masks a database failure as INTERNAL_SERVER_ERROR without SQL or stack', async () => {
    const db = new pg.Client({ connectionString: server.database.url });
    await db.connect();
    await db.query('alter table task rename to task_moved_away');
    try {
      const { text } = await post({ query: '{ tasks { edges { node { title } } } }' });
      const body = JSON.parse(text);
      expect(body.errors).toEqual([
        { message: 'Internal server error', locations: [{ line: 1, column: 3 }], path: ['tasks'], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
      ]);
      expect(text).not.toMatch(/select|task_moved_away|relation|stack|\.ts:/i);
    } finally {
      await db.query('alter table task_moved_away rename to task');
      await db.end();
    }
  });

  it('keeps GraphQL validation and variable errors with their own codes', async () => {
    const invalid = JSON.parse((await post({ query: '{ nope }' })).text);
    expect(invalid.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const badVariable = JSON.parse((await post({ query: 'query ($n: Int) { conversations(first: $n) { edges { cursor } } }', variables: { n: 'x' } })).text);
    expect(badVariable.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('answers a body that is not JSON with 400 and a JSON error', async () => {
    const response = await post('{"query": ');
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text)).toEqual({ error: { code: 'BAD_REQUEST', message: expect.any(String) } });
  });
});
