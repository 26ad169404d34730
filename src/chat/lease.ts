/**
 * The turn lease beyond its taking (step 4) and its release (step 7): renewed while the turn runs,
 * so that only a dead instance's turn can be taken over, and released early, with the reply marked
 * failed, when a turn will not reach step 7.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { signalTurnEnded } from '../db/signals.js';
import { extendLease as moveLease, releaseLease } from '../db/stores/conversations.js';
import { appendEvents } from '../db/stores/events.js';
import { updateMessage } from '../db/stores/messages.js';
import { MessageStatus } from '../entities/index.js';
import { ConversationEventKind } from './events.js';
import { event } from './turn-events.js';

/** The turn a failure path ends: the conversation it holds, its user, its reply in progress. */
export type TurnToEnd = { conversationId: string; userId: string; replyId: string; turnId: string };

/**
 * Ends a turn that will not reach step 7 (an error between the two transactions, or a shutdown):
 * its reply is marked failed and the conversation freed at once, instead of being held until the
 * lease runs out. Only while the turn still holds the conversation: a turn whose lease was taken
 * over leaves both alone (a retry elsewhere may be resuming that very reply). One short
 * transaction; returns whether the turn was still ours.
 */
export async function failTurn(
  em: EntityManager,
  turn: TurnToEnd,
  content = 'The turn failed before the assistant answered.',
): Promise<boolean> {
  const failed = event(ConversationEventKind.TURN_FAILED, { error: { code: 'TURN_INTERRUPTED', message: content } });
  return em.transactional(async (em) => {
    // While the lease is still the turn's: subscribers hear the turn failed.
    await appendEvents(em, { ...turn, events: [failed], text: '' });
    if (!(await releaseLease(em, turn.userId, turn.conversationId, turn.turnId))) return false;
    await updateMessage(em, turn.userId, turn.replyId, { status: MessageStatus.FAILED, content }, MessageStatus.IN_PROGRESS);
    // Delivered on commit: requests waiting for this conversation, on any instance, look again.
    await signalTurnEnded(em, turn.conversationId);
    return true;
  });
}

/**
 * Frees the leases of turns this process will not finish (it is shutting down) and marks their
 * replies failed, so that a retry on another instance can run at once instead of waiting.
 */
export async function abandonTurns(em: EntityManager, turns: Iterable<TurnToEnd>): Promise<number> {
  let abandoned = 0;
  for (const turn of turns) {
    if (await failTurn(em, turn, 'The turn was interrupted: the server shut down before the assistant answered.')) abandoned += 1;
  }
  return abandoned;
}

/**
 * Pushes the lease of `turn` forward by `leaseMs`. The update matches on the turn id: a lease lost
 * to another instance stays lost. Returns whether the turn still held it.
 */
export function extendLease(em: EntityManager, turn: Omit<TurnToEnd, 'replyId'>, leaseMs: number): Promise<boolean> {
  return moveLease(em, turn.userId, turn.conversationId, turn.turnId, new Date(Date.now() + leaseMs));
}
