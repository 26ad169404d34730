/**
 * The recorder's rule: every statement the server sends against a user table names the user.
 *
 * DESIGN.md: every query on user data filters by `user_id` (defense in depth today, the shard key
 * of a distributed PostgreSQL tomorrow). `startTestServer` hands every statement of every test to
 * `unscopedReason`, and a server whose ORM sent one without the user fails the test file when it
 * closes, with the statement. Inserts name the user as a column; every other reference to a user
 * table needs its own `user_id` predicate (`alias.user_id = …`, or for a table named without an
 * alias, a bare `user_id = …` of its own), so that a statement reading a second table joined on
 * `conversation_id` alone is refused: on Citus each table of a statement must be filtered by the
 * user for it to run on one shard (docs/scaling.md). A statement that spans users by design starts
 * with the comment `/* across users *\/`. Migrations (DDL and the migrations table) are not user data.
 */

/** The tables that hold one user's rows. */
export const USER_TABLES = ['conversation', 'message', 'tool_call', 'task', 'turn_waiter', 'rate_counter', 'conversation_event'] as const;

const TABLE = new RegExp(`(?:from|join|into|update)\\s+"?(${USER_TABLES.join('|')})"?(?=[\\s(]|$)`, 'gi');
const DDL = /^\s*(create|alter|drop|comment|set|begin|commit|rollback|savepoint|release|listen|unlisten)\b/i;
const MIGRATIONS = /\bmikro_orm_migrations\b/i;
// The statements that span users by design (sweeps, the archiver, exports of everyone) say so first.
const ACROSS_USERS = /^\s*\/\* across users \*\//i;
const INSERT_WITH_USER = /\binsert\s+into\s+"?\w+"?\s*(?:as\s+\w+\s*)?\(([^)]*)\)/gi;
// A table read, changed or deleted from, and its alias if it has one.
const REFERENCE = new RegExp(
  `\\b(?:from|join|update)\\s+(?:only\\s+)?"?(${USER_TABLES.join('|')})"?(?![\\w"])(?:\\s+(?:as\\s+)?"?(\\w+)"?)?`,
  'gi',
);
// Words that may follow a table in place of an alias.
const NOT_ALIASES = new Set(
  ['where', 'set', 'on', 'using', 'join', 'inner', 'left', 'right', 'full', 'cross', 'natural', 'lateral', 'as', 'select', 'values'].concat(
    ['order', 'group', 'having', 'window', 'limit', 'offset', 'returning', 'for', 'union', 'except', 'intersect'],
  ),
);
// `user_id = …`, `user_id in …`, not preceded by a qualifier.
const BARE_PREDICATE = /(?<![\w."])"?user_id"?\s*(?:=|in\b)/gi;

/** `name.user_id = …` / `… = name.user_id` (a join on the user to a table that names it), quoted or not. */
function qualifiedPredicate(name: string): RegExp {
  const column = `"?${name}"?\\."?user_id"?`;
  return new RegExp(`(?<![\\w."])${column}\\s*(?:=|in\\b)|(?:=|\\bin\\s*\\(?)\\s*${column}(?![\\w"])`, 'i');
}

/**
 * Why `sql` is a statement on user data without the user, or null when it is fine: it touches no
 * user table, or every insert into one has a `user_id` column and every other reference to one
 * filters by it.
 */
export function unscopedReason(sql: string): string | null {
  if (DDL.test(sql) || MIGRATIONS.test(sql) || ACROSS_USERS.test(sql)) return null;
  const tables = [...sql.matchAll(TABLE)].map((match) => match[1]?.toLowerCase());
  if (tables.length === 0) return null;
  for (const insert of sql.matchAll(INSERT_WITH_USER)) {
    if (!/(?:^|[\s,"])user_id"?\s*(?:,|$)/i.test(insert[1] ?? '')) return 'an insert without a user_id column';
  }
  // Inserts name the user in every row; what is left is read, changed or deleted.
  const reads = sql.replace(INSERT_WITH_USER, '');
  let bare = [...reads.matchAll(BARE_PREDICATE)].length;
  const unscoped = new Set<string>();
  for (const [, table = '', alias] of reads.matchAll(REFERENCE)) {
    const name = alias && !NOT_ALIASES.has(alias.toLowerCase()) ? alias : null;
    if (qualifiedPredicate(name ?? table).test(reads)) continue;
    // A table named without an alias takes one bare `user_id` predicate of its own.
    if (name === null && bare > 0) {
      bare -= 1;
      continue;
    }
    unscoped.add(table.toLowerCase());
  }
  return unscoped.size === 0 ? null : `a statement on ${[...unscoped].join(', ')} without a user_id predicate for each`;
}
