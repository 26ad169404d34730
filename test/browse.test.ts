/**
 * Browsing: Relay connections over keyset pages, and the promise that one request issues a
 * constant number of SQL statements whatever the page size or the history length.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed as seedRows } from '../bench/seed.js';
import { at, defined, first } from './support/defined.js';
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

const seed = (userId: string, conversations: number, messages: number) => seedRows(db, userId, conversations, messages);

type MessagesPage = {
  conversation: {
    messages: {
      edges: { cursor: string; node: { seq: number } }[];
      pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
    };
  };
};
const MESSAGES = `query ($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  conversation(id: $id) { messages(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { seq } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`;

describe('Conversation.messages', () => {
  it('pages forward and backward through 120 messages with no gap or duplicate', async () => {
    const [id] = await seed('pager', 1, 120);
    const client = await server.client('pager');

    const forward: number[] = [];
    let after: string | null = null;
    for (;;) {
      const data: MessagesPage = await client.request(MESSAGES, { id, first: 25, after });
      forward.push(...data.conversation.messages.edges.map((e) => e.node.seq));
      if (!data.conversation.messages.pageInfo.hasNextPage) break;
      after = data.conversation.messages.pageInfo.endCursor;
    }
    expect(forward).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));

    const backward: number[] = [];
    let before: string | null = null;
    let pages = 0;
    for (;;) {
      const data: MessagesPage = await client.request(MESSAGES, { id, last: 50, before });
      backward.unshift(...data.conversation.messages.edges.map((e) => e.node.seq));
      pages += 1;
      if (!data.conversation.messages.pageInfo.hasPreviousPage) break;
      before = data.conversation.messages.pageInfo.startCursor;
    }
    expect(pages).toBe(3);
    expect(backward).toEqual(forward);
  });

  it('refuses a page over 100, a malformed cursor and a malformed id with BAD_USER_INPUT', async () => {
    const [id] = await seed('strict', 1, 4);
    const client = await server.client('strict');
    expect((await gqlError(client, MESSAGES, { id, first: 101 })).code).toBe('BAD_USER_INPUT');
    expect((await gqlError(client, MESSAGES, { id, first: 2, after: 'bogus' })).code).toBe('BAD_USER_INPUT');
    expect((await gqlError(client, MESSAGES, { id: 'nope', first: 2 })).code).toBe('BAD_USER_INPUT');
    expect((await gqlError(client, '{ conversations(first: 0) { edges { cursor } } }')).code).toBe('BAD_USER_INPUT');
  });
});

describe('Query.conversations', () => {
  it('lists newest activity first, pages with cursors, and filters by status and update time', async () => {
    const client = await server.client('lister');
    const a = await send(client, 'hello one');
    const b = await send(client, 'hello two');
    const c = await send(client, 'hello three');
    await send(client, 'hello again', a.conversation.id);
    await db.query(`update conversation set status = 'archived' where id = $1`, [b.conversation.id]);

    type List = { conversations: { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } };
    const LIST = `query ($first: Int, $after: String, $filter: ConversationFilter) {
      conversations(first: $first, after: $after, filter: $filter) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`;
    const page1: List = await client.request(LIST, { first: 2 });
    expect(page1.conversations.edges.map((e) => e.node.id)).toEqual([a.conversation.id, c.conversation.id]);
    expect(page1.conversations.pageInfo.hasNextPage).toBe(true);
    const page2: List = await client.request(LIST, { first: 2, after: page1.conversations.pageInfo.endCursor });
    expect(page2.conversations.edges.map((e) => e.node.id)).toEqual([b.conversation.id]);
    expect(page2.conversations.pageInfo.hasNextPage).toBe(false);

    const archived: List = await client.request(LIST, { filter: { status: 'ARCHIVED' } });
    expect(archived.conversations.edges.map((e) => e.node.id)).toEqual([b.conversation.id]);
    const future: List = await client.request(LIST, { filter: { updatedAfter: new Date(Date.now() + 60_000).toISOString() } });
    expect(future.conversations.edges).toEqual([]);
  });
});

describe('SQL statements per request', () => {
  const NESTED = `query ($n: Int!) { conversations(first: $n) { edges { node {
    messageCount lastMessage { content }
    messages(last: 20) { edges { node { content toolCalls { name } } } } } } } }`;

  async function statementsFor(run: () => Promise<unknown>): Promise<number> {
    server.resetQueries();
    await run();
    return server.queries.length;
  }

  it('is the same for conversations(first: 5) and conversations(first: 50) with nested messages and tool calls', async () => {
    await seed('counter', 50, 30);
    const client = await server.client('counter');
    type Nested = { conversations: { edges: { node: { messages: { edges: { node: { toolCalls: unknown[] } }[] } } }[] } };
    let small: Nested | undefined;
    let large: Nested | undefined;
    const five = await statementsFor(async () => (small = await client.request(NESTED, { n: 5 })));
    const fifty = await statementsFor(async () => (large = await client.request(NESTED, { n: 50 })));

    expect(defined(small, 'the page of 5').conversations.edges).toHaveLength(5);
    const largePage = defined(large, 'the page of 50');
    expect(largePage.conversations.edges).toHaveLength(50);
    const fiftieth = at(largePage.conversations.edges, 49, 'the conversations of the page of 50');
    expect(fiftieth.node.messages.edges).toHaveLength(20);
    expect(fiftieth.node.messages.edges.filter((e) => e.node.toolCalls.length === 1)).toHaveLength(10);
    expect(fifty).toBe(five);
    expect(five).toBeLessThanOrEqual(5);
  });

  it('is one more with totalCount (none for the messages’ count), whatever the page size or the order', async () => {
    await seed('counter-total', 50, 3);
    const client = await server.client('counter-total');
    const PLAIN = `query ($n: Int!) { conversations(first: $n) { edges { node { messages(last: 2) { edges { node { seq } } } } } } }`;
    const COUNTED = `query ($n: Int!, $order: ConversationOrderField) { conversations(first: $n, orderBy: $order) {
      totalCount edges { node { messages(last: 2) { totalCount edges { node { seq } } } } } } }`;
    type Counted = { conversations: { totalCount: number; edges: { node: { messages: { totalCount: number } } }[] } };
    const plain = await statementsFor(() => client.request(PLAIN, { n: 5 }));
    let page: Counted | undefined;
    const five = await statementsFor(() => client.request(COUNTED, { n: 5 }));
    const fifty = await statementsFor(async () => (page = await client.request(COUNTED, { n: 50, order: 'CREATED_AT' })));
    expect(five).toBe(plain + 1);
    expect(fifty).toBe(five);
    const counted = defined(page, 'the page of 50').conversations;
    expect(counted.totalCount).toBe(50);
    expect(counted.edges.every((e) => e.node.messages.totalCount === 3)).toBe(true);
  });

  it('is the same for searchMessages and for nodes(ids), 5 or 50 of them, with their conversations', async () => {
    await seed('counter-search', 10, 10);
    const client = await server.client('counter-search');
    const SEARCH = `query ($n: Int!) { searchMessages(query: "message", first: $n) {
      edges { cursor node { rank snippet message { id seq } conversation { id title } } } } }`;
    type Hits = { searchMessages: { edges: { node: { message: { id: string } } }[] } };
    let hits: Hits | undefined;
    const fiveHits = await statementsFor(() => client.request(SEARCH, { n: 5 }));
    const fiftyHits = await statementsFor(async () => (hits = await client.request(SEARCH, { n: 50 })));
    expect(fiftyHits).toBe(fiveHits);
    const ids = defined(hits, 'the 50 hits').searchMessages.edges.map((edge) => edge.node.message.id);
    expect(ids).toHaveLength(50);

    const NODES = `query ($ids: [ID!]!) { nodes(ids: $ids) { id ... on Message { seq conversation { title } } } }`;
    const fiveNodes = await statementsFor(() => client.request(NODES, { ids: ids.slice(0, 5) }));
    let nodes: { nodes: ({ id: string } | null)[] } | undefined;
    const fiftyNodes = await statementsFor(async () => (nodes = await client.request(NODES, { ids })));
    expect(fiftyNodes).toBe(fiveNodes);
    expect(defined(nodes, 'the 50 nodes').nodes.map((node) => node?.id)).toEqual(ids);
  });

  it('is the same for a sendMessage on a conversation with 10 and with 500 prior messages', async () => {
    const [short, long] = await Promise.all([seed('turner-short', 1, 10), seed('turner-long', 1, 500)]);
    const shortClient = await server.client('turner-short');
    const longClient = await server.client('turner-long');
    // Warm up: the first turn of a process loads metadata, and a user's first turn of the day
    // starts the day's count of tokens (on the full path, once a day).
    const shortId = first(short, 'the seeded conversations of turner-short');
    const longId = first(long, 'the seeded conversations of turner-long');
    await send(shortClient, 'show my tasks', shortId);
    await send(longClient, 'show my tasks', longId);

    const withTen = await statementsFor(() => send(shortClient, 'show my tasks', shortId));
    const withFiveHundred = await statementsFor(() => send(longClient, 'show my tasks', longId));
    expect(withFiveHundred).toBe(withTen);
  });
});
