/**
 * The retention store: the sweeper's two statements, the only ones on `conversation` that act for
 * every user at once. Each changes one batch of conversations in one statement (its own short
 * transaction): it picks them `for update skip locked`, so that sweeps running at the same moment
 * on several instances take disjoint rows and never wait on each other or on a turn's start, and
 * changes each picked row by its own `(user_id, id)`. The rules (which conversations, in which
 * order) are the sweeper's, in `chat/sweeper.ts`.
 *
 * A conversation whose turn holds a live lease is never picked: it is not changed under a running
 * turn. Each walks its partial index on `last_message_at`, oldest activity first: the active
 * conversations (`conversation_expire_idx`), those not archived (`conversation_archive_idx`).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { ACROSS_USERS } from './across-users.js';

/** One batch of a sweep: conversations inactive since before `cutoff`, changed at `now`, at most `limit`. */
export type SweepBatch = { cutoff: Date; now: Date; limit: number };

/**
 * Expires up to `limit` ACTIVE conversations with no message and no change since before `cutoff`
 * (a reopen, an unarchive or a rename restarts the clock: the sweeper never writes to an ACTIVE
 * row except to take it out of ACTIVE), storing `now` as `expires_at`. Returns their ids.
 */
export async function expireInactive(em: EntityManager, { cutoff, now, limit }: SweepBatch): Promise<string[]> {
  const rows = await em.execute<{ id: string }[]>(
    `${ACROSS_USERS}update conversation c set status = 'expired', expires_at = ?, updated_at = ? ` +
      'from (select user_id, id from conversation ' +
      `where status = 'active' and last_message_at < ? and updated_at < ? and (turn_id is null or lease_expires_at <= ?) ` +
      'order by last_message_at limit ? for update skip locked) b ' +
      'where c.user_id = b.user_id and c.id = b.id returning c.id',
    [now, now, cutoff, cutoff, now, limit],
  );
  return rows.map((row) => row.id);
}

/**
 * Archives up to `limit` conversations inactive since before `cutoff`: ACTIVE ones with no message
 * and no change since (as `expireInactive`), EXPIRED ones with no message since. Stores `now` as
 * `archived_at`; `expires_at` of an expired one stays. Returns their ids.
 */
export async function archiveInactive(em: EntityManager, { cutoff, now, limit }: SweepBatch): Promise<string[]> {
  const rows = await em.execute<{ id: string }[]>(
    `${ACROSS_USERS}update conversation c set status = 'archived', archived_at = ?, updated_at = ? ` +
      'from (select user_id, id from conversation ' +
      `where status <> 'archived' and last_message_at < ? and (status = 'expired' or updated_at < ?) ` +
      'and (turn_id is null or lease_expires_at <= ?) ' +
      'order by last_message_at limit ? for update skip locked) b ' +
      'where c.user_id = b.user_id and c.id = b.id returning c.id',
    [now, now, cutoff, cutoff, now, limit],
  );
  return rows.map((row) => row.id);
}
