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

type Row = { kind: RateKind; count: string | number; retry_after_ms: string | number };

const RETURNING = ' returning kind, count, ceil(extract(epoch from resets_at - now()) * 1000) as retry_after_ms';

/** Adds `counts` to the user's counters in one statement; returns them as they now are. */
export async function addToCounters(em: EntityManager, userId: string, counts: Count[]): Promise<Counted[]> {
  if (counts.length === 0) return [];
  const { sql, params } = upsert(userId, counts);
  const rows = await em.execute<Row[]>(sql + RETURNING, params);
  return rows.map((row) => ({ kind: row.kind, count: Number(row.count), retryAfterMs: Math.max(1, Number(row.retry_after_ms)) }));
}

/** The same addition as a `with` clause, to put before a statement that runs anyway (one round trip saved). */
export function addToCountersWith(userId: string, counts: Count[]): { sql: string; params: unknown[] } {
  const { sql, params } = upsert(userId, counts);
  return { sql: `with counted as (${sql}) `, params };
}

// Private: one upsert of some counters of one user. Within its window a row's count grows; past
// it, the count starts again from this addition and the window is moved. (Every `set` expression
// reads the row as it was.) Rows are always in the same order of kinds, so that concurrent turns
// of one user lock them in the same order.
function upsert(userId: string, counts: Count[]): { sql: string; params: unknown[] } {
  const values = counts.map(() => `(?, ?::rate_kind, ?::bigint, now() + make_interval(secs => ?::float8))`).join(', ');
  const sql =
    `insert into rate_counter as c (user_id, kind, count, resets_at) values ${values} ` +
    `on conflict (user_id, kind) do update set ` +
    `count = case when c.resets_at > now() then c.count + excluded.count else excluded.count end, ` +
    `resets_at = case when c.resets_at > now() then c.resets_at else excluded.resets_at end`;
  return { sql, params: counts.flatMap((count) => [userId, count.kind, count.add, count.windowMs / 1000]) };
}
