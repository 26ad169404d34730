/**
 * The purge store: the statements of `archive` and `restore` (`archive/archiver.ts`,
 * `archive/restore.ts`) on the conversation row itself. The choice of a batch to archive spans
 * users (an operator's run over everything), like the sweeper's (`retention.ts`): it reads keys
 * alone, `for update skip locked`, so that archivers running at once take disjoint batches and
 * hold them until their transaction ends. Every other statement names the conversation's user.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ArchiveLocation } from '../../entities/index.js';
import { ACROSS_USERS, acrossUsersUnless } from './across-users.js';
import { iso, ownerConditions } from './archive.js';

/** A conversation an archive run took: its place in the run's order and its counters when taken. */
export type ClaimedConversation = { userId: string; createdAt: string; id: string; messageCount: number; nextSeq: number };

/** Which conversations an archive run takes: ARCHIVED ones, or those with no message since before `cutoff`; never a purged one or one with a live lease. */
const ARCHIVABLE =
  "purged_at is null and (status = 'archived' or last_message_at < ?::timestamptz) and (turn_id is null or lease_expires_at <= now())";

/**
 * Locks, for the caller's transaction, up to `limit` archivable conversations after `after` in
 * `(user_id, created_at, id)` order, passing over those another transaction holds. Returns them.
 */
export function claimArchiveBatch(
  tx: EntityManager,
  cutoff: Date,
  after: Pick<ClaimedConversation, 'userId' | 'createdAt' | 'id'> | null,
  limit: number,
): Promise<ClaimedConversation[]> {
  const params: unknown[] = [cutoff];
  let keyset = '';
  if (after) {
    keyset = 'and (user_id, created_at, id) > (?, ?::timestamptz, ?::uuid) ';
    params.push(after.userId, after.createdAt, after.id);
  }
  return tx.execute<ClaimedConversation[]>(
    `${ACROSS_USERS}select user_id as "userId", ${iso('created_at')} as "createdAt", id, message_count as "messageCount", next_seq as "nextSeq" ` +
      `from conversation where ${ARCHIVABLE} ${keyset}order by user_id, created_at, id limit ? for update skip locked`,
    [...params, limit],
  );
}

/** How many conversations an archive run with `cutoff` would take now, and their messages (`--dry-run`). */
export async function countArchivable(em: EntityManager, cutoff: Date): Promise<{ conversations: number; messages: number }> {
  const [row] = await em.execute<{ conversations: number; messages: string | number }[]>(
    `${ACROSS_USERS}select count(*)::int as conversations, coalesce(sum(message_count), 0)::bigint as messages from conversation where ${ARCHIVABLE}`,
    [cutoff],
  );
  return { conversations: row?.conversations ?? 0, messages: Number(row?.messages ?? 0) };
}

/**
 * Purges the user's conversation `id` in the caller's transaction, when it is as it was archived
 * (not purged, the same `message_count` and `next_seq`): deletes its tool calls and messages and
 * marks it ARCHIVED (`archived_at` kept, else now), purged now, at `location`. Its counters and
 * `updated_at` stay. Returns false, changing nothing, when it is not as it was.
 */
export async function purgeConversation(tx: EntityManager, taken: ClaimedConversation, location: ArchiveLocation): Promise<boolean> {
  const rows = await tx.execute<{ id: string }[]>(
    "update conversation set status = 'archived', archived_at = coalesce(archived_at, now()), purged_at = now(), archive_location = ?::jsonb " +
      'where user_id = ? and id = ? and purged_at is null and message_count = ? and next_seq = ? returning id',
    [JSON.stringify(location), taken.userId, taken.id, taken.messageCount, taken.nextSeq],
  );
  if (rows.length === 0) return false;
  await tx.execute('delete from conversation_event where user_id = ? and conversation_id = ?', [taken.userId, taken.id], 'run');
  await tx.execute('delete from tool_call where user_id = ? and conversation_id = ?', [taken.userId, taken.id], 'run');
  await tx.execute('delete from message where user_id = ? and conversation_id = ?', [taken.userId, taken.id], 'run');
  return true;
}

/** A purged conversation: whose, which, and where its archive is. */
export type PurgedConversation = { userId: string; id: string; nextSeq: number; location: ArchiveLocation };

/** Which purged conversations a restore takes; one condition at least. */
export type PurgedFilter = { conversationIds?: readonly string[] | null; userId?: string | null; manifest?: string | null };

/** The purged conversations passing `filter` (keys and locations alone), in `(user_id, id)` order. */
export function purgedConversations(em: EntityManager, filter: PurgedFilter): Promise<PurgedConversation[]> {
  const { where, params } = ownerConditions(filter);
  where.unshift('purged_at is not null');
  if (filter.manifest != null) {
    where.push("archive_location->>'manifest' = ?");
    params.push(filter.manifest);
  }
  return em.execute<PurgedConversation[]>(
    `${acrossUsersUnless(filter.userId)}select user_id as "userId", id, next_seq as "nextSeq", archive_location as location from conversation ` +
      `where ${where.join(' and ')} order by user_id, id`,
    params,
  );
}

/**
 * Locks the user's conversation `id` for the transaction when it is still purged at `location`;
 * false otherwise (restored meanwhile, or archived again elsewhere).
 */
export async function lockPurged(tx: EntityManager, userId: string, id: string, location: ArchiveLocation): Promise<boolean> {
  const rows = await tx.execute<{ id: string }[]>(
    'select id from conversation where user_id = ? and id = ? and purged_at is not null and archive_location = ?::jsonb for update',
    [userId, id, JSON.stringify(location)],
  );
  return rows.length > 0;
}

/** Marks the user's conversation `id` restored: its messages are back (status and every other column as they are). */
export async function clearPurged(tx: EntityManager, userId: string, id: string): Promise<void> {
  await tx.execute('update conversation set purged_at = null, archive_location = null where user_id = ? and id = ?', [userId, id], 'run');
}
