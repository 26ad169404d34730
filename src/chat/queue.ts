/**
 * The queue of requests waiting for a conversation (`ifBusy: ENQUEUE`), kept in PostgreSQL so
 * that waiters on every instance take their turns in arrival order: a waiter is a `turn_waiter`
 * row whose id (a UUIDv7) is its ticket, kept alive while its request waits, passed over once it
 * expires (its process died). Nothing is held while a request waits.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { Conversation, TurnWaiter } from '../entities/index.js';
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

/** Joins the queue of `conversationId`; the ticket is the row's id, growing in arrival order. */
export async function joinQueue(em: EntityManager, conversationId: string, userId: string): Promise<string> {
  // Waiters whose process died are passed over once expired; they are swept here, off the hot path.
  await em.nativeDelete(TurnWaiter, { conversation: conversationId, expiresAt: { $lt: new Date(Date.now() - WAITER_TTL_MS) } });
  const waiter = new TurnWaiter(
    em.getReference(Conversation, conversationId, { wrapped: true }),
    userId,
    new Date(Date.now() + WAITER_TTL_MS),
  );
  await em.persist(waiter).flush();
  return waiter.id;
}

/** Keeps a waiter alive; false when it is gone (it expired and was passed over). */
export async function stillWaiting(em: EntityManager, ticket: string): Promise<boolean> {
  return (await em.nativeUpdate(TurnWaiter, { id: ticket }, { expiresAt: new Date(Date.now() + WAITER_TTL_MS) })) > 0;
}

export async function leaveQueue(em: EntityManager, ticket: string): Promise<void> {
  await em.nativeDelete(TurnWaiter, { id: ticket });
}

/**
 * Inside step 4's transaction: the queue's head goes first. A request without a ticket may run only when nobody
 * waits; a waiter only when no live waiter arrived before it. Its ticket is used up here.
 */
export async function takeTurnFromQueue(em: EntityManager, conversationId: string, ticket: string | null, now: Date): Promise<void> {
  const head = await em.findOne(
    TurnWaiter,
    { conversation: conversationId, expiresAt: { $gt: now } },
    { orderBy: { id: 'asc' }, fields: ['id'], refresh: true },
  );
  if (head && head.id !== ticket) throw new ConversationBusy(conversationId, QUEUE_RETRY_MS);
  if (ticket) await em.nativeDelete(TurnWaiter, { id: ticket });
}
