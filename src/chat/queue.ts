/**
 * The queue of requests waiting for a conversation (`ifBusy: ENQUEUE`), kept in PostgreSQL so
 * that waiters on every instance take their turns in arrival order: a waiter is a `turn_waiter`
 * row whose id is its ticket, served in the order the requests arrived, kept alive while its
 * request waits, passed over once it expires (its process died). Nothing is held while a request
 * waits, and only the head of the queue tries to begin when a turn ends.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { readLocked } from '../db/stores/conversations.js';
import * as waiters from '../db/stores/waiters.js';
import type { Conversation } from '../entities/index.js';
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

/**
 * Inside step 4's transaction, which holds the conversation's lock and found it busy: the request
 * joins the queue (or, already in it, stays alive there). Joining under the lock that decided
 * "busy" leaves no moment in which the request is neither running nor queued. The queue is served
 * in the order the requests reached their instances (`arrivedAt`), not the order in which they got
 * here: the way to this point (a pooled connection, the lock) can take a loaded instance hundreds
 * of milliseconds. The ticket is the row's id.
 */
export async function joinQueue(
  em: EntityManager,
  userId: string,
  conversationId: string,
  ticket: string | null,
  arrivedAt: Date,
): Promise<string> {
  if (ticket !== null && (await waiters.touchWaiter(em, userId, ticket, new Date(Date.now() + WAITER_TTL_MS)))) return ticket;
  // Waiters whose process died are passed over once expired; they are swept here, off the hot path.
  await waiters.deleteExpiredWaiters(em, userId, conversationId, new Date(Date.now() - WAITER_TTL_MS));
  return waiters.insertWaiter(em, userId, conversationId, arrivedAt, new Date(Date.now() + WAITER_TTL_MS));
}

/**
 * Keeps a waiter alive and tells whether a live waiter is ahead of it (one statement, no lock):
 * only a request that heads the queue tries step 4 again. False when the ticket is gone (it
 * expired and was passed over): step 4 then queues the request anew.
 */
export function waitersAhead(em: EntityManager, userId: string, ticket: string): Promise<boolean> {
  const now = Date.now();
  return waiters.touchAndLookAhead(em, userId, ticket, new Date(now), new Date(now + WAITER_TTL_MS));
}

/** Leaves the queue (given up, or begun); under the conversation's lock, like every change to the queue. */
export async function leaveQueue(em: EntityManager, userId: string, conversationId: string, ticket: string): Promise<void> {
  await em.transactional(async (em) => {
    if (await readLocked(em, userId, conversationId)) await waiters.deleteWaiter(em, userId, conversationId, ticket);
  });
}

/** CONVERSATION_BUSY because the queue, not a lease, is in the way. */
export const queueBusy = (conversationId: string): ConversationBusy => new ConversationBusy(conversationId, QUEUE_RETRY_MS);

/**
 * Inside step 4's transaction, with the head of the queue read under the conversation's lock:
 * the queue's head goes first. A request without a ticket may run only when nobody waits; a
 * waiter only when no live waiter arrived before it. False when it may not run; when it may, its
 * ticket is used up here.
 */
export async function takeTurnFromQueue(
  em: EntityManager,
  conversation: Conversation,
  ticket: string | null,
  head: string | null,
  now: Date,
): Promise<boolean> {
  const { userId, id } = conversation;
  if (head !== null && head !== ticket) return false;
  if (ticket !== null && head === ticket) await waiters.deleteWaiter(em, userId, id, ticket);
  // Nobody alive waits, yet rows are counted: they expired (their processes died). Swept, and the
  // count back to 0, so that the next turn can start in one statement again.
  else if (conversation.waiting !== 0) await waiters.clearExpiredQueue(em, userId, id, now);
  return true;
}
