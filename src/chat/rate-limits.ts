/**
 * Per-user rate limits and quotas, counted in PostgreSQL so that they hold across instances
 * (`db/stores/rate-counters.ts`: one row per user and kind, one upsert per count). A window
 * starts at a user's first counted action after the last one ended, so a refused client is told
 * exactly when it may try again (`retryAfterMs`), and users' windows do not all roll over at the
 * same instant. Clocks are PostgreSQL's (`now()`), shared by every instance. A limit of 0 is off:
 * nothing is counted for it.
 *
 * - A turn: counted (`turnCounts`) by the statement of its first transaction that stores its
 *   messages, and refused (`checkTurn`) before that transaction commits, so that a refused turn
 *   rolls its increments back with everything else; its model tokens (`tokenCounts`) are added by
 *   the turn's last statement.
 * - A conversation made empty (`createConversation`): counted against the same conversations per
 *   hour as one a first message makes, in the transaction that stores it (`countNewConversation`).
 * - `/mcp`: one statement per POST that carries `tools/call`s (`countMcpCalls`).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { RateLimits } from '../config.js';
import { addToCounters, type Count, type Counted } from '../db/stores/rate-counters.js';
import { RateKind } from '../entities/index.js';
import { rateLimited } from '../errors.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** The limits a turn is held to. */
export type TurnLimits = Pick<RateLimits, 'turnsPerMinute' | 'conversationsPerHour' | 'tokensPerDay'>;

/**
 * What a turn that begins counts: the turn, the conversation it creates (when
 * `createsConversation`), and 0 model tokens (which reads the day's count and starts the day at a
 * user's first turn). Counted inside the turn's first transaction, in the statement that stores
 * its messages, and only for a turn that really runs (not a replay, not when busy); `checkTurn`
 * then refuses it, rolling all of it back, when a limit is over.
 */
export function turnCounts(limits: TurnLimits, createsConversation: boolean): Count[] {
  const counts: Count[] = [];
  if (limits.turnsPerMinute > 0) counts.push({ kind: RateKind.TURNS, add: 1, windowMs: MINUTE_MS });
  if (limits.conversationsPerHour > 0 && createsConversation) counts.push({ kind: RateKind.CONVERSATIONS, add: 1, windowMs: HOUR_MS });
  if (limits.tokensPerDay > 0) counts.push({ kind: RateKind.TOKENS, add: 0, windowMs: DAY_MS });
  return counts;
}

/** How long the window of turns per minute is (the turn's one-statement start counts with it). */
export const TURNS_WINDOW_MS = MINUTE_MS;

/** Throws RATE_LIMITED when the turns or the conversations went over their limit, or the tokens have reached their quota. */
export function checkTurn(counted: Counted[], limits: TurnLimits): void {
  const refusals = counted.flatMap((row) => {
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

/** The turn's model tokens, added to the day's count by the turn's last statement; none when the quota is off. */
export function tokenCounts(tokens: number, limits: TurnLimits): Count[] {
  return limits.tokensPerDay === 0 || tokens <= 0 ? [] : [{ kind: RateKind.TOKENS, add: tokens, windowMs: DAY_MS }];
}

/**
 * Counts a conversation made empty against `conversationsPerHour` (one statement); throws
 * RATE_LIMITED when it goes over, and the caller's transaction rolls the count back with the rest.
 */
export async function countNewConversation(em: EntityManager, userId: string, conversationsPerHour: number): Promise<void> {
  if (conversationsPerHour === 0) return;
  const counted = await addToCounters(em, userId, [{ kind: RateKind.CONVERSATIONS, add: 1, windowMs: HOUR_MS }]);
  checkTurn(counted, { turnsPerMinute: 0, conversationsPerHour, tokensPerDay: 0 });
}

/**
 * Counts `calls` tool calls through `/mcp` (one statement); throws RATE_LIMITED when they go over
 * `perMinute`. Refused calls count too: a client that keeps hammering stays refused until the
 * window ends, and no longer.
 */
export async function countMcpCalls(em: EntityManager, userId: string, calls: number, perMinute: number): Promise<void> {
  if (perMinute === 0 || calls === 0) return;
  const [row] = await addToCounters(em, userId, [{ kind: RateKind.MCP_CALLS, add: calls, windowMs: MINUTE_MS }]);
  if (!row) throw new Error('the rate counter upsert returned no row');
  const { count, retryAfterMs } = row;
  if (count > perMinute) {
    throw rateLimited(
      `Rate limit reached: ${perMinute} MCP tool calls per minute; try again in ${Math.ceil(retryAfterMs / 1000)} s`,
      retryAfterMs,
    );
  }
}
