/**
 * Relay's Global Object Identification: `node(id:)` and `nodes(ids:)` answer the viewer's
 * conversations, messages, tool calls and tasks by id alone, null for anyone else's, in a
 * constant number of SQL statements however many ids.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from '../bench/seed.js';
import { first } from './support/defined.js';
import { gqlError } from './support/graphql.js';
import { gql } from './support/http.js';
import { startTestServer, type TestServer } from './support/server.js';
import { uniqueUser } from './support/users.js';

let server: TestServer;
let db: pg.Client;

beforeAll(async () => {
  server = await startTestServer();
  db = server.db;
});

afterAll(async () => {
  await server?.close();
});

/** The ids of one of each type a user has, and the rows they stand for. */
type Owned = { conversation: string; message: string; toolCall: string; task: string; all: string[] };

/**
 * Seeds `conversations` conversations of 4 messages (2 with a tool call) and `tasks` tasks of
 * `userId`, straight in SQL; returns one id of each type and every id.
 */
async function seedUser(userId: string, conversations = 1, tasks = 2): Promise<Owned> {
  await seed(db, userId, conversations, 4);
  await db.query(
    `insert into task (id, user_id, title, completed, created_at, updated_at)
     select gen_random_uuid(), $1, 'task ' || i, i % 2 = 0, now(), now() from generate_series(1, $2) as i`,
    [userId, tasks],
  );
  const ids = async (table: string) =>
    (await db.query(`select id from ${table} where user_id = $1 order by id`, [userId])).rows.map((row) => row.id as string);
  const [c, m, t, k] = await Promise.all([ids('conversation'), ids('message'), ids('tool_call'), ids('task')]);
  return {
    conversation: first(c, 'a conversation'),
    message: first(m, 'a message'),
    toolCall: first(t, 'a tool call'),
    task: first(k, 'a task'),
    all: [...c, ...m, ...t, ...k],
  };
}

const FIELDS = `__typename id
  ... on Conversation { title messageCount }
  ... on Message { seq content conversation { id } }
  ... on ToolCall { name message { id } }
  ... on Task { taskTitle: title completed }`;
const NODE = `query ($id: ID!) { node(id: $id) { ${FIELDS} } }`;
const NODES = `query ($ids: [ID!]!) { nodes(ids: $ids) { ${FIELDS} } }`;

type NodeData = { node: Record<string, unknown> | null };
type NodesData = { nodes: (Record<string, unknown> | null)[] };

describe('node(id:)', () => {
  it('answers each of the four types by id alone, with their own fields', async () => {
    const user = uniqueUser('noder');
    const mine = await seedUser(user);
    const client = await server.client(user);
    const { rows } = await db.query('select conversation_id, seq, content from message where id = $1', [mine.message]);
    const message = first(rows, 'the message row');
    const call = first((await db.query('select message_id from tool_call where id = $1', [mine.toolCall])).rows, 'the tool call row');
    const task = first((await db.query('select title, completed from task where id = $1', [mine.task])).rows, 'the task row');

    const node = async (id: string) => (await client.request<NodeData>(NODE, { id })).node;
    expect(await node(mine.conversation)).toEqual({
      __typename: 'Conversation',
      id: mine.conversation,
      title: 'seeded 1',
      messageCount: 4,
    });
    expect(await node(mine.message)).toEqual({
      __typename: 'Message',
      id: mine.message,
      seq: message.seq,
      content: message.content,
      conversation: { id: message.conversation_id },
    });
    expect(await node(mine.toolCall)).toEqual({
      __typename: 'ToolCall',
      id: mine.toolCall,
      name: 'list_tasks',
      message: { id: call.message_id },
    });
    expect(await node(mine.task)).toEqual({ __typename: 'Task', id: mine.task, taskTitle: task.title, completed: task.completed });
  });

  it('answers null for every id of another user, and for an unknown id, showing nothing of theirs', async () => {
    const alice = uniqueUser('alice');
    const bob = uniqueUser('bob');
    await seedUser(alice);
    const bobs = await seedUser(bob);
    for (const id of [...bobs.all, randomUUID()]) {
      const answer = await gql<NodeData>(server, alice, NODE, { id });
      expect(answer.body, `node(${id})`).toEqual({ data: { node: null } });
    }
    const answer = await gql<NodesData>(server, alice, NODES, { ids: bobs.all });
    expect(answer.body).toEqual({ data: { nodes: bobs.all.map(() => null) } });
  });

  it('refuses a malformed id with BAD_USER_INPUT, and a request without a token with UNAUTHENTICATED', async () => {
    const user = uniqueUser('strict');
    const client = await server.client(user);
    expect((await gqlError(client, NODE, { id: 'nope' })).code).toBe('BAD_USER_INPUT');
    const anonymous = await server.client(null);
    expect((await gqlError(anonymous, NODE, { id: randomUUID() })).code).toBe('UNAUTHENTICATED');
  });
});

describe('nodes(ids:)', () => {
  it('answers in the order of the ids, one entry each: mixed types, repeats, unknown and other users’ ids as null', async () => {
    const user = uniqueUser('mixer');
    const other = uniqueUser('other');
    const mine = await seedUser(user);
    const theirs = await seedUser(other);
    const client = await server.client(user);
    const unknown = randomUUID();
    const ids = [mine.task, theirs.conversation, mine.conversation, unknown, mine.message, mine.toolCall, mine.conversation, theirs.task];
    const { nodes } = await client.request<NodesData>(NODES, { ids });
    expect(nodes.map((node) => (node === null ? null : [node.__typename, node.id]))).toEqual([
      ['Task', mine.task],
      null,
      ['Conversation', mine.conversation],
      null,
      ['Message', mine.message],
      ['ToolCall', mine.toolCall],
      ['Conversation', mine.conversation],
      null,
    ]);
    expect((await client.request<NodesData>(NODES, { ids: [] })).nodes).toEqual([]);
  });

  it('refuses more than 100 ids and a malformed one with BAD_USER_INPUT naming it', async () => {
    const client = await server.client(uniqueUser('many'));
    const tooMany = await gqlError(client, NODES, { ids: Array.from({ length: 101 }, () => randomUUID()) });
    expect(tooMany).toMatchObject({ code: 'BAD_USER_INPUT' });
    const malformed = await gqlError(client, NODES, { ids: [randomUUID(), 'nope'] });
    expect([malformed.code, malformed.extensions.field]).toEqual(['BAD_USER_INPUT', 'ids[1]']);
  });

  it('costs what its ids ask for: the same document is refused by cost with 100 ids, not with 1', async () => {
    const user = uniqueUser('coster');
    const mine = await seedUser(user);
    const HEAVY = `query ($ids: [ID!]!) { nodes(ids: $ids) { id ... on Conversation {
      messages(first: 100) { edges { node { id } } } toolCalls(first: 100) { edges { node { id } } } } } }`;
    const one = await gql<NodesData>(server, user, HEAVY, { ids: [mine.conversation] });
    expect(one.body?.errors).toBeUndefined();
    const hundred = await gql<NodesData>(server, user, HEAVY, { ids: Array.from({ length: 100 }, () => mine.conversation) });
    expect(hundred.status).toBe(400);
    expect(hundred.body?.errors?.[0]?.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'cost' });
  });

  it('costs the same number of SQL statements for 5 and for 50 ids of every type, nested fields included', async () => {
    const user = uniqueUser('counter');
    await seedUser(user, 26, 13);
    const client = await server.client(user);
    const column = async (sql: string, params: unknown[]) => (await db.query(sql, params)).rows.map((row) => row.id as string);
    const conversations = await column('select id from conversation where user_id = $1 order by id', [user]);
    // The messages asked for are of conversations not asked for, and the tool calls' messages
    // (assistant ones) are not asked for either: every parent is read, whatever the number of ids.
    const asked = conversations.slice(0, 13);
    const messages = await column(
      'select id from message where user_id = $1 and seq in (1, 3) and not conversation_id = any($2) order by id',
      [user, asked],
    );
    const toolCalls = await column('select id from tool_call where user_id = $1 order by id', [user]);
    const tasks = await column('select id from task where user_id = $1 order by id', [user]);
    // Every type in both: 50 ids are 12 or 13 of each, 5 ids at least one of each.
    const lists = [asked, messages, toolCalls, tasks];
    const mixed = (n: number) => Array.from({ length: n }, (_, i) => lists[i % 4]?.[Math.floor(i / 4)] as string);
    const NESTED = `query ($ids: [ID!]!) { nodes(ids: $ids) { ${FIELDS}
      ... on Conversation { messages(first: 3) { edges { node { id toolCalls { name } } } } } } }`;

    const statementsFor = async (ids: string[]) => {
      server.resetQueries();
      const { nodes } = await client.request<NodesData>(NESTED, { ids });
      expect(nodes.map((node) => node?.id)).toEqual(ids);
      return server.queries.length;
    };
    const five = await statementsFor(mixed(5));
    const fifty = await statementsFor(mixed(50));
    expect(fifty).toBe(five);
    // The types; the rows of each of the four types; the conversations' message pages and their
    // tool calls; the messages' conversations and the tool calls' messages.
    expect(five).toBe(9);
  });
});
