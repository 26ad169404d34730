/**
 * Per-user rate limits and quotas, counted in PostgreSQL so that they hold across instances.
 *
 * Each (user, kind) has one `rate_counter` row: a count and when its window ends. One upsert
 * adds to the count while the window lasts, or starts a new window (count reset, end moved) once
 * it has ended, and returns the new count: the table stays one row per user and kind, with
 * nothing to sweep. A window starts at a user's first counted action after the last one ended,
 * so a refused client is told exactly when it may try again (`retryAfterMs`), and users' windows
 * do not all roll over at the same instant. Clocks are PostgreSQL's (`now()`), shared by every
 * instance. A limit of 0 is off: nothing is counted for it.
 *
 * - A turn: one statement in the turn's first transaction (`countTurn`), so that a refused turn
 *   rolls its increments back with everything else; its model tokens are added by the turn's
 *   last transaction, folded into a statement it runs anyway (`addTokensSql`).
 * - `/mcp`: one statement per POST that carries `tools/call`s (`countMcpCalls`).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { RateLimits } from '../config.js';
import { RateKind } from '../entities/index.js';
import { rateLimited } from '../errors.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** The limits a turn is held to. */
export type TurnLimits = Pick<RateLimits, 'turnsPerMinute' | 'conversationsPerHour' | 'tokensPerDay'>;

type Count = { kind: RateKind; add: number; windowMs: number };
type Row = { kind: RateKind; count: string | number; retry_after_ms: string | number };
type Counted = { kind: RateKind; count: number; retryAfterMs: number };

const RETURNING = ' returning kind, count, ceil(extract(epoch from resets_at - now()) * 1000) as retry_after_ms';

/**
 * Counts a turn that begins, and the conversation it creates (when `createsConversation`), and
 * reads the day's model tokens, in one statement; throws RATE_LIMITED when the turns or the
 * conversations go over their limit or the tokens have reached their quota. Run it inside the
 * turn's first transaction, and only for a turn that really runs (not a replay, not when busy).
 */
export async function countTurn(em: EntityManager, userId: string, limits: TurnLimits, createsConversation: boolean): Promise<void> {
  const counts: Count[] = [];
  if (limits.turnsPerMinute > 0) counts.push({ kind: RateKind.TURNS, add: 1, windowMs: MINUTE_MS });
  if (limits.conversationsPerHour > 0 && createsConversation) counts.push({ kind: RateKind.CONVERSATIONS, add: 1, windowMs: HOUR_MS });
  // Adding 0 reads the day's count (and starts the day at a user's first turn).
  if (limits.tokensPerDay > 0) counts.push({ kind: RateKind.TOKENS, add: 0, windowMs: DAY_MS });
  if (counts.length === 0) return;

  const { sql, params } = upsert(userId, counts);
  const rows = await em.execute<Row[]>(sql + RETURNING, params);
  const refusals = rows.map(counted).flatMap((row) => {
    if (row.kind === RateKind.TURNS && row.count > limits.turnsPerMinute)
      return [{ row, what: `${limits.turnsPerMinute} turns per minute` }];
    if (row.kind === RateKind.CONVERSATIONS && row.count > limits.conversationsPerHour) {
      return [{ row, what: `${limits.conversationsPerHour} new conversations per hour` }];
    }
    if (row.kind === RateKind.TOKENS && row.count >= limits.tokensPerDay)
      return [{ row, what: `${limits.tokensPerDay} model tokens per day` }];
    return [];
  });
  if (refusals.length === 0) return;
  // Every limit that refused must have rolled over before a retry can pass.
  const retryAfterMs = Math.max(...refusals.map(({ row }) => row.retryAfterMs));
  throw rateLimited(
    `Rate limit reached: ${refusals.map(({ what }) => what).join(', ')}; try again in ${Math.ceil(retryAfterMs / 1000)} s`,
    retryAfterMs,
  );
}

/**
 * The turn's model tokens added to the day's count, as a `with` clause to put before a statement
 * the turn's last transaction runs anyway; null when there is nothing to count (quota off, no usage).
 */
export function addTokensSql(userId: string, tokens: number, limits: TurnLimits): { sql: string; params: unknown[] } | null {
  if (limits.tokensPerDay === 0 || tokens <= 0) return null;
  const { sql, params } = upsert(userId, [{ kind: RateKind.TOKENS, add: tokens, windowMs: DAY_MS }]);
  return { sql: `with counted_tokens as (${sql}) `, params };
}

/**
 * Counts `calls` tool calls through `/mcp` (one statement); throws RATE_LIMITED when they go over
 * `perMinute`. Refused calls count too: a client that keeps hammering stays refused until the
 * window ends, and no longer.
 */
export async function countMcpCalls(em: EntityManager, userId: string, calls: number, perMinute: number): Promise<void> {
  if (perMinute === 0 || calls === 0) return;
  const { sql, params } = upsert(userId, [{ kind: RateKind.MCP_CALLS, add: calls, windowMs: MINUTE_MS }]);
  const [row] = await em.execute<Row[]>(sql + RETURNING, params);
  if (!row) throw new Error('the rate counter upsert returned no row');
  const { count, retryAfterMs } = counted(row);
  if (count > perMinute) {
    throw rateLimited(
      `Rate limit reached: ${perMinute} MCP tool calls per minute; try again in ${Math.ceil(retryAfterMs / 1000)} s`,
      retryAfterMs,
    );
  }
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

function counted(row: Row): Counted {
  return { kind: row.kind, count: Number(row.count), retryAfterMs: Math.max(1, Number(row.retry_after_ms)) };
}
