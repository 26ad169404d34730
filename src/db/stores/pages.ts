/**
 * Keyset pages, as the stores read them: a direction, a size and the key to start after. Never
 * OFFSET. The cursors clients see are made and checked in `graphql/pagination.ts`.
 */
import type { EntityManager } from '@mikro-orm/postgresql';

/** A page request decoded: which way to read, how many rows, and from which key (exclusive). */
export type Page<K> = { direction: 'forward' | 'backward'; limit: number; cursor: K | null };

export type LateralQuery = {
  table: 'message' | 'tool_call';
  keyColumn: 'seq' | 'id';
  keyType: 'int' | 'uuid';
  conversationIds: string[];
  userId: string;
  page: Page<string | number>;
  /** The columns read (default `*`): `message` leaves out its search columns, which a page never needs. */
  columns?: readonly string[];
  /** More conditions on the child rows: `column = value`. */
  equal?: { column: string; value: unknown }[];
};

/**
 * One page (limit + 1 rows, in page direction) of the rows of each of the user's conversations,
 * in one statement: a LATERAL join runs one indexed keyset range per conversation.
 */
export function lateralPages(em: EntityManager, q: LateralQuery): Promise<Record<string, unknown>[]> {
  const forward = q.page.direction === 'forward';
  const conditions = ['t.conversation_id = p.id', 't.user_id = ?', ...(q.equal ?? []).map((e) => `t.${e.column} = ?`)];
  // The ORM expands array parameters into lists; a PostgreSQL array literal keeps one parameter.
  const params: unknown[] = [`{${q.conversationIds.join(',')}}`, q.userId, ...(q.equal ?? []).map((e) => e.value)];
  if (q.page.cursor !== null) {
    conditions.push(`t.${q.keyColumn} ${forward ? '>' : '<'} ?::${q.keyType}`);
    params.push(q.page.cursor);
  }
  params.push(q.page.limit + 1);
  const sql =
    `select t.* from unnest(?::uuid[]) as p(id) cross join lateral (` +
    `select ${q.columns?.map((column) => `t.${column}`).join(', ') ?? '*'} from ${q.table} t where ${conditions.join(' and ')} ` +
    `order by t.${q.keyColumn} ${forward ? 'asc' : 'desc'} limit ?) t`;
  return em.execute(sql, params);
}

/** How raw rows' timestamps become dates: the driver hands them over as PostgreSQL's text, and the ORM's platform parses it. */
export function dateOf(em: EntityManager): (value: unknown) => Date {
  const platform = em.getPlatform();
  return (value) => (value instanceof Date ? value : platform.parseDate(value as string));
}
