/**
 * The recorder's rule: every statement the server sends against a user table names the user.
 *
 * DESIGN.md: every query on user data filters by `user_id` (defense in depth today, the shard key
 * of a distributed PostgreSQL tomorrow). `startTestServer` hands every statement of every test to
 * `unscopedReason`, and a server whose ORM sent one without the user fails the test file when it
 * closes, with the statement. Inserts name the user as a column; every other statement needs a
 * `user_id` predicate. Migrations (DDL and the migrations table) are not user data.
 */

/** The tables that hold one user's rows. */
export const USER_TABLES = ['conversation', 'message', 'tool_call', 'task', 'turn_waiter', 'rate_counter', 'conversation_event'] as const;

const TABLE = new RegExp(`(?:from|join|into|update)\\s+"?(${USER_TABLES.join('|')})"?(?=[\\s(]|$)`, 'gi');
const DDL = /^\s*(create|alter|drop|comment|set|begin|commit|rollback|savepoint|release|listen|unlisten)\b/i;
const MIGRATIONS = /\bmikro_orm_migrations\b/i;
const USER_PREDICATE = /(?:^|[\s(.,"])user_id"?\s*(?:=|in\b|= any\b)/i;
const INSERT_WITH_USER = /\binsert\s+into\s+"?\w+"?\s*(?:as\s+\w+\s*)?\(([^)]*)\)/gi;

/**
 * Why `sql` is a statement on user data without the user, or null when it is fine: it touches no
 * user table, or every insert into one has a `user_id` column and anything else filters by it.
 */
export function unscopedReason(sql: string): string | null {
  if (DDL.test(sql) || MIGRATIONS.test(sql)) return null;
  const tables = [...sql.matchAll(TABLE)].map((match) => match[1]?.toLowerCase());
  if (tables.length === 0) return null;
  const inserts = [...sql.matchAll(INSERT_WITH_USER)];
  for (const insert of inserts) {
    if (!/(?:^|[\s,"])user_id"?\s*(?:,|$)/i.test(insert[1] ?? '')) return 'an insert without a user_id column';
  }
  // Only inserts (a multi-row insert, an upsert): the user is in every row.
  const reads = sql.replace(INSERT_WITH_USER, '');
  const readsUserTable = [...reads.matchAll(TABLE)].some((match) => !/^into$/i.test(match[0].split(/\s/)[0] ?? ''));
  if (!readsUserTable) return null;
  return USER_PREDICATE.test(reads) ? null : `a statement on ${[...new Set(tables)].join(', ')} without a user_id predicate`;
}
