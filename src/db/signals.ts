/**
 * Wake-ups for requests waiting their turn (`ifBusy: ENQUEUE`), across every instance (and, on the
 * same connection, the notifications of conversations' events for `chat/event-hub.ts`): when a turn
 * ends while requests wait for its conversation, its finishing transaction sends
 * `NOTIFY turn_ended, '<conversation id>'`, and each
 * process holds one connection that LISTENs and wakes its local waiters of that conversation.
 *
 * A notification is only a hint to look again: the queue itself is in PostgreSQL, and waiters
 * poll on a timer anyway, so a lost notification (the listener reconnecting after the database
 * restarted, say) costs a little latency, never a turn.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import type { Logger } from '../log.js';
import { EVENTS_CHANNEL } from './stores/events.js';

export const TURN_ENDED_CHANNEL = 'turn_ended';

/**
 * Inside a turn's closing transaction: the notice that a turn of `conversationId` ended, delivered
 * on commit to every instance (unless `notify` is false), after `first` (a `with` clause that has
 * to run in that transaction anyway, such as counting the turn's tokens): one statement for both.
 */
export async function signalTurnEnded(
  em: EntityManager,
  conversationId: string,
  options: { notify?: boolean; first?: { sql: string; params: unknown[] } | null } = {},
): Promise<void> {
  const { notify = true, first } = options;
  if (!notify && !first) return;
  await em.execute(`${first?.sql ?? ''}select pg_notify(?, ?) where ?`, [
    ...(first?.params ?? []),
    TURN_ENDED_CHANNEL,
    conversationId,
    notify,
  ]);
}

export type TurnSignals = {
  /** Resolves when a turn of `conversationId` ends, or after `ms`, whichever comes first. */
  waitForTurnEnd(conversationId: string, ms: number): Promise<void>;
  close(): Promise<void>;
};

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;

/**
 * Starts listening on `url` (reconnecting in the background after a failure). The same connection
 * hears the conversations' events (`db/stores/events.ts`): each payload goes to `onEvents`, and
 * null after a reconnect, when some may have been missed.
 */
export async function listenForTurnEnds(url: string, log: Logger, onEvents?: (payload: string | null) => void): Promise<TurnSignals> {
  const waiters = new Map<string, Set<() => void>>();
  let client: pg.Client | undefined;
  let closed = false;
  let connected = false;
  let delay = RECONNECT_MIN_MS;
  let timer: NodeJS.Timeout | undefined;

  const wake = (conversationId: string) => {
    for (const resolve of waiters.get(conversationId) ?? []) resolve();
  };

  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, application_name: 'stateless-chat listener' });
    next.on('notification', (message) => {
      if (message.channel === TURN_ENDED_CHANNEL && message.payload) wake(message.payload);
      if (message.channel === EVENTS_CHANNEL && message.payload) onEvents?.(message.payload);
    });
    const lost = (error?: Error) => {
      if (client !== next) return;
      if (error) log.warn({ err: error }, 'turn listener connection lost; waiters poll until it is back');
      client = undefined;
      next.end().catch(() => undefined);
      scheduleReconnect();
    };
    next.on('error', lost);
    next.on('end', () => lost());
    try {
      await next.connect();
      await next.query(`LISTEN ${TURN_ENDED_CHANNEL}; LISTEN ${EVENTS_CHANNEL}`);
    } catch (error) {
      next.end().catch(() => undefined);
      throw error;
    }
    const reconnected = connected;
    client = next;
    connected = true;
    delay = RECONNECT_MIN_MS;
    if (reconnected) onEvents?.(null);
  };

  // Private: one pending reconnect at a time, the pause doubling up to RECONNECT_MAX_MS.
  const scheduleReconnect = () => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      connect().catch((error: unknown) => {
        log.debug({ err: error }, 'turn listener could not reconnect yet');
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
        scheduleReconnect();
      });
    }, delay);
    timer.unref();
  };

  await connect();
  return {
    waitForTurnEnd(conversationId, ms) {
      return new Promise<void>((resolve) => {
        const set = waiters.get(conversationId) ?? new Set();
        waiters.set(conversationId, set);
        const done = () => {
          clearTimeout(timeout);
          set.delete(done);
          if (set.size === 0) waiters.delete(conversationId);
          resolve();
        };
        const timeout = setTimeout(done, ms);
        timeout.unref();
        set.add(done);
      });
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const set of waiters.values()) for (const resolve of set) resolve();
      await client?.end().catch(() => undefined);
    },
  };
}

/**
 * Without a LISTEN session (DATABASE_POOLED=transaction and no LISTEN_DATABASE_URL: a transaction
 * pooler keeps no session to listen on): no wake-ups at all. Waiters wait out their pause (at most
 * 400 ms; they poll anyway), and the event hub polls its topics (`createEventHub`'s `pollMs`).
 */
export function pollingSignals(): TurnSignals {
  const pending = new Set<() => void>();
  return {
    waitForTurnEnd(_conversationId, ms) {
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timeout);
          pending.delete(done);
          resolve();
        };
        const timeout = setTimeout(done, ms);
        timeout.unref();
        pending.add(done);
      });
    },
    async close() {
      for (const done of [...pending]) done();
    },
  };
}
