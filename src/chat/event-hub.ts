/**
 * The subscribers of this process to conversations' events, fed by one listening connection
 * (`db/signals.ts`) whatever their number. A notification names a conversation and its last
 * position, and carries the events when they fit; the first subscriber's topic reads the others
 * from the database once for all its subscribers. Each subscriber keeps the position it last
 * gave its client and reads back from the database whatever it has not seen (a resume with
 * `after:`, a notification missed while the listener reconnected, more than its inbox holds), so
 * that a client sees every event once, in order, whichever instance wrote it.
 *
 * Memory stays bounded: a subscriber's inbox holds at most `INBOX_MAX` events (past that it drops
 * them and reads them back when it gets there), and a client whose transport holds more than
 * `backlogMax` bytes unsent, and does not take them within `DRAIN_WAIT_MS`, is dropped with
 * SLOW_CONSUMER (it resumes with `after:`).
 *
 * A deleted conversation ends its streams with NOT_FOUND: told by the deletion's notification, or,
 * polling, by finding the conversation gone.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import { lastPosition, noticeEvents, parseNotice, readEvents } from '../db/stores/events.js';
import { AppError, badInput, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { ConversationEvent, EventStreamOptions } from './events.js';

/** Events read from the database per statement. */
const READ_PAGE = 200;
/** Events an inbox holds before it drops them (to be read back from the database). */
const INBOX_MAX = 500;
/** How long a client whose connection holds more than `backlogMax` unsent has to take it before it is dropped. */
const DRAIN_WAIT_MS = 5_000;
const DRAIN_POLL_MS = 20;

export type EventHub = {
  /** Told of every payload on the events channel; null after the listener reconnected (notifications may have been missed). */
  notice(payload: string | null): void;
  /**
   * The events of the user's conversation after `options.after` (null: from now on), then live.
   * NOT_FOUND when the conversation is not the user's; BAD_USER_INPUT for a position it has not reached.
   */
  stream(
    em: EntityManager,
    userId: string,
    conversationId: string,
    options: EventStreamOptions,
  ): Promise<AsyncIterableIterator<ConversationEvent>>;
  /** How many subscribers this process has now. */
  size(): number;
  /** Ends every stream. */
  close(): void;
};

type Subscriber = {
  /** The last position given to the client. */
  last: number;
  /** The highest position known to exist. */
  known: number;
  /** Events told, not yet given: in order, possibly with gaps. */
  inbox: ConversationEvent[];
  /** Its conversation was deleted: the stream ends with NOT_FOUND. */
  deleted: boolean;
  wake(): void;
  end(): void;
};

type Topic = {
  userId: string;
  em: EntityManager;
  subscribers: Set<Subscriber>;
  /** The read under way, if any: one at a time. */
  reading: Promise<void> | null;
  /** The last position given to the subscribers. */
  read: number;
  /** The last position a notification (or the poll) said exists. */
  wanted: number;
  /** Told of more while reading. */
  again: boolean;
};

export function createEventHub(options: {
  log: Logger;
  backlogMax: number;
  /**
   * Without notifications (no LISTEN session: `db/signals.ts`'s `pollingSignals`): every this many
   * ms, each topic with subscribers reads its conversation's events after the last it read.
   */
  pollMs?: number;
}): EventHub {
  // By conversation, then by user: only its owner gets past `stream`'s check, but anyone may try.
  const topics = new Map<string, Map<string, Topic>>();
  const allTopics = () => [...topics.values()].flatMap((byUser) => [...byUser.values()]);
  let closed = false;

  // Private: gives `events` (in order) to every subscriber of `topic`.
  const deliver = (topic: Topic, events: ConversationEvent[]) => {
    const last = events.at(-1)?.position ?? 0;
    topic.read = Math.max(topic.read, last);
    for (const sub of topic.subscribers) {
      sub.known = Math.max(sub.known, last);
      for (const event of events) if (event.position > sub.last && sub.inbox.length < INBOX_MAX) sub.inbox.push(event);
      sub.wake();
    }
  };

  // Private: one read at a time per topic, from what it has given so far up to `until`.
  const readFor = (conversationId: string, topic: Topic, until: number) => {
    topic.wanted = Math.max(topic.wanted, until);
    if (topic.reading) {
      // Told of more while reading: one more round once this one is done.
      topic.again = true;
      return;
    }
    topic.again = false;
    topic.reading = (async () => {
      try {
        while (topic.read < topic.wanted && topic.subscribers.size > 0) {
          const events = await readEvents(topic.em, topic.userId, conversationId, topic.read, READ_PAGE);
          if (events.length === 0) break;
          deliver(topic, events);
        }
      } catch (error) {
        options.log.warn({ err: error, conversationId }, 'could not read events; subscribers read them back themselves');
        for (const sub of topic.subscribers) {
          sub.known = Math.max(sub.known, topic.wanted);
          sub.wake();
        }
      } finally {
        topic.reading = null;
        if (topic.again) readFor(conversationId, topic, topic.wanted);
      }
    })();
  };

  // Private: the streams of a deleted conversation end (its events went with it).
  const endDeleted = (conversationId: string) => {
    for (const topic of topics.get(conversationId)?.values() ?? [])
      for (const sub of topic.subscribers) {
        sub.deleted = true;
        sub.end();
      }
  };

  // Private: the poll, when there are no notifications: per topic with subscribers, its last
  // position (a deleted conversation has none), then a read when there is more (none while a read
  // of it is under way).
  const polling = new WeakSet<Topic>();
  const poll = async (conversationId: string, topic: Topic) => {
    if (polling.has(topic)) return;
    polling.add(topic);
    try {
      const last = await lastPosition(topic.em, topic.userId, conversationId);
      if (last === null) endDeleted(conversationId);
      else if (last > topic.read) readFor(conversationId, topic, last);
    } catch (error) {
      options.log.warn({ err: error, conversationId }, 'could not poll for events; trying again at the next poll');
    } finally {
      polling.delete(topic);
    }
  };
  const poller =
    options.pollMs === undefined
      ? undefined
      : setInterval(() => {
          for (const [conversationId, byUser] of topics)
            for (const topic of byUser.values()) if (topic.subscribers.size > 0 && !topic.reading) void poll(conversationId, topic);
        }, options.pollMs);
  poller?.unref();

  return {
    notice(payload) {
      if (payload === null) {
        // Reconnected: anything may have been missed; every subscriber looks in the database.
        for (const topic of allTopics())
          for (const sub of topic.subscribers) {
            sub.known = Number.MAX_SAFE_INTEGER;
            sub.wake();
          }
        return;
      }
      const notice = parseNotice(payload);
      const byUser = notice && topics.get(notice.conversationId);
      if (!notice || !byUser) return;
      if (notice.deleted) {
        endDeleted(notice.conversationId);
        return;
      }
      for (const topic of byUser.values()) {
        const events = noticeEvents(topic.em, notice);
        const first = events?.[0];
        if (events && first && first.position <= topic.read + 1) deliver(topic, events);
        // Read once for all its subscribers (they would each read it themselves if told first).
        else if (notice.last > topic.read) readFor(notice.conversationId, topic, notice.last);
      }
    },

    async stream(em, userId, conversationId, { after, backlog, signal }) {
      if (closed)
        throw new AppError('SLOW_CONSUMER', 'This instance is shutting down; resume on another with after: the last cursor received');
      let wakeUp: (() => void) | null = null;
      let ended = false;
      const sub: Subscriber = {
        last: 0,
        known: 0,
        inbox: [],
        deleted: false,
        wake() {
          wakeUp?.();
        },
        end() {
          ended = true;
          wakeUp?.();
        },
      };
      // Subscribed before the current position is read: nothing committed after it is missed.
      const byUser = topics.get(conversationId) ?? new Map<string, Topic>();
      topics.set(conversationId, byUser);
      const own = byUser.get(userId) ?? { userId, em, subscribers: new Set(), reading: null, read: 0, wanted: 0, again: false };
      byUser.set(userId, own);
      own.subscribers.add(sub);
      const leave = () => {
        own.subscribers.delete(sub);
        if (own.subscribers.size === 0 && byUser.get(userId) === own) byUser.delete(userId);
        if (byUser.size === 0 && topics.get(conversationId) === byUser) topics.delete(conversationId);
        signal?.removeEventListener('abort', sub.end);
      };
      try {
        const current = await lastPosition(em, userId, conversationId);
        if (current === null) throw notFound('Conversation');
        if (after !== null && after > current) throw badInput(`after is past the conversation's last event (${current})`, 'after');
        sub.last = after ?? current;
        sub.known = Math.max(sub.known, current);
        own.read = Math.max(own.read, current);
      } catch (error) {
        leave();
        throw error;
      }
      signal?.addEventListener('abort', sub.end);
      if (signal?.aborted) sub.end();

      // Private: a client whose transport holds too much unsent gets a moment to take it (a page
      // read back is written at once), then is dropped, not buffered for.
      const waitForRoom = async () => {
        if (!backlog) return;
        const deadline = Date.now() + DRAIN_WAIT_MS;
        while (backlog() > options.backlogMax) {
          if (sub.deleted) throw conversationDeleted();
          if (ended || Date.now() >= deadline) {
            throw new AppError(
              'SLOW_CONSUMER',
              'The client reads events more slowly than they come; resume with after: the last cursor received',
            );
          }
          await sleep(DRAIN_POLL_MS);
        }
      };

      async function* events(): AsyncGenerator<ConversationEvent> {
        try {
          while (!ended && !closed) {
            // What the inbox has in order, then what the database has that the inbox lacks.
            const next = sub.inbox.shift();
            if (next) {
              if (next.position !== sub.last + 1) {
                if (next.position > sub.last + 1) sub.known = Math.max(sub.known, next.position);
                if (next.position <= sub.last) continue;
                sub.inbox.unshift(next);
              } else {
                await waitForRoom();
                sub.last = next.position;
                yield next;
                continue;
              }
            }
            if (sub.known > sub.last) {
              const read = await readEvents(em, userId, conversationId, sub.last, READ_PAGE);
              for (const event of read) {
                if (ended) return;
                await waitForRoom();
                sub.last = event.position;
                yield event;
              }
              if (read.length < READ_PAGE) sub.known = sub.last;
              sub.inbox = sub.inbox.filter((event) => event.position > sub.last);
              continue;
            }
            await new Promise<void>((resolve) => {
              wakeUp = resolve;
              if (ended || closed || sub.inbox.length > 0 || sub.known > sub.last) resolve();
            });
            wakeUp = null;
          }
          if (sub.deleted) throw conversationDeleted();
        } finally {
          leave();
        }
      }
      const iterator = events();
      // A stream given up before its first event never runs the generator's `finally`.
      const giveUp = iterator.return.bind(iterator);
      iterator.return = (value) => {
        leave();
        return giveUp(value);
      };
      return iterator;
    },

    size: () => allTopics().reduce((sum, topic) => sum + topic.subscribers.size, 0),

    close() {
      closed = true;
      if (poller) clearInterval(poller);
      for (const topic of allTopics()) for (const sub of topic.subscribers) sub.end();
    },
  };
}

// Private: how the stream of a deleted conversation ends.
function conversationDeleted(): AppError {
  return new AppError('NOT_FOUND', 'The conversation was deleted; its events went with it');
}
