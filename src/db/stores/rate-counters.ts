/**
 * The rate-counter store: every statement on `rate_counter`, one row per (user, kind) holding a
 * count and when its window ends (`chat/rate-limits.ts` has the limits). One upsert adds to the
 * count while the window lasts, or starts a new window (count reset, end moved) once it has ended,
 * and returns the new count: the table stays one row per user and kind, with nothing to sweep.
 * Clocks are PostgreSQL's (`now()`), shared by every instance.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { RateKind } from '../../entities/index.js';

/** An addition to one counter, and the length of the window it starts when the last one ended. */
export type Count = { kind: RateKind; add: number; windowMs: number };
/** A counter after an addition, and how long until its window ends. */
export type Counted = { kind: RateKind; count: number; retryAfterMs: number };

/** A counter row as the upsert returns it (`COUNTED_COLUMNS`); `counted` reads it. */
export type CountedRow = { kind: RateKind; count: string | number; retry_after_ms: string | number };

/** What the upsert returns, for a statement that runs it in a `with` clause and reads it back. */
export const COUNTED_COLUMNS = 'kind, count, ceil(extract(epoch from resets_at - now()) * 1000) as retry_after_ms';

/** Adds `counts` to the user's counters in one statement; returns them as they now are. */
export async function addToCounters(em: EntityManager, userId: string, counts: Count[]): Promise<Counted[]> {
  if (counts.length === 0) return [];
  const { sql, params } = upsertCounters(userId, counts);
  const rows = await em.execute<CountedRow[]>(`${sql} returning ${COUNTED_COLUMNS}`, params);
  return rows.map(counted);
}

export function counted(row: CountedRow): Counted {
  return { kind: row.kind, count: Number(row.count), retryAfterMs: Math.max(1, Number(row.retry_after_ms)) };
}

/**
 * One upsert of some counters of one user, as SQL to run or to put in a `with` clause; with
 * `onlyIf` (an SQL condition), it adds nothing unless the condition holds (the `where` is there
 * in any case: it keeps `on conflict` from being read as a join condition). Within its window a
 * row's count grows; past it, the count starts again from this addition and the window is moved.
 * (Every `set` expression reads the row as it was.) Rows are always in the same order of kinds, so
 * that concurrent turns of one user lock them in the same order.
 */
export function upsertCounters(userId: string, counts: Count[], onlyIf?: string): { sql: string; params: unknown[] } {
  const rows = counts.map(() => `select ?, ?::rate_kind, ?::bigint, now() + make_interval(secs => ?::float8)`).join(' union all ');
  const sql =
    `insert into rate_counter as c (user_id, kind, count, resets_at) ` +
    `select * from (${rows}) as added where ${onlyIf ?? 'true'} ` +
    `on conflict (user_id, kind) do update set ` +
    `count = case when c.resets_at > now() then c.count + excluded.count else excluded.count end, ` +
    `resets_at = case when c.resets_at > now() then c.resets_at else excluded.resets_at end`;
  return { sql, params: counts.flatMap((count) => [userId, count.kind, count.add, count.windowMs / 1000]) };
}
