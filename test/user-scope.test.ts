/**
 * The rule the statement recorder applies to every statement of the suite (`test/support/server.ts`
 * hands each one to `unscopedReason`; a server that sent one without its user fails the test file
 * when it closes). Here: the rule itself, on the shapes the server sends.
 */
import { describe, expect, it } from 'vitest';
import { unscopedReason } from './support/user-scope.js';

describe('a statement on user data names the user', () => {
  it.each([
    ['a read by id and user', 'select "m0".* from "message" as "m0" where "m0"."id" = ? and "m0"."user_id" = ? limit ?'],
    ['an update by id and user', 'update "conversation" set "turn_id" = ? where "id" = ? and "user_id" = ?'],
    ['a delete by id and user', 'delete from task where id = ? and user_id = ? returning *'],
    [
      'a multi-row insert with the user column',
      'insert into "message" ("id", "conversation_id", "user_id", "seq") values (?, ?, ?, ?), (?, ?, ?, ?)',
    ],
    [
      'an upsert of counters',
      'insert into rate_counter as c (user_id, kind, count, resets_at) values (?, ?::rate_kind, ?::bigint, now()) on conflict (user_id, kind) do update set count = c.count + excluded.count returning kind, count',
    ],
    [
      'a lateral page',
      'select t.* from unnest(?::uuid[]) as p(id) cross join lateral (select * from message t where t.conversation_id = p.id and t.user_id = ? order by t.seq asc limit ?) t',
    ],
    ['a user id among several', 'select "t0".* from "task" as "t0" where "t0"."user_id" in (?, ?)'],
    [
      'a join where each table names the user',
      'select m.id from message m join tool_call t on t.message_id = m.id and t.user_id = m.user_id where m.user_id = ? and m.conversation_id = ?',
    ],
    [
      'two unaliased tables, each with its own predicate',
      'update conversation set event_seq = event_seq + 1 where id = ? and user_id = ? and not exists (select 1 from conversation_event where id = ? and user_id = ?)',
    ],
    [
      'a statement that says it spans users',
      '/* across users */ update conversation c set status = ? from (select user_id, id from conversation where status = ? limit ? for update skip locked) b where c.user_id = b.user_id and c.id = b.id',
    ],
    ['no user table', 'select pg_notify(?, ?) where ?'],
    ['an advisory lock', 'select pg_advisory_xact_lock(?, hashtext(?))'],
    ['a migration', 'create index "turn_waiter_queue_idx" on "turn_waiter" ("conversation_id", "id");'],
    ['the migrations table', 'select * from "mikro_orm_migrations" order by "id" asc'],
    ['transaction control', 'begin'],
  ])('passes %s', (_what, sql) => {
    expect(unscopedReason(sql)).toBeNull();
  });

  it.each([
    [
      'a read by conversation only',
      'select "m0".* from "message" as "m0" where "m0"."conversation_id" = ? and "m0"."seq" = ? limit ?',
      'message',
    ],
    ['an update by id only (a unit-of-work flush)', 'update "conversation" set "turn_id" = ? where "id" = ?', 'conversation'],
    ['a delete by id only', 'delete from "turn_waiter" where "id" = ?', 'turn_waiter'],
    [
      'a read that only selects the user column',
      'select "t0"."user_id", "t0"."id" from "tool_call" as "t0" where "t0"."message_id" in (?)',
      'tool_call',
    ],
    ['an insert without the user column', 'insert into "task" ("id", "title") values (?, ?)', 'insert'],
    ['a count by title', `select count(*)::int as n from task where title = 'x'`, 'task'],
    [
      "a second table joined on the conversation alone (on Citus, not one shard's)",
      'select m.id from message m where m.user_id = ? and exists (select 1 from tool_call t where t.message_id = m.id)',
      'tool_call',
    ],
    [
      'a sweep over all users that does not say so',
      'update conversation c set status = ? from (select user_id, id from conversation where status = ? limit ? for update skip locked) b where c.user_id = b.user_id and c.id = b.id',
      'conversation',
    ],
    [
      'two unaliased tables and one predicate',
      'update conversation set event_seq = 1 where id = ? and user_id = ? and not exists (select 1 from conversation_event where id = ?)',
      'conversation',
    ],
  ])('refuses %s', (_what, sql, named) => {
    expect(unscopedReason(sql)).toContain(named);
  });
});
