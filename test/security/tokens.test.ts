/**
 * Token claims are checked at the edge, the same way on every transport (GraphQL, the REST route,
 * `/mcp`): a token signed with the right secret is still refused (UNAUTHENTICATED / 401) unless
 *
 * - `sub` is a string of 1 to 255 characters, well-formed Unicode, without control characters
 *   (U+0000-U+001F, U+007F-U+009F): anything else (objects, arrays, numbers, `null`) never becomes
 *   a user id, and never a 500;
 * - `exp` is present and not past (JWT_REQUIRE_EXP defaults to true);
 * - `iat` and `nbf` are not more than the clock tolerance (30 s) in the future.
 *
 * A lone surrogate would be stored by the driver as U+FFFD, so the users "col\ud800" and
 * "col\udbff" would both become the user "col\ufffd": they are refused instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEND } from '../support/graphql.js';
import { gql, postGraphQL, postMcp, postRest } from '../support/http.js';
import { countRows, nowSeconds, signClaims, type ViewerData } from '../support/security.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { uniqueUser } from '../support/users.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'tokens-test', version: '1.0.0' } },
};

/** Claims that are valid now, for `sub`; `extra` adds or replaces claims (undefined removes one). */
function claims(sub: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const all: Record<string, unknown> = { sub, iat: nowSeconds(), exp: nowSeconds() + 300, ...extra };
  for (const [key, value] of Object.entries(all)) if (value === undefined) delete all[key];
  return all;
}

type Outcome = { graphql: string; rest: number; mcp: number };

/**
 * What each transport makes of `token`: GraphQL's viewer id or error code, and the statuses of
 * the REST route (as the user `restUser`) and of an `/mcp` initialize.
 */
async function outcome(token: string, restUser = 'someone'): Promise<Outcome> {
  const graphql = await postGraphQL<ViewerData>(server, { query: '{ viewer { id } }' }, { token });
  const rest = await postRest(server, restUser, { message: 'hello' }, { token });
  const mcp = await postMcp(server, INITIALIZE, { token });
  return {
    graphql:
      graphql.body?.data?.viewer?.id ?? String(graphql.body?.errors?.[0]?.extensions?.code ?? `HTTP ${graphql.status} ${graphql.text}`),
    rest: rest.status,
    mcp: mcp.status,
  };
}

const REFUSED: Outcome = { graphql: 'UNAUTHENTICATED', rest: 401, mcp: 401 };

describe('sub', () => {
  it.each([
    ['ASCII', 'alice'],
    ['255 characters', 'a'.repeat(255)],
    ['letters beyond ASCII', 'zoë-ßø'],
    ['a character beyond the BMP (a surrogate pair)', 'fox-🦊'],
    ['a space', 'mary ann'],
  ])('accepts %s on every transport', async (_name, sub) => {
    expect(await outcome(await signClaims(claims(sub)), sub)).toEqual({ graphql: sub, rest: 200, mcp: 200 });
  });

  it.each([
    ['empty', ''],
    ['256 characters', 'a'.repeat(256)],
    ['a lone high surrogate', 'col\ud800'],
    ['a lone high surrogate at the end of the BMP range', 'col\udbff'],
    ['a lone low surrogate', '\udc00col'],
    ['a NUL', 'ali\u0000ce'],
    ['a tab', 'ali\tce'],
    ['a newline', 'alice\n'],
    ['U+001F', 'ali\u001fce'],
    ['DEL (U+007F)', 'ali\u007fce'],
    ['a C1 control (U+0085)', 'ali\u0085ce'],
    ['U+009F', 'ali\u009fce'],
  ])('refuses a sub that is %s on every transport', async (_name, sub) => {
    expect(await outcome(await signClaims(claims(sub)))).toEqual(REFUSED);
  });

  describe('a non-string sub', () => {
    // Users the injection aims at, each with data of its own (seeded here, whatever other tests did).
    beforeAll(async () => {
      for (const victim of ['alice', 'bob', 'nobody']) {
        expect((await gql(server, victim, SEND, { input: { message: `add a task to buy ${victim}'s milk` } })).status).toBe(200);
      }
    });

    it.each([
      ['{"$ne":"nobody"}', { $ne: 'nobody' }],
      ['["alice","bob"]', ['alice', 'bob']],
      ['{"$in":["alice","bob"]}', { $in: ['alice', 'bob'] }],
      ['{"$like":"%"}', { $like: '%' }],
      ['true', true],
      ['1', 1],
      ['null', null],
    ])('refuses the non-string sub %s on every transport, and shows no one’s data', async (_name, sub) => {
      const token = await signClaims(claims(sub));
      expect(await outcome(token)).toEqual(REFUSED);
      const browse = await postGraphQL(
        server,
        { query: '{ conversations { edges { node { id title } } } tasks { edges { node { title } } } }' },
        { token },
      );
      expect(browse.body?.data ?? null, browse.text).toBeNull();
      expect(browse.body?.errors?.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
      expect(browse.text).not.toMatch(/milk/);
    });
  });

  it('keeps "col\\ud800" and "col\\udbff" apart from the user "col\\ufffd": both refused, nothing of col\\ufffd shown or added', async () => {
    const replacement = `col\ufffd-${uniqueUser('x')}`;
    const [high, highest] = [replacement.replace('\ufffd', '\ud800'), replacement.replace('\ufffd', '\udbff')];
    const owned = await gql(server, replacement, SEND, { input: { message: 'add a task to buy replacement milk' } });
    expect(owned.status, owned.text).toBe(200);
    const before = await countRows(server.db, replacement);
    expect(before).toMatchObject({ conversation: 1, message: 2 });

    for (const sub of [high, highest]) {
      const token = await signClaims(claims(sub));
      expect(await outcome(token)).toEqual(REFUSED);
      const browse = await postGraphQL(server, { query: '{ conversations { edges { node { id title } } } }' }, { token });
      expect(browse.text).not.toContain('replacement milk');
      const write = await postGraphQL(
        server,
        { query: SEND, variables: { input: { message: 'add a task to buy merged milk' } } },
        { token },
      );
      expect(write.body?.errors?.[0]?.extensions?.code, write.text).toBe('UNAUTHENTICATED');
    }
    expect(await countRows(server.db, replacement)).toEqual(before);
  });
});

describe('exp, iat and nbf', () => {
  it('refuses a token without exp on every transport', async () => {
    expect(await outcome(await signClaims(claims(uniqueUser('noexp'), { exp: undefined })))).toEqual(REFUSED);
  });

  it('refuses an expired token, and an exp that is not a number', async () => {
    expect(await outcome(await signClaims(claims(uniqueUser('old'), { exp: nowSeconds() - 120 })))).toEqual(REFUSED);
    expect(await outcome(await signClaims(claims(uniqueUser('text'), { exp: String(nowSeconds() + 300) })))).toEqual(REFUSED);
  });

  it('refuses iat or nbf more than 30 s in the future on every transport', async () => {
    expect(await outcome(await signClaims(claims(uniqueUser('iat'), { iat: nowSeconds() + 120 })))).toEqual(REFUSED);
    expect(await outcome(await signClaims(claims(uniqueUser('nbf'), { nbf: nowSeconds() + 120 })))).toEqual(REFUSED);
    expect(await outcome(await signClaims(claims(uniqueUser('iat'), { iat: nowSeconds() + 3600 * 24 * 365 })))).toEqual(REFUSED);
  });

  it('accepts iat and nbf a little in the future, within the 30 s clock tolerance', async () => {
    const user = uniqueUser('skewed');
    const token = await signClaims(claims(user, { iat: nowSeconds() + 5, nbf: nowSeconds() + 5 }));
    expect((await outcome(token, user)).graphql).toBe(user);
  });

  it('refuses iat or nbf that are not numbers', async () => {
    expect(await outcome(await signClaims(claims(uniqueUser('iat'), { iat: 'yesterday' })))).toEqual(REFUSED);
    expect(await outcome(await signClaims(claims(uniqueUser('nbf'), { nbf: { $lt: 0 } })))).toEqual(REFUSED);
  });
});
