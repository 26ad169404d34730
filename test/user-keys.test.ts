/**
 * Every key of a user's rows starts with `user_id`, so that the tables can be distributed by user
 * (docs/scaling.md): primary keys, unique constraints, and foreign keys on both sides. A row can then
 * refer only to a conversation or message of its own user, whatever the code does. The migration
 * that made it so (`user_keys`) keeps what an older database held.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrationsList } from '../migrations/index.js';
import { migrate, openOrm } from '../src/db/orm.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase } from './support/database.js';
import { send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';
import { USER_TABLES } from './support/user-scope.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

type Constraint = {
  table: string;
  name: string;
  type: 'p' | 'u' | 'f';
  columns: string[];
  references: string | null;
  refColumns: string[] | null;
  onUpdate: string;
};

async function constraints(db: pg.Client): Promise<Constraint[]> {
  const { rows } = await db.query<Constraint>(
    `select c.conrelid::regclass::text as table, c.conname as name, c.contype as type,
            array(select a.attname::text from unnest(c.conkey) with ordinality k(n, i) join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.i) as columns,
            c.confrelid::regclass::text as references,
            case when c.contype = 'f' then array(select a.attname::text from unnest(c.confkey) with ordinality k(n, i) join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.i) end as "refColumns",
            c.confupdtype as "onUpdate"
       from pg_constraint c
      where c.contype in ('p', 'u', 'f') and c.conrelid::regclass::text = any($1)
      order by 1, 2`,
    [[...USER_TABLES]],
  );
  return rows.map((row) => ({ ...row, references: row.type === 'f' ? row.references : null }));
}

describe('the keys of user rows', () => {
  it('every primary key and unique constraint starts with user_id, and every foreign key pairs user_id with user_id', async () => {
    const found = await constraints(server.db);
    expect(found.filter((c) => c.type === 'p').map((c) => c.table)).toEqual([...USER_TABLES].sort());
    for (const c of found) {
      expect({ name: c.name, first: c.columns[0] }).toEqual({ name: c.name, first: 'user_id' });
      if (c.type !== 'f') continue;
      expect(USER_TABLES).toContain(c.references);
      expect({ name: c.name, refFirst: c.refColumns?.[0] }).toEqual({ name: c.name, refFirst: 'user_id' });
      // Citus refuses a cascading update on a foreign key that holds the distribution column.
      expect({ name: c.name, onUpdate: c.onUpdate }).toEqual({ name: c.name, onUpdate: 'a' });
    }
    expect(
      found.filter((c) => c.type === 'f').map((c) => `${c.table}(${c.columns.join(', ')}) -> ${c.references}(${c.refColumns?.join(', ')})`),
    ).toEqual([
      'conversation_event(user_id, conversation_id) -> conversation(user_id, id)',
      'message(user_id, conversation_id) -> conversation(user_id, id)',
      'tool_call(user_id, conversation_id) -> conversation(user_id, id)',
      'tool_call(user_id, message_id) -> message(user_id, id)',
      'turn_waiter(user_id, conversation_id) -> conversation(user_id, id)',
    ]);
  });

  it("refuses a message, tool call, event or waiter on another user's conversation, and a turn still works", async () => {
    const client = await server.client('keys-owner');
    const sent = await send(client, 'add a task to check the keys');
    const conversationId = sent.conversation.id;
    const replyId = sent.assistantMessage.id;
    const intruder = 'keys-intruder';
    const attempts = [
      [
        "insert into message (id, user_id, conversation_id, seq, role, content, status, created_at) values (gen_random_uuid(), $1, $2, 99, 'user', 'x', 'complete', now())",
        [intruder, conversationId],
      ],
      [
        "insert into tool_call (id, user_id, conversation_id, message_id, call_id, server, name, arguments, is_error, started_at, duration_ms) values (gen_random_uuid(), $1, $2, $3, 'c', 's', 'n', '{}', false, now(), 0)",
        [intruder, conversationId, replyId],
      ],
      [
        "insert into conversation_event (id, user_id, conversation_id, position, kind, turn_id, message_id, created_at) values (gen_random_uuid(), $1, $2, 99, 'turn_started', gen_random_uuid(), $3, now())",
        [intruder, conversationId, replyId],
      ],
      ['insert into turn_waiter (user_id, conversation_id, expires_at) values ($1, $2, now())', [intruder, conversationId]],
    ] as const;
    for (const [sql, params] of attempts) {
      await expect(server.db.query(sql, [...params])).rejects.toMatchObject({ code: '23503' });
    }
    const stored = await server.db.query(
      `select (select count(*)::int from message where conversation_id = $1) as messages,
              (select count(*)::int from message where user_id = $2) as intruder`,
      [conversationId, intruder],
    );
    expect(stored.rows).toEqual([{ messages: 2, intruder: 0 }]);
    const again = await send(client, 'list my tasks', conversationId);
    expect(again.assistantMessage.content).toContain('check the keys');
  });
});

describe('the user_keys migration', () => {
  it('keeps the rows of a database made before it, which the server then serves', async () => {
    const database = await createTestDatabase();
    const log = createLogger('silent');
    try {
      const before = migrationsList.findIndex((m) => m.name.endsWith('_user_keys')) - 1;
      const previous = migrationsList[before]?.name;
      expect(previous).toBeDefined();
      const orm = await openOrm({ clientUrl: database.url, log });
      const db = new pg.Client({ connectionString: database.url });
      await db.connect();
      try {
        await orm.migrator.up({ to: previous });
        await db.query(
          `insert into conversation (id, user_id, title, status, created_at, updated_at, last_message_at, message_count, next_seq, event_seq, waiting, prompt_tokens, completion_tokens, total_tokens)
           values ('0190f1c2-0000-7000-8000-000000000001', 'old-user', 'Kept', 'active', now(), now(), now(), 2, 3, 1, 0, 0, 0, 0);
           insert into message (id, user_id, conversation_id, seq, role, content, status, created_at, search_config) values
             ('0190f1c2-0000-7000-8000-000000000002', 'old-user', '0190f1c2-0000-7000-8000-000000000001', 1, 'user', 'add a task to keep rows', 'complete', now(), 'simple'),
             ('0190f1c2-0000-7000-8000-000000000003', 'old-user', '0190f1c2-0000-7000-8000-000000000001', 2, 'assistant', 'Added.', 'complete', now(), 'simple');
           insert into tool_call (id, user_id, conversation_id, message_id, call_id, server, name, arguments, result, is_error, started_at, duration_ms)
             values ('0190f1c2-0000-7000-8000-000000000004', 'old-user', '0190f1c2-0000-7000-8000-000000000001', '0190f1c2-0000-7000-8000-000000000003', 'call_1', 'todo', 'add_task', '{"title":"keep rows"}', '{"ok":true}', false, now(), 3);
           insert into conversation_event (id, user_id, conversation_id, position, kind, turn_id, message_id, created_at)
             values ('0190f1c2-0000-7000-8000-000000000005', 'old-user', '0190f1c2-0000-7000-8000-000000000001', 1, 'turn_started', gen_random_uuid(), '0190f1c2-0000-7000-8000-000000000003', now());
           insert into task (id, user_id, title, completed, created_at, updated_at) values ('0190f1c2-0000-7000-8000-000000000006', 'old-user', 'keep rows', false, now(), now());`,
        );
        expect(await migrate(orm)).toEqual(migrationsList.slice(before + 1).map((m) => m.name));
        const counts = await db.query(
          `select (select count(*)::int from conversation) as c, (select count(*)::int from message) as m, (select count(*)::int from tool_call) as t,
                  (select count(*)::int from conversation_event) as e, (select count(*)::int from task) as k`,
        );
        expect(counts.rows).toEqual([{ c: 1, m: 2, t: 1, e: 1, k: 1 }]);
        expect((await constraints(db)).find((c) => c.name === 'message_pkey')?.columns).toEqual(['user_id', 'id']);
      } finally {
        await db.end();
        await orm.close();
      }
      const upgraded = await startTestServer({ database });
      try {
        const client = await upgraded.client('old-user');
        const read = await client.request<{
          conversation: { title: string; messages: { edges: { node: { content: string; toolCalls: { name: string }[] } }[] } };
        }>(
          '{ conversation(id: "0190f1c2-0000-7000-8000-000000000001") { title messages(first: 10) { edges { node { content toolCalls { name } } } } } }',
        );
        expect(read.conversation).toEqual({
          title: 'Kept',
          messages: {
            edges: [
              { node: { content: 'add a task to keep rows', toolCalls: [] } },
              { node: { content: 'Added.', toolCalls: [{ name: 'add_task' }] } },
            ],
          },
        });
        const next = await send(client, 'list my tasks', '0190f1c2-0000-7000-8000-000000000001');
        expect(next.assistantMessage.status).toBe('COMPLETE');
        expect(next.assistantMessage.seq).toBe(4);
      } finally {
        await upgraded.close();
      }
    } finally {
      await database.drop();
    }
  });
});
