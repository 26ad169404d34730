/**
 * The queue of requests waiting for a conversation (`ifBusy: ENQUEUE`), kept in PostgreSQL so
 * that waiters on every instance take their turns in arrival order: a waiter is a `turn_waiter`
 * row whose id (a UUIDv7) is its ticket, kept alive while its request waits, passed over once it
 * expires (its process died). Nothing is held while a request waits.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import * as waiters from '../db/stores/waiters.js';
import { AppError } from '../errors.js';

/** How long a waiter stays in the queue without showing it is alive. */
const WAITER_TTL_MS = 5_000;
/** What a busy answer suggests when the queue, not a lease, is in the way. */
const QUEUE_RETRY_MS = 250;

/** CONVERSATION_BUSY, knowing which conversation (a first message's retry learns it only here). */
export class ConversationBusy extends AppError {
  constructor(
    readonly conversationId: string,
    retryAfterMs: number,
  ) {
    super('CONVERSATION_BUSY', 'Another turn is running in this conversation', { details: { retryAfterMs: Math.max(1, retryAfterMs) } });
  }
}

/** Joins the queue of the user's conversation; the ticket is the row's id, growing in arrival order. */
export async function joinQueue(em: EntityManager, userId: string, conversationId: string): Promise<string> {
  // Waiters whose process died are passed over once expired; they are swept here, off the hot path.
  await waiters.deleteExpiredWaiters(em, userId, conversationId, new Date(Date.now() - WAITER_TTL_MS));
  return waiters.insertWaiter(em, userId, conversationId, new Date(Date.now() + WAITER_TTL_MS));
}

/** Keeps a waiter alive; false when it is gone (it expired and was passed over). */
export function stillWaiting(em: EntityManager, userId: string, ticket: string): Promise<boolean> {
  return waiters.touchWaiter(em, userId, ticket, new Date(Date.now() + WAITER_TTL_MS));
}

export function leaveQueue(em: EntityManager, userId: string, ticket: string): Promise<void> {
  return waiters.deleteWaiter(em, userId, ticket);
}

/**
 * Inside step 4's transaction: the queue's head goes first. A request without a ticket may run only when nobody
 * waits; a waiter only when no live waiter arrived before it. Its ticket is used up here.
 */
export async function takeTurnFromQueue(
  em: EntityManager,
  userId: string,
  conversationId: string,
  ticket: string | null,
  now: Date,
): Promise<void> {
  const head = await waiters.queueHead(em, userId, conversationId, now);
  if (head !== null && head !== ticket) throw new ConversationBusy(conversationId, QUEUE_RETRY_MS);
  if (ticket) await waiters.deleteWaiter(em, userId, ticket);
}
