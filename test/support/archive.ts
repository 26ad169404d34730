/**
 * Helpers of the archive tests: the CLI's environment for a database, a migrated fresh database,
 * the stored rows of the archived tables column by column, and rows with odd values seeded in SQL.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { createTestDatabase, type TestDatabase } from './database.js';
import { runCli, serverEnv } from './process.js';

/** The environment of `stateless-chat` on the database at `url` (never an embedded one). */
export const cliEnv = (url: string, settings: Record<string, string> = {}) =>
  serverEnv({ DATABASE_URL: url, DATA_DIR: '/nonexistent-archive-data-dir', ...settings });

/** A fresh database, migrated by `stateless-chat migrate`, with a plain SQL client on it. */
export async function migratedDatabase(): Promise<TestDatabase & { db: pg.Client }> {
  const database = await createTestDatabase();
  const migrate = await runCli(['migrate'], cliEnv(database.url), 60_000);
  expect(migrate.code, migrate.stderr).toBe(0);
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  return {
    ...database,
    db,
    async drop() {
      await db.end();
      await database.drop();
    },
  };
}

/** A new temporary directory for archive files. */
export const scratchDir = () => mkdtemp(path.join(tmpdir(), 'stateless-chat-archive-'));

/** The runtime-only columns of `conversation` that an archive leaves out. */
const RUNTIME = "- 'turn_id' - 'lease_expires_at' - 'waiting' - 'event_seq'";

/**
 * Every stored row of conversation, message (its generated tsvector included) and tool_call, as
 * PostgreSQL prints each column (timestamps with all their digits), by id; for the users
 * `userIds` when given.
 */
export async function storedRows(db: pg.Client, userIds?: string[]): Promise<Record<'conversation' | 'message' | 'tool_call', unknown[]>> {
  const where = userIds ? 'where user_id = any($1)' : '';
  const params = userIds ? [userIds] : [];
  const rows = async (table: string, minus = '') =>
    (await db.query(`select (to_jsonb(t) ${minus})::text as row from ${table} t ${where} order by id`, params)).rows.map((r) => r.row);
  return { conversation: await rows('conversation', RUNTIME), message: await rows('message'), tool_call: await rows('tool_call') };
}

/**
 * Seeds, in SQL, conversations of `userId` with values a turn would not make: unicode and emoji,
 * quotes, backslashes and `?` in text, nested JSON metadata, microsecond timestamps, a failed
 * message without usage, another search configuration, a failed tool call with a null result,
 * an archived conversation, an expired one, an empty one. Returns their ids.
 */
export async function seedOddities(db: pg.Client, userId: string): Promise<string[]> {
  const [a, b, c] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  await db.query(
    `insert into conversation (id, user_id, title, status, metadata, created_at, updated_at, last_message_at, expires_at, archived_at,
       message_count, next_seq, prompt_tokens, completion_tokens, total_tokens)
     values ($2, $1, 'Ünïcødé 🚀 "quotes" \\ back?slash', 'archived', '{"z": [1, 2.5, {"ü": null}], "a": {"nested": true}, "emoji": "🎉"}',
       '2026-01-02 03:04:05.123+00', '2026-01-03 04:05:06.654321+00', '2026-01-02 03:04:09.999+00', '2026-01-04 00:00:00.000001+00',
       '2026-01-05 12:00:00.5+00', 3, 5, 11, 22, 33),
       ($3, $1, null, 'expired', null, '2025-12-31 23:59:59.999+00', '2026-01-01 00:00:00+00', '2025-12-31 23:59:59.999+00',
       '2026-01-01 00:00:00+00', null, 0, 1, 0, 0, 0),
       ($4, $1, 'line
break', 'active', '{}', now(), now(), now(), null, null, 1, 2, 0, 0, 0)`,
    [userId, a, b, c],
  );
  const [m1, m2, m3, m4] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  await db.query(
    `insert into message (id, conversation_id, user_id, seq, role, content, status, client_message_id, model, prompt_tokens,
       completion_tokens, total_tokens, created_at, search_config)
     values ($3, $2, $1, 1, 'user', 'Hello? 👋 "hi" \\n not a newline, a real one:
 and a tab	end', 'complete', 'client-key-🔑', null, null, null, null, '2026-01-02 03:04:05.123456+00', 'english'),
       ($4, $2, $1, 2, 'assistant', '', 'failed', null, 'gpt-odd', null, null, null, '2026-01-02 03:04:06.000001+00', 'simple'),
       ($5, $2, $1, 4, 'assistant', 'done ✅', 'complete', null, 'gpt-odd', 11, 22, 33, '2026-01-02 03:04:09.999999+00', 'simple'),
       ($6, $7, $1, 1, 'system', 'Be brief.', 'in_progress', null, null, 0, 0, 0, now(), 'simple')`,
    [userId, a, m1, m2, m3, m4, c],
  );
  await db.query(
    `insert into tool_call (id, message_id, conversation_id, user_id, call_id, server, name, arguments, result, is_error, started_at, duration_ms)
     values ($3, $4, $2, $1, 'call_odd', 'todo', 'add_task', '{"title": "mïlk 🥛", "tags": ["a", "b"], "n": 1.5e3}', null, true,
       '2026-01-02 03:04:07.777777+00', 0),
       ($5, $4, $2, $1, 'call_two', 'search', 'find', '[1, "two", {"three": 3}]', '"just a string"', false,
       '2026-01-02 03:04:08.000000+00', 123456)`,
    [userId, a, crypto.randomUUID(), m3, crypto.randomUUID()],
  );
  return [a, b, c];
}
