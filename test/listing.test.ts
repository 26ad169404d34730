/**
 * Listing conversations for tools: `orderBy: CREATED_AT` (every conversation exactly once, while
 * conversations are written to), both directions both ways, and `totalCount` with filters.
 */
import type { GraphQLClient } from 'graphql-request';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defined } from './support/defined.js';
import { gqlError, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let db: pg.Client;

beforeAll(async () => {
  server = await startTestServer();
  db = server.db;
});

afterAll(async () => {
  await server?.close();
});

/**
 * Seeds `n` conversations of `userId`, made a minute apart (the first the oldest) with their last
 * activity in the reverse order (the first the newest), each with one user message; their ids, oldest first.
 */
async function seed(userId: string, n: number): Promise<string[]> {
  const { rows } = await db.query(
    `insert into conversation (id, user_id, title, created_at, updated_at, last_message_at, message_count, next_seq)
     select gen_random_uuid(), $1, 'c' || i, now() - interval '1 day' + i * interval '1 minute', now() - interval '1 hour',
            now() - interval '1 hour' - i * interval '1 second', 1, 2
     from generate_series(1, $2) as i order by i returning id`,
    [userId, n],
  );
  const ids = rows.map((row) => row.id as string);
  await db.query(
    `insert into message (id, conversation_id, user_id, seq, role, content, status, created_at)
     select gen_random_uuid(), c.id, $1, 1, 'user', 'hello', 'complete', now() from unnest($2::uuid[]) as c(id)`,
    [userId, ids],
  );
  return ids;
}

type Page = {
  conversations: {
    totalCount?: number;
    edges: { node: { id: string; title: string } }[];
    pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  };
};
const LIST = `query ($first: Int, $after: String, $last: Int, $before: String, $orderBy: ConversationOrderField, $direction: OrderDirection, $filter: ConversationFilter) {
  conversations(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy, direction: $direction, filter: $filter) {
    edges { node { id title } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`;

/** Pages forward through the listing, `size` at a time, calling `between` after each page; the ids in the order listed. */
async function pageThrough(
  client: GraphQLClient,
  variables: Record<string, unknown>,
  size: number,
  between: (page: number) => Promise<void> = async () => {},
): Promise<string[]> {
  const listed: string[] = [];
  let after: string | null = null;
  for (let page = 0; ; page += 1) {
    const data: Page = await client.request(LIST, { ...variables, first: size, after });
    listed.push(...data.conversations.edges.map((e) => e.node.id));
    if (!data.conversations.pageInfo.hasNextPage) return listed;
    after = data.conversations.pageInfo.endCursor;
    await between(page);
  }
}

describe('conversations(orderBy: CREATED_AT)', () => {
  it('lists every conversation exactly once while conversations are written to between pages', async () => {
    const ids = await seed('lister', 25);
    const client = await server.client('lister');
    // Between pages, a turn in a conversation not listed yet and in one listed already.
    const written: string[] = [];
    const listed = await pageThrough(client, { orderBy: 'CREATED_AT', direction: 'ASC' }, 5, async (page) => {
      const later = ids[24 - page] as string;
      const earlier = ids[page] as string;
      for (const id of [later, earlier]) await send(client, 'show my tasks', id);
      written.push(later, earlier);
    });
    expect(written).toHaveLength(8);
    expect(listed).toEqual(ids);

    // The same writes by last activity: a conversation written to moves to the front, behind the
    // pages already read, and is never seen (this is what CREATED_AT is for).
    const byActivity = await pageThrough(client, {}, 5, async () => {
      const all: Page = await client.request(LIST, { first: 25 });
      await send(client, 'show my tasks', defined(all.conversations.edges.at(-1), 'the least active conversation').node.id);
    });
    expect(new Set(byActivity).size).toBe(byActivity.length);
    expect(byActivity.length).toBeLessThan(25);
  });

  it('pages newest first (DESC, the default direction) and backwards with last/before, the same conversations in the same order', async () => {
    const ids = await seed('lister-desc', 12);
    const client = await server.client('lister-desc');
    const newestFirst = [...ids].reverse();
    expect(await pageThrough(client, { orderBy: 'CREATED_AT' }, 5)).toEqual(newestFirst);

    const backwards: string[] = [];
    let before: string | null = null;
    for (;;) {
      const data: Page = await client.request(LIST, { orderBy: 'CREATED_AT', direction: 'ASC', last: 5, before });
      backwards.unshift(...data.conversations.edges.map((e) => e.node.id));
      if (!data.conversations.pageInfo.hasPreviousPage) break;
      before = data.conversations.pageInfo.startCursor;
    }
    expect(backwards).toEqual(ids);

    // By activity, oldest first: the seeded activity runs the other way from creation.
    expect(await pageThrough(client, { orderBy: 'LAST_ACTIVITY', direction: 'ASC' }, 7)).toEqual(ids.toReversed());
  });

  it('refuses a cursor of one order used with the other, and an unknown order, with BAD_USER_INPUT', async () => {
    await seed('lister-bad', 3);
    const client = await server.client('lister-bad');
    const byActivity: Page = await client.request(LIST, { first: 1 });
    const cursor = byActivity.conversations.pageInfo.endCursor;
    const mixed = await gqlError(client, LIST, { first: 1, after: cursor, orderBy: 'CREATED_AT' });
    expect(mixed).toMatchObject({ code: 'BAD_USER_INPUT', extensions: { field: 'after' } });
    expect((await gqlError(client, LIST, { first: 1, orderBy: 'TITLE' })).code).toBe('BAD_USER_INPUT');
  });
});

describe('totalCount', () => {
  const COUNTS = `query ($filter: ConversationFilter, $first: Int) {
    conversations(filter: $filter, first: $first) { totalCount edges { node { id messages(first: 1) { totalCount edges { node { seq } } } } } } }`;
  type Counts = { conversations: { totalCount: number; edges: { node: { id: string; messages: { totalCount: number } } }[] } };

  it('counts the conversations that pass the filter, the same on every page, and each conversation’s messages', async () => {
    const ids = await seed('counted', 30);
    const client = await server.client('counted');
    const [a, b, c] = ids as [string, string, string];
    await db.query(`update conversation set status = 'archived', archived_at = now() where id = any($1) and user_id = 'counted'`, [[a, b]]);
    await db.query(`update conversation set metadata = '{"project": "travel"}' where id = $1 and user_id = 'counted'`, [c]);
    await send(client, 'add pack bags', c);

    const all: Counts = await client.request(COUNTS, { first: 2 });
    expect(all.conversations.totalCount).toBe(30);
    expect(all.conversations.edges).toHaveLength(2);
    const first = all.conversations.edges[0]?.node;
    expect(first).toMatchObject({ id: c, messages: { totalCount: 3 } });
    expect(all.conversations.edges[1]?.node.messages.totalCount).toBe(1);

    const count = async (filter: Record<string, unknown>) =>
      (await client.request<Counts>(COUNTS, { filter, first: 1 })).conversations.totalCount;
    expect(await count({ status: 'ARCHIVED' })).toBe(2);
    expect(await count({ status: 'ACTIVE' })).toBe(28);
    expect(await count({ metadata: { project: 'travel' } })).toBe(1);
    expect(await count({ updatedAfter: new Date(Date.now() - 60_000).toISOString() })).toBe(1);
    expect(await count({ status: 'EXPIRED' })).toBe(0);
    // Another user's conversations are not counted.
    const other = await server.client('counted-other');
    expect((await other.request<Counts>(COUNTS, {})).conversations.totalCount).toBe(0);
  });
});
