/** Seeding many conversations fast, in SQL, for the benchmark and the browsing tests. */
import type pg from 'pg';

/**
 * Seeds `conversations` conversations of `userId`, each with `messages` messages (user and
 * assistant in turn, a `list_tasks` tool call on every reply), straight in SQL; newest activity
 * first in the order returned.
 */
export async function seed(db: pg.Client, userId: string, conversations: number, messages: number): Promise<string[]> {
  const { rows } = await db.query(
    `insert into conversation (id, user_id, title, created_at, updated_at, last_message_at, message_count, next_seq)
     select gen_random_uuid(), $1, 'seeded ' || i, now(), now(), now() - (i || ' seconds')::interval, $2, $2 + 1
     from generate_series(1, $3) as i returning id`,
    [userId, messages, conversations],
  );
  const ids = rows.map((row) => row.id as string);
  await db.query(
    `insert into message (id, conversation_id, user_id, seq, role, content, status, created_at)
     select gen_random_uuid(), c.id, $1, s, (case when s % 2 = 1 then 'user' else 'assistant' end)::message_role,
            'message ' || s, 'complete', now()
     from unnest($2::uuid[]) as c(id), generate_series(1, $3) as s`,
    [userId, ids, messages],
  );
  await db.query(
    `insert into tool_call (id, message_id, conversation_id, user_id, call_id, server, name, arguments, result, is_error, started_at, duration_ms)
     select gen_random_uuid(), m.id, m.conversation_id, m.user_id, 'call_' || m.seq, 'todo', 'list_tasks', '{}', '{"tasks": []}', false, now(), 1
     from message m where m.user_id = $1 and m.role = 'assistant'`,
    [userId],
  );
  await db.query('analyze');
  return ids;
}
