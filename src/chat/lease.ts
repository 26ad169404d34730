/**
 * The turn lease beyond its taking (step 4) and its release (step 7): renewed while the turn runs,
 * so that only a dead instance's turn can be taken over, and released early, with the reply marked
 * failed, when a turn will not reach step 7.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import { signalTurnEnded } from '../db/signals.js';
import { extendLease as moveLease, releaseLease } from '../db/stores/conversations.js';
import { appendEvents } from '../db/stores/events.js';
import { updateMessage } from '../db/stores/messages.js';
import { MessageStatus } from '../entities/index.js';
import type { Logger } from '../log.js';
import { ConversationEventKind } from './events.js';
import { noteDrift, noteLostLease, noteMissedRenewal } from './lease-health.js';
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

/** How long a renewal that found the lease gone waits for its turn to say it ended, before it counts the lease lost. */
const ENDED_GRACE_MS = 100;

/** How often a lease of `leaseMs` is renewed: a third of it (two renewals may fail before it runs out), at least 50 ms. */
export function renewalInterval(leaseMs: number): number {
  return Math.max(Math.floor(leaseMs / 3), 50);
}

/**
 * Keeps the lease of `turn`, taken just now, for as long as the turn runs: renews it every
 * `renewalInterval(leaseMs)` (a third of the lease), each time for `leaseMs` from then, one renewal
 * at a time (the next is timed from the start of the last, so a slow database never piles them up).
 *
 * A stall of the event loop (a long synchronous task, a GC pause, a starved CPU) delays the timer:
 * its lateness is measured on every renewal (`maxDriftMs` in `lease-health.ts`), and a renewal that
 * runs after half the lease has passed since the last good one is logged with the drift and counted
 * (`missedRenewals()`): the lease came close to running out, and another instance could have taken
 * the turn over. A renewal that finds the lease lost (taken over after it ran out) is logged and
 * counted (`lostLeases()`) and renewing stops: a lost lease stays lost (the turn's reply still lands
 * in its own slot if it finishes); one that only raced the turn's own end (step 7 freeing the lease
 * while the renewal waited for the row) is not counted. A renewal that fails (the database unreachable) is logged and the next
 * one tried at its time. `stop()` ends it; a renewal then in flight is ignored.
 */
export function keepLease(fork: () => EntityManager, turn: Omit<TurnToEnd, 'replyId'>, leaseMs: number, log: Logger): { stop(): void } {
  const everyMs = renewalInterval(leaseMs);
  const about = { conversationId: turn.conversationId, turnId: turn.turnId, leaseMs };
  // When the expiry in force was set: step 4 took the lease a moment ago.
  let renewedAt = Date.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const schedule = (dueAt: number) => {
    const delay = Math.max(dueAt - Date.now(), 0);
    const setAt = Date.now();
    timer = setTimeout(() => void renew(Date.now() - setAt - delay), delay);
    timer.unref();
  };
  const renew = async (driftMs: number) => {
    const startedAt = Date.now();
    noteDrift(driftMs);
    const sinceRenewedMs = startedAt - renewedAt;
    if (sinceRenewedMs > leaseMs / 2) {
      noteMissedRenewal();
      log.warn(
        { ...about, driftMs, sinceRenewedMs },
        sinceRenewedMs >= leaseMs
          ? 'turn lease renewed after it ran out (the event loop stalled or the database was slow): another instance may have taken the turn over'
          : 'turn lease renewed late, past half the lease (the event loop stalled or the database was slow)',
      );
    }
    let held: boolean | null;
    try {
      held = await extendLease(fork(), turn, leaseMs);
    } catch (error) {
      log.warn({ err: error, ...about }, 'lease renewal failed; trying again at the next renewal');
      held = null;
    }
    if (stopped) return;
    if (held === false) {
      // Step 7 may have freed the lease while this renewal waited for the row: that turn stops its
      // renewal the moment its statement returns, which may come just after this one's answer.
      await sleep(ENDED_GRACE_MS);
      if (stopped) return;
      noteLostLease();
      log.warn(
        { ...about, driftMs, sinceRenewedMs },
        'turn lease lost: the conversation is no longer held by this turn (the lease ran out and another turn took it over, or shutdown freed it); renewing stopped',
      );
      return;
    }
    // The expiry now set is at least `leaseMs` after `startedAt`.
    if (held) renewedAt = startedAt;
    schedule(startedAt + everyMs);
  };

  schedule(renewedAt + everyMs);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
