/**
 * In production (`NODE_ENV=production`) GraphQL's error messages stop suggesting names of the
 * schema ("Did you mean ...?"): with introspection off, suggestions would otherwise spell the
 * schema out one guess at a time. The same mistakes are still refused, with the same code, before
 * any SQL. (`limits.test.ts` shows the suggestions outside production.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codes, gql } from '../support/http.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { uniqueUser } from '../support/users.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ env: { NODE_ENV: 'production' } });
});

afterAll(async () => {
  await server?.close();
});

describe('NODE_ENV=production', () => {
  it.each([
    ['a misspelt field', '{ viewer { idd } }'],
    ['a misspelt argument', '{ conversations(frist: 1) { pageInfo { hasNextPage } } }'],
    ['a misspelt input type', 'query ($f: ConversationFiltr) { conversations(filter: $f) { pageInfo { hasNextPage } } }'],
    ['a misspelt input field', '{ conversations(filter: { statuss: ACTIVE }) { pageInfo { hasNextPage } } }'],
    ['a misspelt enum value', '{ conversations(filter: { status: ACTIV }) { pageInfo { hasNextPage } } }'],
  ])('refuses %s without suggesting a name of the schema', async (_name, query) => {
    server.resetQueries();
    const answer = await gql(server, uniqueUser('prod'), query);
    expect(answer.status, answer.text).toBe(400);
    expect(codes(answer), answer.text).toContain('GRAPHQL_VALIDATION_FAILED');
    expect(answer.text).not.toMatch(/Did you mean/i);
    expect(server.queries).toEqual([]);
  });

  it('answers a correct query as usual', async () => {
    const user = uniqueUser('prod');
    const answer = await gql(server, user, '{ viewer { id } }');
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body?.data).toEqual({ viewer: { id: user } });
  });
});
