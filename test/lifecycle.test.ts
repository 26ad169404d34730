/**
 * The conversation lifecycle through GraphQL: create, rename and metadata, archive ⇄ unarchive,
 * reopen, delete; every refusal (another user's, bad input, a turn running); nothing half-done.
 */
import type { GraphQLClient } from 'graphql-request';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatedAgent } from './support/gate.js';
import { gqlError, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

const agent = new GatedAgent();
let server: TestServer;
let db: pg.Client;

beforeAll(async () => {
  server = await startTestServer({ agent });
  db = server.db;
});

afterAll(async () => {
  agent.gate.release();
  await server?.close();
});

const FIELDS = 'id title metadata status archivedAt messageCount';
type Conv = {
  id: string;
  title: string | null;
  metadata: Record<string, unknown> | null;
  status: string;
  archivedAt: string | null;
  messageCount: number;
};

const create = async (client: GraphQLClient, input: Record<string, unknown>) =>
  (
    await client.request<{ createConversation: Conv }>(
      `mutation ($input: CreateConversationInput!) { createConversation(input: $input) { ${FIELDS} } }`,
      { input },
    )
  ).createConversation;
const update = async (client: GraphQLClient, input: Record<string, unknown>) =>
  (
    await client.request<{ updateConversation: Conv }>(
      `mutation ($input: UpdateConversationInput!) { updateConversation(input: $input) { ${FIELDS} } }`,
      { input },
    )
  ).updateConversation;
const change = async (client: GraphQLClient, mutation: string, id: string) =>
  (await client.request<Record<string, Conv>>(`mutation ($id: ID!) { ${mutation}(id: $id) { ${FIELDS} } }`, { id }))[mutation] as Conv;
const stored = async (id: string) =>
  (await db.query('select title, metadata, status, archived_at, expires_at from conversation where id = $1', [id])).rows[0];

describe('createConversation and updateConversation', () => {
  it('make an empty conversation, rename it, and merge or replace its metadata', async () => {
    const client = await server.client('life-create');
    const made = await create(client, { title: '  Trip to Lisbon ', metadata: { project: 'travel', pinned: true } });
    expect(made).toMatchObject({
      title: 'Trip to Lisbon',
      metadata: { project: 'travel', pinned: true },
      status: 'ACTIVE',
      messageCount: 0,
    });

    const merged = await update(client, { id: made.id, title: 'Lisbon, May', metadata: { pinned: false, owner: 'ana' } });
    expect(merged).toMatchObject({ title: 'Lisbon, May', metadata: { project: 'travel', pinned: false, owner: 'ana' } });
    const replaced = await update(client, { id: made.id, metadata: { owner: 'rui' }, metadataMode: 'REPLACE' });
    expect(replaced).toMatchObject({ title: 'Lisbon, May', metadata: { owner: 'rui' } });
    expect(await stored(made.id)).toMatchObject({ title: 'Lisbon, May', metadata: { owner: 'rui' } });

    // The empty conversation takes its first message like any other.
    const turn = await send(client, 'add pack bags', made.id);
    expect(turn.userMessage.seq).toBe(1);
  });

  it('refuse bad titles and metadata with BAD_USER_INPUT, storing nothing, and another user’s conversation with NOT_FOUND', async () => {
    const client = await server.client('life-bad');
    const made = await create(client, { title: 'kept' });
    const updateMutation = `mutation ($input: UpdateConversationInput!) { updateConversation(input: $input) { id } }`;
    for (const input of [
      { id: made.id, title: '   ' },
      { id: made.id, title: 'x'.repeat(201) },
      { id: made.id, title: 'a\u0000b' },
      { id: made.id, metadata: { deep: { a: { b: { c: { d: { e: { f: { g: { h: 1 } } } } } } } } } },
      { id: made.id, metadata: { big: 'y'.repeat(9000) } },
      { id: 'not-a-uuid', title: 'x' },
    ]) {
      expect((await gqlError(client, updateMutation, { input })).code, JSON.stringify(input).slice(0, 80)).toBe('BAD_USER_INPUT');
    }
    expect(await stored(made.id)).toMatchObject({ title: 'kept', metadata: null });

    const other = await server.client('life-other');
    expect((await gqlError(other, updateMutation, { input: { id: made.id, title: 'mine now' } })).code).toBe('NOT_FOUND');
    for (const mutation of ['archiveConversation', 'unarchiveConversation', 'reopenConversation']) {
      expect((await gqlError(other, `mutation ($id: ID!) { ${mutation}(id: $id) { id } }`, { id: made.id })).code).toBe('NOT_FOUND');
    }
    expect((await gqlError(other, 'mutation ($id: ID!) { deleteConversation(id: $id) { deletedId } }', { id: made.id })).code).toBe(
      'NOT_FOUND',
    );
    expect(await stored(made.id)).toMatchObject({ title: 'kept', status: 'active' });
  });
});

describe('archive, unarchive, reopen', () => {
  it('archive makes a conversation read-only, idempotently; unarchive makes it active again', async () => {
    const client = await server.client('life-archive');
    const { conversation } = await send(client, 'add first');
    const archived = await change(client, 'archiveConversation', conversation.id);
    expect(archived.status).toBe('ARCHIVED');
    expect(archived.archivedAt).not.toBeNull();
    const again = await change(client, 'archiveConversation', conversation.id);
    expect(again.archivedAt).toBe(archived.archivedAt);
    expect(
      (
        await gqlError(client, 'mutation ($input: SendMessageInput!) { sendMessage(input: $input) { response } }', {
          input: { conversationId: conversation.id, message: 'add second' },
        })
      ).code,
    ).toBe('CONVERSATION_CLOSED');
    // Renaming stays possible; reopening is for expired ones.
    expect((await update(client, { id: conversation.id, title: 'old one' })).title).toBe('old one');
    expect((await gqlError(client, 'mutation ($id: ID!) { reopenConversation(id: $id) { id } }', { id: conversation.id })).code).toBe(
      'BAD_USER_INPUT',
    );

    const active = await change(client, 'unarchiveConversation', conversation.id);
    expect(active).toMatchObject({ status: 'ACTIVE', archivedAt: null });
    expect((await change(client, 'unarchiveConversation', conversation.id)).status).toBe('ACTIVE');
    expect((await send(client, 'add second', conversation.id)).userMessage.seq).toBe(3);
  });

  it('reopen makes an expired conversation active again', async () => {
    const client = await server.client('life-reopen');
    const { conversation } = await send(client, 'add first');
    // Expired by the retention policy (the sweeper's change, made here directly).
    await db.query(`update conversation set status = 'expired', expires_at = now() where id = $1`, [conversation.id]);
    expect((await gqlError(client, 'mutation ($id: ID!) { unarchiveConversation(id: $id) { id } }', { id: conversation.id })).code).toBe(
      'BAD_USER_INPUT',
    );
    const reopened = await change(client, 'reopenConversation', conversation.id);
    expect(reopened.status).toBe('ACTIVE');
    expect(await stored(conversation.id)).toMatchObject({ status: 'active', expires_at: null });
    expect((await send(client, 'add second', conversation.id)).userMessage.seq).toBe(3);
  });

  it('unarchive refuses a conversation whose messages are purged into an archive file, which shows purgedAt and no messages', async () => {
    const client = await server.client('life-purged');
    const { conversation } = await send(client, 'add first');
    // Archived and purged by an archive run (its change, made here directly).
    await db.query(
      `update conversation set status = 'archived', archived_at = now(), purged_at = now(),
         archive_location = '{"file": "x.jsonl.gz", "sha256": "00", "manifest": "m.json"}' where id = $1`,
      [conversation.id],
    );
    await db.query('delete from message where conversation_id = $1', [conversation.id]);
    const refused = await gqlError(client, 'mutation ($id: ID!) { unarchiveConversation(id: $id) { id } }', { id: conversation.id });
    expect(refused).toMatchObject({ code: 'CONVERSATION_PURGED', message: expect.stringContaining('restore --conversation') });
    const shown = await client.request<{ conversation: { status: string; purgedAt: string | null; messages: { edges: unknown[] } } }>(
      'query ($id: ID!) { conversation(id: $id) { status purgedAt messages(first: 5) { edges { cursor } } } }',
      { id: conversation.id },
    );
    expect(shown.conversation).toMatchObject({ status: 'ARCHIVED', purgedAt: expect.any(String), messages: { edges: [] } });
    const exported = await gqlError(client, 'query ($id: ID!) { exportConversation(id: $id) }', { id: conversation.id });
    expect(exported.code).toBe('CONVERSATION_PURGED');
    expect(await stored(conversation.id)).toMatchObject({ status: 'archived' });
  });
});

describe('deleteConversation', () => {
  it('removes the conversation with its messages and tool calls, keeps the user’s tasks, and answers the id', async () => {
    const client = await server.client('life-delete');
    const { conversation } = await send(client, 'add buy milk');
    const before = await db.query(`select count(*)::int as n from task where user_id = 'life-delete'`);
    expect(before.rows[0].n).toBe(1);
    const deleted = await client.request<{ deleteConversation: { deletedId: string } }>(
      'mutation ($id: ID!) { deleteConversation(id: $id) { deletedId } }',
      { id: conversation.id },
    );
    expect(deleted.deleteConversation.deletedId).toBe(conversation.id);
    for (const table of ['conversation', 'message', 'tool_call']) {
      const column = table === 'conversation' ? 'id' : 'conversation_id';
      expect((await db.query(`select count(*)::int as n from ${table} where ${column} = $1`, [conversation.id])).rows[0].n, table).toBe(0);
    }
    expect((await db.query(`select count(*)::int as n from task where user_id = 'life-delete'`)).rows[0].n).toBe(1);
    // Gone: a second delete is NOT_FOUND, like any unknown id.
    expect(
      (await gqlError(client, 'mutation ($id: ID!) { deleteConversation(id: $id) { deletedId } }', { id: conversation.id })).code,
    ).toBe('NOT_FOUND');
  });
});

describe('while a turn runs', () => {
  it('archive and delete answer CONVERSATION_BUSY and change nothing; renaming goes through; the turn completes', async () => {
    const client = await server.client('life-busy');
    const { conversation } = await send(client, 'add first');
    const before = agent.gate.held;
    const slow = send(client, 'add slow thing', conversation.id);
    await agent.gate.untilHeld(before + 1);

    const archive = await gqlError(client, 'mutation ($id: ID!) { archiveConversation(id: $id) { id } }', { id: conversation.id });
    expect(archive.code).toBe('CONVERSATION_BUSY');
    expect(archive.extensions.retryAfterMs as number).toBeGreaterThan(0);
    expect(
      (await gqlError(client, 'mutation ($id: ID!) { deleteConversation(id: $id) { deletedId } }', { id: conversation.id })).code,
    ).toBe('CONVERSATION_BUSY');
    expect((await update(client, { id: conversation.id, title: 'renamed mid-turn' })).title).toBe('renamed mid-turn');

    agent.gate.release();
    const done = await slow;
    expect(done.assistantMessage.status).toBe('COMPLETE');
    expect(await stored(conversation.id)).toMatchObject({ status: 'active', title: 'renamed mid-turn' });
    const rows = await db.query('select seq, status from message where conversation_id = $1 order by seq', [conversation.id]);
    expect(rows.rows.map((r) => `${r.seq}:${r.status}`)).toEqual(['1:complete', '2:complete', '3:complete', '4:complete']);
    // Free again: archiving goes through now.
    expect((await change(client, 'archiveConversation', conversation.id)).status).toBe('ARCHIVED');
  });
});

describe('conversations(filter: { metadata })', () => {
  it('lists the conversations whose metadata contains the object, pages through them, and refuses a bad filter', async () => {
    const client = await server.client('life-filter');
    const travel = [];
    for (let i = 0; i < 5; i++)
      travel.push(await create(client, { title: `trip ${i}`, metadata: { project: 'travel', n: i, tags: ['a', 'b'] } }));
    await create(client, { title: 'work', metadata: { project: 'work' } });
    await create(client, { title: 'none' });
    const other = await server.client('life-filter-other');
    await create(other, { title: 'not mine', metadata: { project: 'travel' } });

    const list = async (metadata: unknown, after?: string) =>
      (
        await client.request<{
          conversations: { edges: { node: { title: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string } };
        }>(
          'query ($filter: ConversationFilter, $after: String) { conversations(first: 2, after: $after, filter: $filter) { edges { node { title } } pageInfo { hasNextPage endCursor } } }',
          { filter: { metadata }, after },
        )
      ).conversations;
    const titles: string[] = [];
    for (let page = await list({ project: 'travel' }); ; page = await list({ project: 'travel' }, page.pageInfo.endCursor)) {
      titles.push(...page.edges.map((edge) => edge.node.title));
      if (!page.pageInfo.hasNextPage) break;
    }
    expect(titles.toSorted()).toEqual(travel.map((c) => c.title).toSorted());
    // Containment goes into nested values and arrays.
    expect((await list({ project: 'travel', n: 3 })).edges.map((edge) => edge.node.title)).toEqual(['trip 3']);
    expect((await list({ tags: ['b'] })).edges).toHaveLength(2);
    expect((await list({ project: 'nothing' })).edges).toEqual([]);

    const query = 'query ($filter: ConversationFilter) { conversations(filter: $filter) { edges { node { id } } } }';
    for (const metadata of [{ a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } }, { big: 'z'.repeat(9000) }, { '': 1 }]) {
      expect((await gqlError(client, query, { filter: { metadata } })).code).toBe('BAD_USER_INPUT');
    }
  });
});
