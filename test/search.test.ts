/**
 * Full-text search through GraphQL on real PostgreSQL: `searchMessages` (web search syntax,
 * ranking, snippets, filters, keyset pages over the rank) and `conversations(filter: { search })`,
 * one user never finding another's messages, and a constant number of statements per page.
 */
import type { GraphQLClient } from 'graphql-request';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createTestDatabase } from './support/database.js';
import { first } from './support/defined.js';
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

type Hit = {
  rank: number;
  snippet: string;
  message: { id: string; content: string; role: string } | null;
  conversation: { id: string; title: string | null };
};
type Hits = {
  searchMessages: {
    edges: { cursor: string; node: Hit }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
};

const SEARCH = /* GraphQL */ `
  query ($query: String!, $first: Int, $after: String, $filter: SearchFilter) {
    searchMessages(query: $query, first: $first, after: $after, filter: $filter) {
      edges { cursor node { rank snippet message { id content role } conversation { id title } } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

async function search(client: GraphQLClient, query: string, extra: Record<string, unknown> = {}): Promise<Hit[]> {
  const data = await client.request<Hits>(SEARCH, { query, ...extra });
  return data.searchMessages.edges.map((edge) => edge.node);
}

const contents = (hits: Hit[]) => hits.map((hit) => hit.message?.content ?? `title: ${hit.conversation.title}`);

/**
 * Stores a conversation of `userId` titled `title` with `messages` (user and assistant in turn,
 * one second apart, the last one newest), straight in SQL, its counters kept consistent. Returns its id.
 */
async function seedConversation(
  userId: string,
  title: string | null,
  messages: string[],
  options: { status?: string; createdAt?: Date } = {},
): Promise<string> {
  const createdAt = options.createdAt ?? new Date();
  const { rows } = await db.query(
    `insert into conversation (id, user_id, title, status, created_at, updated_at, last_message_at, message_count, next_seq)
     values (gen_random_uuid(), $1, $2, $3::conversation_status, $4, $4, $4, $5, $5 + 1) returning id`,
    [userId, title, options.status ?? 'active', createdAt, messages.length],
  );
  const id = first(rows, 'the conversation stored').id as string;
  await db.query(
    `insert into message (id, conversation_id, user_id, seq, role, content, status, created_at)
     select gen_random_uuid(), $1, $2, m.seq, (case when m.seq % 2 = 1 then 'user' else 'assistant' end)::message_role,
            m.content, 'complete', $3::timestamptz - make_interval(secs => $4 - m.seq)
     from unnest($5::text[]) with ordinality as m(content, seq)`,
    [id, userId, createdAt, messages.length, messages],
  );
  return id;
}

describe('searchMessages', () => {
  it('reads the query as a web search box: all words, "quoted phrases", -exclusion and or', async () => {
    await seedConversation('phraser', 'Animals', [
      'the quick brown fox jumps',
      'a brown and quick dog',
      'the fox sleeps near the dog',
      'cats purr',
    ]);
    const client = await server.client('phraser');

    expect(contents(await search(client, 'brown quick')).sort()).toEqual(['a brown and quick dog', 'the quick brown fox jumps']);
    expect(contents(await search(client, '"quick brown"'))).toEqual(['the quick brown fox jumps']);
    expect(contents(await search(client, 'fox -dog'))).toEqual(['the quick brown fox jumps']);
    expect(contents(await search(client, 'cats or jumps')).sort()).toEqual(['cats purr', 'the quick brown fox jumps']);
    expect(await search(client, 'giraffe')).toEqual([]);
  });

  it('ranks the messages that hold the words more often first, with a snippet marking them', async () => {
    await seedConversation('ranker', null, [
      'lisbon once, then other things entirely',
      'lisbon lisbon lisbon, all about lisbon',
      'lisbon and lisbon again',
    ]);
    const client = await server.client('ranker');

    const hits = await search(client, 'Lisbon');
    expect(contents(hits)).toEqual([
      'lisbon lisbon lisbon, all about lisbon',
      'lisbon and lisbon again',
      'lisbon once, then other things entirely',
    ]);
    const ranks = hits.map((hit) => hit.rank);
    expect(ranks).toEqual([...ranks].sort((a, b) => b - a));
    expect(first(hits, 'the best hit').snippet).toBe(
      '<mark>lisbon</mark> <mark>lisbon</mark> <mark>lisbon</mark>, all about <mark>lisbon</mark>',
    );
  });

  it('escapes the text of a snippet as HTML, stray marker characters taken out, and marks only the words found', async () => {
    await seedConversation('escaper', null, ['fetched <img src=x onerror="alert(1)"> kiwi', 'a \ue000 kiwi\ue001 < 2 € & "ripe" \'kiwi\'']);
    const client = await server.client('escaper');
    const snippets = (await search(client, 'kiwi')).map((hit) => hit.snippet);
    // ts_headline itself drops what its parser reads as a tag; everything else is escaped.
    expect(snippets).toEqual(['<mark>kiwi</mark> &lt; 2 € &amp; &quot;ripe&quot; &#39;<mark>kiwi</mark>', 'fetched   <mark>kiwi</mark>']);
  });

  it('finds a conversation by its title, as a hit without a message, above messages that mention the word', async () => {
    const id = await seedConversation('titler', 'Trip to Porto', ['what to pack', 'sandals, and porto wine maybe']);
    const client = await server.client('titler');

    const hits = await search(client, 'porto');
    expect(hits.map((hit) => [hit.message === null, hit.conversation.id])).toEqual([
      [true, id],
      [false, id],
    ]);
    expect(first(hits, 'the title hit').snippet).toBe('Trip to <mark>Porto</mark>');
    // A role filter leaves title hits out: a title has no role.
    expect(contents(await search(client, 'porto', { filter: { role: 'ASSISTANT' } }))).toEqual(['sandals, and porto wine maybe']);
  });

  it('finds the user message of a turn sent through GraphQL', async () => {
    const client = await server.client('sender');
    const sent = await send(client, 'remember the zanzibar itinerary');
    const hits = await search(client, 'zanzibar', { filter: { role: 'USER' } });
    expect(hits.map((hit) => [hit.message?.id, hit.conversation.id])).toEqual([[sent.userMessage.id, sent.conversation.id]]);
  });

  it('never finds another user’s messages or titles, even given their conversation id', async () => {
    const bobs = await seedConversation('bob', 'secret kumquat plans', ['my kumquat recipe']);
    await seedConversation('alice', null, ['nothing to see']);
    const alice = await server.client('alice');
    const bob = await server.client('bob');

    expect(await search(alice, 'kumquat')).toEqual([]);
    expect(await search(alice, 'kumquat', { filter: { conversationId: bobs } })).toEqual([]);
    expect(contents(await search(bob, 'kumquat')).sort()).toEqual(['my kumquat recipe', 'title: secret kumquat plans']);
  });

  it('filters by conversation, role, conversation status and creation time', async () => {
    const old = new Date('2024-01-01T00:00:00Z');
    const a = await seedConversation('filterer', null, ['walrus question', 'walrus answer'], { createdAt: old });
    const b = await seedConversation('filterer', null, ['walrus in b', 'walrus reply in b'], { status: 'archived' });
    const client = await server.client('filterer');

    expect(contents(await search(client, 'walrus', { filter: { conversationId: a } })).sort()).toEqual([
      'walrus answer',
      'walrus question',
    ]);
    expect(contents(await search(client, 'walrus', { filter: { role: 'USER' } })).sort()).toEqual(['walrus in b', 'walrus question']);
    expect(contents(await search(client, 'walrus', { filter: { status: 'ARCHIVED' } })).sort()).toEqual([
      'walrus in b',
      'walrus reply in b',
    ]);
    expect(contents(await search(client, 'walrus', { filter: { createdBefore: '2024-06-01T00:00:00Z' } })).sort()).toEqual([
      'walrus answer',
      'walrus question',
    ]);
    const recent = await search(client, 'walrus', { filter: { createdAfter: '2024-06-01T00:00:00Z' } });
    expect(new Set(recent.map((hit) => hit.conversation.id))).toEqual(new Set([b]));
  });

  it('pages through 250 hits over rank, ties included, with no gap or duplicate', async () => {
    // Ranks repeat (five levels), so that pages cut through ties.
    const messages = Array.from({ length: 250 }, (_, i) => `${'pangolin '.repeat(1 + (i % 5))}number ${i}`);
    await seedConversation('pager', null, messages);
    const client = await server.client('pager');

    const seen: Hit[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const data: Hits = await client.request(SEARCH, { query: 'pangolin', first: 40, after });
      seen.push(...data.searchMessages.edges.map((edge) => edge.node));
      pages += 1;
      if (!data.searchMessages.pageInfo.hasNextPage) break;
      after = data.searchMessages.pageInfo.endCursor;
    }
    expect(pages).toBe(7);
    expect(seen).toHaveLength(250);
    expect(new Set(contents(seen))).toEqual(new Set(messages));
    const ranks = seen.map((hit) => hit.rank);
    expect(ranks).toEqual([...ranks].sort((x, y) => y - x));
  });

  it('issues the same number of statements for a page of 5 and a page of 50 hits', async () => {
    for (let c = 0; c < 10; c++) {
      await seedConversation(
        'counter',
        `quokka topic ${c}`,
        Array.from({ length: 6 }, (_, i) => `quokka note ${c}.${i}`),
      );
    }
    const client = await server.client('counter');
    const statements = async (size: number) => {
      server.resetQueries();
      const hits = await search(client, 'quokka', { first: size });
      expect(hits).toHaveLength(size);
      return server.queries.length;
    };
    const small = await statements(5);
    expect(await statements(50)).toBe(small);
    // The search itself, and the hits' conversations through one loader batch.
    expect(small).toBe(2);
  });

  it('answers a query of only stop words or punctuation with an empty connection', async () => {
    const client = await server.client('punctuator');
    await seedConversation('punctuator', null, ['something here']);
    const data = await client.request<Hits>(SEARCH, { query: '!!! ... --' });
    expect(data.searchMessages).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });

  it('refuses a blank, overlong or control-character query, a bad cursor, date or id with BAD_USER_INPUT', async () => {
    const client = await server.client('refused');
    const bad = async (variables: Record<string, unknown>) => (await gqlError(client, SEARCH, variables)).extensions;
    expect(await bad({ query: '   ' })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'query' });
    expect(await bad({ query: 'x'.repeat(501) })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'query' });
    expect(await bad({ query: 'tab\there' })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'query' });
    expect(await bad({ query: 'ok', after: 'bogus' })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    const otherKind = Buffer.from(JSON.stringify(['message', 3])).toString('base64url');
    expect(await bad({ query: 'ok', after: otherKind })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    const negative = Buffer.from(JSON.stringify(['search', '-1', '0190a000-0000-7000-8000-000000000000'])).toString('base64url');
    expect(await bad({ query: 'ok', after: negative })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(await bad({ query: 'ok', first: 101 })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(await bad({ query: 'ok', filter: { createdAfter: '+010000-01-01T00:00:00Z' } })).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await bad({ query: 'ok', filter: { conversationId: 'nope' } })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'filter.conversationId',
    });
  });
});

describe('conversations(filter: { search })', () => {
  it('lists the viewer’s conversations whose title or messages match', async () => {
    const byTitle = await seedConversation('browser', 'Narwhal facts', ['tusks']);
    const byMessage = await seedConversation('browser', 'Sea life', ['the narwhal is a whale']);
    await seedConversation('browser', 'Other', ['nothing related']);
    await seedConversation('stranger', 'narwhal too', ['narwhal']);
    const client = await server.client('browser');

    const data = await client.request<{ conversations: { edges: { node: { id: string } }[] } }>(
      `query ($search: String) { conversations(filter: { search: $search }) { edges { node { id } } } }`,
      { search: 'narwhal' },
    );
    expect(new Set(data.conversations.edges.map((edge) => edge.node.id))).toEqual(new Set([byTitle, byMessage]));
    const blank = await gqlError(client, `{ conversations(filter: { search: " " }) { edges { cursor } } }`);
    expect(blank.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'filter.search' });
  });
});

describe('SEARCH_LANGUAGE and the snippet markers', () => {
  it('stems with english and marks snippets with the configured markers', async () => {
    const other = await startTestServer({
      env: { SEARCH_LANGUAGE: 'english', SEARCH_HIGHLIGHT_START: '[[', SEARCH_HIGHLIGHT_STOP: ']]' },
    });
    try {
      const client = await other.client('stemmer');
      await send(client, 'I was running to the stations');
      const data = await client.request<Hits>(SEARCH, { query: 'run station', filter: { role: 'USER' } });
      expect(data.searchMessages.edges.map((edge) => edge.node.snippet)).toEqual(['[[running]] to the [[stations]]']);
      const stored = await other.db.query(`select search_config::text as config from message where user_id = 'stemmer'`);
      expect(new Set(stored.rows.map((row) => row.config))).toEqual(new Set(['english']));
    } finally {
      await other.close();
    }
  });

  it('refuses a SEARCH_LANGUAGE PostgreSQL does not have, or one that is no name, naming the variable', async () => {
    const database = await createTestDatabase();
    try {
      await expect(startTestServer({ database, env: { SEARCH_LANGUAGE: 'klingon' } })).rejects.toThrow(
        /SEARCH_LANGUAGE: PostgreSQL has no text search configuration "klingon"/,
      );
    } finally {
      await database.drop();
    }
    expect(() => loadConfig({ SEARCH_LANGUAGE: 'english; drop table message' })).toThrow(/SEARCH_LANGUAGE/);
    expect(() => loadConfig({ SEARCH_HIGHLIGHT_START: '"' })).toThrow(/SEARCH_HIGHLIGHT_START/);
  });
});
