/**
 * Titles by the model, off the reply's path. Once a conversation's first turn is stored and
 * answered, the agent (when it makes titles: `Agent.title`) is asked for a short title, and the
 * first message's title is replaced by it. The reply never waits for it and never fails by it: a
 * model that errs, is slow past `TITLE_TIMEOUT_MS` or answers nothing usable leaves the first
 * message's title, as does a process that stops meanwhile (no state is lost: the title is only
 * better). A title the user set meanwhile (`updateConversation`) is kept: the new one is written
 * only over the title it replaces.
 *
 * `createTitles` is made once per process, by the chat; it owns the requests in flight, which
 * `close` cuts short at shutdown, before the database closes.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Agent } from '../agent/types.js';
import { retitle } from '../db/stores/conversations.js';
import type { Logger } from '../log.js';

/** How long the model gets to title a conversation. */
export const TITLE_TIMEOUT_MS = 20_000;

export type TitleJob = {
  /** Where the title is written: a unit of work of its own (the request's ends with the reply). */
  em: EntityManager;
  userId: string;
  conversationId: string;
  /** The title it replaces: the first message's. */
  replaces: string;
  message: string;
  reply: string;
  log: Logger;
};

export type Titles = {
  /** Asks for a title of the conversation of `job` and stores it, later; returns at once. */
  request(job: TitleJob): void;
  /** Aborts the requests in flight and waits for them to end. */
  close(): Promise<void>;
};

/** The titles of this process, by `agent` (nothing is asked when it makes none). */
export function createTitles(agent: Agent): Titles {
  // Private: the requests in flight, each with the controller that aborts it.
  const inFlight = new Map<Promise<void>, AbortController>();

  return {
    request(job) {
      if (!agent.title) return;
      const controller = new AbortController();
      const done = retitleWith(agent, job, AbortSignal.any([controller.signal, AbortSignal.timeout(TITLE_TIMEOUT_MS)]));
      inFlight.set(done, controller);
      void done.finally(() => inFlight.delete(done));
    },

    async close() {
      for (const controller of inFlight.values()) controller.abort();
      await Promise.allSettled(inFlight.keys());
    },
  };
}

// Private: one title asked and stored; never throws (a failure is logged and the title stays).
async function retitleWith(agent: Agent, job: TitleJob, signal: AbortSignal): Promise<void> {
  const { log, conversationId } = job;
  try {
    const made = (await agent.title?.({ message: job.message, reply: job.reply, signal })) ?? null;
    if (made === null) {
      log.info({ conversationId }, 'the model gave no usable title; the first message’s stays');
      return;
    }
    const stored = await retitle(job.em, job.userId, conversationId, job.replaces, made);
    log.debug({ conversationId, stored }, stored ? 'conversation titled by the model' : 'title set meanwhile; the model’s is dropped');
  } catch (error) {
    log.warn({ err: error, conversationId }, 'could not title the conversation by the model; the first message’s title stays');
  }
}
