/**
 * The retention policy, applied: a sweep archives the conversations inactive for `ARCHIVE_AFTER`
 * and expires the active ones inactive for `CONVERSATION_TTL` (0 = never, for either). Run by
 * `npm run cli -- sweep` (cron) and, when `SWEEP_INTERVAL` is set, by a timer this module starts and
 * stops.
 *
 * A sweep goes in batches, each one short statement (`db/stores/retention.ts`), no transaction held
 * across batches; it archives first, then expires, so that a conversation past both ends ARCHIVED
 * in one change, never EXPIRED on the way. Sweeps on many instances at once take disjoint rows
 * (`for update skip locked`): each conversation is changed once. A conversation whose turn is
 * running (its lease alive), or whose row a turn's start holds at that moment, is left for a later
 * sweep. Sweeping twice changes nothing the second time.
 *
 * The state is what is stored: an ACTIVE conversation past its TTL that no sweep has reached yet
 * still takes messages (and a message restarts its clock).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Retention } from '../config.js';
import { archiveInactive, expireInactive, type SweepBatch } from '../db/stores/retention.js';
import type { Conversation } from '../entities/index.js';
import { ConversationStatus } from '../entities/index.js';
import type { Logger } from '../log.js';

/** What one sweep changed, and in how many statements. */
export type SweepCounts = { expired: number; archived: number; batches: number };

/**
 * Sweeps once, as of `now` (default: the current time): archives, then expires, in batches of
 * `retention.batchSize` until a batch comes back short. Logs the counts at info and returns them.
 */
export async function sweep(em: EntityManager, retention: Retention, log: Logger, now = new Date()): Promise<SweepCounts> {
  const started = performance.now();
  const counts: SweepCounts = { expired: 0, archived: 0, batches: 0 };
  if (retention.archiveAfterMs > 0) {
    counts.archived = await inBatches(counts, (limit) =>
      archiveInactive(em, { cutoff: new Date(now.getTime() - retention.archiveAfterMs), now, limit }),
    );
  }
  if (retention.ttlMs > 0) {
    counts.expired = await inBatches(counts, (limit) =>
      expireInactive(em, { cutoff: new Date(now.getTime() - retention.ttlMs), now, limit }),
    );
  }
  log.info({ ...counts, ms: Math.round(performance.now() - started) }, 'sweep done');
  return counts;

  // Private: runs `batch` until it changes fewer than a full batch; returns how many it changed.
  async function inBatches(total: SweepCounts, batch: (limit: SweepBatch['limit']) => Promise<string[]>): Promise<number> {
    let changed = 0;
    for (;;) {
      const ids = await batch(retention.batchSize);
      total.batches += 1;
      changed += ids.length;
      if (ids.length < retention.batchSize) return changed;
    }
  }
}

/**
 * When an ACTIVE conversation expires, as clients see it (`Conversation.expiresAt`): `ttlMs` after
 * its last message or change, or null when `ttlMs` is 0. The sweeper takes it at its first run
 * after that instant. An EXPIRED conversation's is the instant the sweeper expired it; an ARCHIVED
 * one's is null, unless it had expired before.
 */
export function expiryOf(conversation: Conversation, ttlMs: number): Date | null {
  if (conversation.status !== ConversationStatus.ACTIVE) return conversation.expiresAt;
  if (ttlMs === 0) return null;
  const lastActivity = Math.max(conversation.lastMessageAt.getTime(), conversation.updatedAt.getTime());
  return new Date(lastActivity + ttlMs);
}

/** The in-process sweeper of `startSweeper`. */
export type Sweeper = {
  /** Stops the timer and waits for a sweep under way to end. Never throws. */
  stop(): Promise<void>;
};

/**
 * Sweeps every `retention.sweepIntervalMs` (must be > 0), each time in a unit of work of its own
 * from `fork()`, the first time one interval after the start. Sweeps never overlap: the next is
 * timed from the end of the last. A failed sweep is logged and the next one comes as planned.
 */
export function startSweeper(fork: () => EntityManager, retention: Retention, log: Logger): Sweeper {
  if (!(retention.sweepIntervalMs > 0)) {
    throw new Error(`startSweeper: retention.sweepIntervalMs must be a positive number of milliseconds, got ${retention.sweepIntervalMs}`);
  }
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = sweep(fork(), retention, log)
        .then(
          () => undefined,
          (error: unknown) => log.error({ err: error }, 'sweep failed; the next one comes as planned'),
        )
        .finally(schedule);
    }, retention.sweepIntervalMs);
    // The timer alone does not keep the process alive.
    timer.unref();
  };
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
