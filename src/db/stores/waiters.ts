/**
 * The waiter store: every statement on `turn_waiter`, the queue of requests waiting for a
 * conversation (`chat/queue.ts` has its rules). Each function acts for one user and filters by
 * `user_id`: a conversation's waiters are all its owner's.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { Conversation, TurnWaiter } from '../../entities/index.js';

/** Deletes the waiters of the user's conversation that expired before `before` (their process died). */
export async function deleteExpiredWaiters(em: EntityManager, userId: string, conversationId: string, before: Date): Promise<void> {
  await em.nativeDelete(TurnWaiter, { conversation: conversationId, userId, expiresAt: { $lt: before } });
}

/** Adds a waiter to the queue of the user's conversation; returns its id, which grows in arrival order. */
export async function insertWaiter(em: EntityManager, userId: string, conversationId: string, expiresAt: Date): Promise<string> {
  const waiter = new TurnWaiter(em.getReference(Conversation, conversationId, { wrapped: true }), userId, expiresAt);
  return String(await em.insert(waiter));
}

/** Moves the expiry of the user's waiter `id`; false when it is gone. */
export async function touchWaiter(em: EntityManager, userId: string, id: string, expiresAt: Date): Promise<boolean> {
  return (await em.nativeUpdate(TurnWaiter, { id, userId }, { expiresAt })) > 0;
}

export async function deleteWaiter(em: EntityManager, userId: string, id: string): Promise<void> {
  await em.nativeDelete(TurnWaiter, { id, userId });
}

/** The id of the first waiter of the user's conversation still alive at `now`, or null. */
export async function queueHead(em: EntityManager, userId: string, conversationId: string, now: Date): Promise<string | null> {
  const head = await em.findOne(
    TurnWaiter,
    { conversation: conversationId, userId, expiresAt: { $gt: now } },
    { orderBy: { id: 'asc' }, fields: ['id'], disableIdentityMap: true },
  );
  return head?.id ?? null;
}
