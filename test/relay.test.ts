/**
 * A Relay client works with the schema: a small Relay project, written to a temporary directory,
 * is compiled by `relay-compiler` against `schema.graphql` (a `@refetchable` fragment on
 * `Conversation`, `@connection`s on the conversations and on a conversation's messages), and the
 * queries it generates run against the server over HTTP, with the variables Relay would send.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from '../bench/seed.js';
import { defined } from './support/defined.js';
import { startTestServer, type TestServer } from './support/server.js';
import { uniqueUser } from './support/users.js';

/** How long the one compile may take. */
const COMPILE_TIMEOUT_MS = 60_000;

/** The project's modules, each with the `graphql` tagged template Relay reads from it. */
const SOURCES: Record<string, string> = {
  'ConversationItem.js': `
    graphql\`
      fragment ConversationItem_conversation on Conversation @refetchable(queryName: "ConversationItemRefetchQuery") {
        id
        title
        messageCount
      }
    \`;`,
  'ConversationMessages.js': `
    graphql\`
      fragment ConversationMessages_conversation on Conversation
      @argumentDefinitions(count: { type: "Int", defaultValue: 2 }, cursor: { type: "String" })
      @refetchable(queryName: "ConversationMessagesPaginationQuery") {
        messages(first: $count, after: $cursor) @connection(key: "ConversationMessages_messages") {
          edges { node { id seq content } }
        }
      }
    \`;`,
  'ConversationList.js': `
    graphql\`
      fragment ConversationList_query on Query
      @argumentDefinitions(count: { type: "Int", defaultValue: 2 }, cursor: { type: "String" })
      @refetchable(queryName: "ConversationListPaginationQuery") {
        conversations(first: $count, after: $cursor) @connection(key: "ConversationList_conversations") {
          edges { node { id ...ConversationItem_conversation } }
        }
      }
    \`;`,
  'App.js': `
    graphql\`
      query AppQuery { ...ConversationList_query }
    \`;`,
};

let dir: string;
let server: TestServer;
/** The text of each query Relay generated, by its name. */
const generated = new Map<string, string>();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'stateless-chat-relay-'));
  await mkdir(path.join(dir, 'src'));
  const config = { src: './src', schema: path.resolve('schema.graphql'), language: 'javascript' };
  await writeFile(path.join(dir, 'relay.config.json'), JSON.stringify(config, null, 2));
  for (const [name, source] of Object.entries(SOURCES)) await writeFile(path.join(dir, 'src', name), source);

  // The package's main module is the path of its platform's binary (null on a platform it lacks).
  const binary = createRequire(import.meta.url)('relay-compiler') as string | null;
  await promisify(execFile)(defined(binary, 'the relay-compiler binary of this platform'), [], { cwd: dir, timeout: COMPILE_TIMEOUT_MS });
  for (const name of [
    'AppQuery',
    'ConversationListPaginationQuery',
    'ConversationItemRefetchQuery',
    'ConversationMessagesPaginationQuery',
  ]) {
    generated.set(name, queryText(await readFile(path.join(dir, 'src', '__generated__', `${name}.graphql.js`), 'utf8')));
  }
  server = await startTestServer();
}, COMPILE_TIMEOUT_MS + 30_000);

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The query text of a generated operation artifact: its `params.text`, a JSON string. */
function queryText(artifact: string): string {
  const match = /"text": ("(?:[^"\\]|\\.)*")/.exec(artifact);
  return JSON.parse(defined(match?.[1], 'params.text in a generated artifact')) as string;
}

/** Runs the generated query `name` as a Relay environment would send it: its text, its variables. */
function run<D>(client: GraphQLClient, name: string, variables: Record<string, unknown> = {}): Promise<D> {
  return client.request<D>(defined(generated.get(name), `the generated query ${name}`), variables);
}

type Connection<N> = { edges: { cursor: string; node: N }[]; pageInfo: { endCursor: string | null; hasNextPage: boolean } };
type ConversationItem = { id: string; title: string | null; messageCount: number };
type ConversationNode = ConversationItem & { __typename: string };

describe('a Relay project compiled against schema.graphql', () => {
  it('gets a refetch query through node(id:) and pagination queries for both connections', () => {
    expect(generated.get('ConversationItemRefetchQuery')).toMatch(/node\(id: \$id\)/);
    expect(generated.get('ConversationMessagesPaginationQuery')).toMatch(
      /node\(id: \$id\)[\s\S]*messages\(first: \$count, after: \$cursor\)/,
    );
    expect(generated.get('ConversationListPaginationQuery')).toMatch(/conversations\(first: \$count, after: \$cursor\)/);
  });

  it('pages through the conversations with the generated query and its pagination query', async () => {
    const user = uniqueUser('relay-list');
    const seeded = await seed(server.db, user, 3, 1);
    const client = await server.client(user);

    const firstPage = (await run<{ conversations: Connection<ConversationItem> }>(client, 'AppQuery')).conversations;
    expect(firstPage.edges.map((edge) => edge.node)).toEqual(
      seeded.slice(0, 2).map((id, i) => ({ id, title: `seeded ${i + 1}`, messageCount: 1, __typename: 'Conversation' })),
    );
    expect(firstPage.pageInfo.hasNextPage).toBe(true);

    const next = await run<{ conversations: Connection<ConversationItem> }>(client, 'ConversationListPaginationQuery', {
      count: 2,
      cursor: firstPage.pageInfo.endCursor,
    });
    expect(next.conversations.edges.map((edge) => edge.node.id)).toEqual(seeded.slice(2));
    expect(next.conversations.pageInfo.hasNextPage).toBe(false);
  });

  it('refetches a conversation by node(id:) with the @refetchable query, and gets null for another user’s', async () => {
    const user = uniqueUser('relay-refetch');
    const other = uniqueUser('relay-other');
    const [id] = await seed(server.db, user, 1, 3);
    const [theirs] = await seed(server.db, other, 1, 3);
    const client = await server.client(user);

    const { node } = await run<{ node: ConversationNode | null }>(client, 'ConversationItemRefetchQuery', { id });
    expect(node).toEqual({ __typename: 'Conversation', id, title: 'seeded 1', messageCount: 3 });
    const refused = await run<{ node: ConversationNode | null }>(client, 'ConversationItemRefetchQuery', { id: theirs });
    expect(refused.node).toBeNull();
  });

  it('pages through a conversation’s messages with the pagination query Relay made for its fragment', async () => {
    const user = uniqueUser('relay-messages');
    const [id] = await seed(server.db, user, 1, 5);
    const client = await server.client(user);

    type Messages = Connection<{ seq: number; content: string }>;
    type MessagesNode = { node: { __typename: string; id: string; messages: Messages } | null };
    const seqs: number[] = [];
    let cursor: string | null = null;
    for (let pages = 1; ; pages++) {
      const answer: MessagesNode = await run<MessagesNode>(client, 'ConversationMessagesPaginationQuery', { id, count: 2, cursor });
      const messages: Messages = defined(answer.node, 'the conversation').messages;
      seqs.push(...messages.edges.map((edge) => edge.node.seq));
      if (!messages.pageInfo.hasNextPage) {
        expect(pages).toBe(3);
        break;
      }
      cursor = messages.pageInfo.endCursor;
    }
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
  });
});
