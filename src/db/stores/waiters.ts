/**
 * The waiter store: every statement on `turn_waiter`, the queue of requests waiting for a
 * conversation (`chat/queue.ts` has its rules). Each function acts for one user and filters by
 * `user_id`: a conversation's waiters are all its owner's.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { TurnWaiter } from '../../entities/index.js';

// Every insert and delete of a waiter moves the conversation's `waiting` count in the same
// statement; all of them run under the conversation's lock (`chat/queue.ts`).

/** Adds a waiter that arrived at `arrivedAt` to the queue of the user's conversation; returns its id. */
export async function insertWaiter(
  em: EntityManager,
  userId: string,
  conversationId: string,
  arrivedAt: Date,
  expiresAt: Date,
): Promise<string> {
  const [row] = await em.execute<{ id: string | number }[]>(
    'with w as (insert into turn_waiter (conversation_id, user_id, expires_at, arrived_at) values (?, ?, ?, ?) returning id) ' +
      'update conversation set waiting = waiting + 1 where id = ? and user_id = ? returning (select id from w) as id',
    [conversationId, userId, expiresAt, arrivedAt, conversationId, userId],
  );
  if (!row) throw new Error(`conversation ${conversationId} is gone`);
  return String(row.id);
}

/** Deletes the user's waiter `id` (when it is there) from the conversation's queue. */
export async function deleteWaiter(em: EntityManager, userId: string, conversationId: string, id: string): Promise<void> {
  await deleteCounted(em, userId, conversationId, 'id = ?', [id]);
}

/** Deletes the waiters of the user's conversation that expired before `before` (their process died). */
export async function deleteExpiredWaiters(em: EntityManager, userId: string, conversationId: string, before: Date): Promise<void> {
  await deleteCounted(em, userId, conversationId, 'expires_at < ?', [before]);
}

/**
 * With no live waiter left at `now` (the caller read that under the lock): deletes the expired
 * ones and sets the count to 0, which also mends a count that went wrong.
 */
export async function clearExpiredQueue(em: EntityManager, userId: string, conversationId: string, now: Date): Promise<void> {
  await em.execute(
    'with gone as (delete from turn_waiter where conversation_id = ? and user_id = ? and expires_at <= ? returning id) ' +
      'update conversation set waiting = 0 where id = ? and user_id = ?',
    [conversationId, userId, now, conversationId, userId],
  );
}

// Private: deletes some waiters of the user's conversation and takes them off its count.
async function deleteCounted(em: EntityManager, userId: string, conversationId: string, where: string, params: unknown[]): Promise<void> {
  await em.execute(
    `with gone as (delete from turn_waiter where conversation_id = ? and user_id = ? and ${where} returning id) ` +
      'update conversation set waiting = waiting - (select count(*) from gone) where id = ? and user_id = ? and exists (select 1 from gone)',
    [conversationId, userId, ...params, conversationId, userId],
  );
}

/** Moves the expiry of the user's waiter `id`; false when it is gone. */
export async function touchWaiter(em: EntityManager, userId: string, id: string, expiresAt: Date): Promise<boolean> {
  return (await em.nativeUpdate(TurnWaiter, { id, userId }, { expiresAt })) > 0;
}

/**
 * Moves the expiry of the user's waiter `id` and tells whether a waiter of its conversation still
 * alive at `now` arrived before it; false too when it is gone.
 */
export async function touchAndLookAhead(em: EntityManager, userId: string, id: string, now: Date, expiresAt: Date): Promise<boolean> {
  const [row] = await em.execute<{ ahead: boolean }[]>(
    'with me as (update turn_waiter set expires_at = ? where id = ? and user_id = ? returning id, conversation_id, arrived_at) ' +
      'select exists (select 1 from turn_waiter w where w.conversation_id = me.conversation_id and w.user_id = ? ' +
      'and w.expires_at > ? and (w.arrived_at, w.id) < (me.arrived_at, me.id)) as ahead from me',
    [expiresAt, id, userId, userId, now],
  );
  return row?.ahead ?? false;
}

/** The ticket of the first waiter of the user's conversation, in arrival order, still alive at `now`; null when none. */
export async function queueHead(em: EntityManager, userId: string, conversationId: string, now: Date): Promise<string | null> {
  const [head] = await em.execute<{ id: string | number }[]>(
    'select id from turn_waiter where conversation_id = ? and user_id = ? and expires_at > ? order by arrived_at, id limit 1',
    [conversationId, userId, now],
  );
  return head ? String(head.id) : null;
}
