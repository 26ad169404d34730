/**
 * The chat: everything transports and shutdown need of the turn, behind one small surface.
 *
 * `createChat` is made once per process and owns what the turns of this process share: the set
 * of turns running now (so that shutdown can free their conversations), and the making of each
 * turn's tool box from the shared MCP servers, the tool limits and the todo server's options.
 * Resolvers, the REST route and shutdown call it and nothing deeper; the turn itself, its seven
 * steps in order, is `runTurn` in `turn.ts`. Every call gets the request's unit of work: the
 * chat holds no entity manager, and nothing of a conversation survives between requests here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Agent, ToolInfo } from '../agent/types.js';
import type { Viewer } from '../auth/viewer.js';
import type { Config } from '../config.js';
import type { TurnSignals } from '../db/signals.js';
import { isUuid } from '../entities/ids.js';
import type { Conversation } from '../entities/index.js';
import { AppError, badInput } from '../errors.js';
import type { Logger } from '../log.js';
import { connectTurnTools, type TurnToolsOptions } from '../mcp/turn-tools.js';
import type { EventHub } from './event-hub.js';
import type { ConversationEvent, EventStreamOptions } from './events.js';
import { abandonTurns } from './lease.js';
import type { StateChange } from './lifecycle.js';
import * as lifecycle from './lifecycle.js';
import { expiryOf } from './sweeper.js';
import { createTitles } from './titles.js';
import { type RunningTurn, runTurn, type SendMessageInput, type TurnResult, type TurnSettings } from './turn.js';
import type { TurnObserver } from './turn-report.js';

/** How long shutdown waits for turns started without waiting, by default. */
const DRAIN_MS = 25_000;

export type ChatOptions = {
  agent: Agent;
  /** The tools a turn is offered, described; the chat connects the todo server once and opens a tool box per turn. */
  tools: TurnToolsOptions;
  settings: TurnSettings;
  /** `CONVERSATION_TTL` in milliseconds, for `Chat.expiresAt` (default 0: conversations never expire). */
  conversationTtlMs?: number;
  /** Where the chat logs when a call brings no logger of its own (shutdown, for one). */
  log: Logger;
  /** Wakes requests waiting their turn when a turn ends; without it they only poll. */
  signals?: TurnSignals;
  /** The subscribers of this process to conversations' events (`event-hub.ts`). */
  events: EventHub;
  /** How long shutdown waits for turns started with `wait: false` before it releases them (default 25 s). */
  drainMs?: number;
  /** Told of every turn's tool calls, queue waits and end (the metrics); none: turns are only logged. */
  observe?: TurnObserver;
};

type CreateInput = Parameters<typeof lifecycle.createConversation>[2];
type UpdateInput = Parameters<typeof lifecycle.updateConversation>[2];

/**
 * A turn as `sendMessage` answers it. With `wait: false` it is answered once the turn has begun:
 * the reply is IN_PROGRESS and `eventsAfter` is the position after which its events come (null
 * for a turn that was answered whole: a replay, or a turn that waited).
 */
export type SentMessage = TurnResult & { eventsAfter: number | null };

/** What the transport knows of the request a turn answers. */
export type RequestInfo = { log?: Logger; receivedAt?: Date };

export type Chat = {
  /**
   * Runs one turn of `viewer` in a conversation (a new one when `input.conversationId` is absent),
   * in `em`, the request's own unit of work. `request` gives its logger (default: the chat's) and
   * when it reached this instance (its place in the conversation's queue; default: now).
   * Throws `AppError`s (BAD_USER_INPUT, NOT_FOUND, CONVERSATION_BUSY, RATE_LIMITED, ...).
   */
  sendMessage(em: EntityManager, viewer: Viewer, input: SendMessageInput, request?: RequestInfo): Promise<SentMessage>;
  /**
   * The events of the viewer's conversation `conversationId` after `options.after` (null: from now
   * on), then live as they happen on any instance (`event-hub.ts`). BAD_USER_INPUT for a malformed
   * id or a position the conversation has not reached, NOT_FOUND when it is not the viewer's; the
   * iterator throws SLOW_CONSUMER when the client falls too far behind.
   */
  conversationEvents(
    em: EntityManager,
    viewer: Viewer,
    conversationId: string,
    options: EventStreamOptions,
  ): Promise<AsyncIterableIterator<ConversationEvent>>;
  /** The conversation lifecycle of `viewer` (`lifecycle.ts`), in `em`. */
  createConversation(em: EntityManager, viewer: Viewer, input: CreateInput): Promise<Conversation>;
  updateConversation(em: EntityManager, viewer: Viewer, input: UpdateInput): Promise<Conversation>;
  changeConversationState(em: EntityManager, viewer: Viewer, id: string, change: StateChange): Promise<Conversation>;
  deleteConversation(em: EntityManager, viewer: Viewer, id: string): Promise<string>;
  /** When `conversation` expires or expired, as `Conversation.expiresAt` tells clients (`expiryOf` in `sweeper.ts`). */
  expiresAt(conversation: Conversation): Date | null;
  /** Every tool the agent is offered in a turn of `viewer`, listed as that turn would see them. */
  listTools(viewer: Viewer): Promise<ToolInfo[]>;
  /**
   * For shutdown: frees the conversations of the turns still running in this process and marks
   * their replies failed, so that a retry elsewhere runs at once instead of waiting for the lease
   * to run out. Returns how many were still held; throws when the database cannot be reached.
   */
  abandonRunning(em: EntityManager): Promise<number>;
  /** Cuts short the titles asked of the model (`titles.ts`) and closes the process's own todo server and its client. */
  close(): Promise<void>;
};

/** The settings of a turn, from the configuration. */
export function turnSettings(config: Config): TurnSettings {
  return {
    historyLimit: config.historyLimit,
    maxMessageChars: config.maxMessageChars,
    turnLeaseMs: config.turnLeaseMs,
    enqueueTimeoutMs: config.enqueueTimeoutMs,
    turnDeadlineMs: config.limits.turnDeadlineMs,
    metadataMaxBytes: config.metadataMaxBytes,
    rateLimits: config.rateLimits,
    logUserIds: config.logUserIds,
  };
}

/** Makes the chat of this process (its todo server connected); see `Chat`. */
export async function createChat(options: ChatOptions): Promise<Chat> {
  const { agent, settings, log, signals, observe } = options;
  const tools = await connectTurnTools(options.tools);
  const titles = createTitles(agent);
  // Private: the turns this process runs now; `runTurn` adds each one and removes it as it ends.
  const running = new Set<RunningTurn>();
  // Private: the turns started with `wait: false` that have not ended: shutdown lets them finish.
  const detached = new Set<Promise<unknown>>();

  return {
    async sendMessage(em, viewer, input, request = {}) {
      const turnLog = request.log ?? log;
      const deps = {
        em,
        agent,
        openTools: tools.open,
        settings,
        log: turnLog,
        running,
        signals,
        titles,
        arrivedAt: request.receivedAt,
        observe,
      };
      if (input.wait !== false) return { ...(await runTurn(deps, viewer, input)), eventsAfter: null };
      // Answered once begun; the turn runs on whatever becomes of the request (its client may go).
      return new Promise<SentMessage>((resolve, reject) => {
        let begun = false;
        const onStarted = (started: SentMessage) => {
          begun = true;
          resolve(started);
        };
        const turn = runTurn({ ...deps, onStarted }, viewer, input).then(
          (result) => begun || resolve({ ...result, eventsAfter: null }),
          (error: unknown) => {
            if (!begun) return reject(error);
            // Its subscribers were told (TURN_FAILED); a failure the turn did not expect is logged here.
            if (!(error instanceof AppError)) turnLog.error({ err: error }, 'a turn started without waiting failed');
          },
        );
        detached.add(turn);
        void turn.finally(() => detached.delete(turn));
      });
    },

    async conversationEvents(em, viewer, conversationId, streamOptions) {
      if (!isUuid(conversationId)) throw badInput(`conversationId must be a UUID, got ${JSON.stringify(conversationId)}`, 'conversationId');
      return options.events.stream(em, viewer.userId, conversationId, streamOptions);
    },

    createConversation: (em, viewer, input) =>
      lifecycle.createConversation(em, viewer, input, {
        metadataMaxBytes: settings.metadataMaxBytes,
        conversationsPerHour: settings.rateLimits.conversationsPerHour,
      }),
    updateConversation: (em, viewer, input) => lifecycle.updateConversation(em, viewer, input, settings.metadataMaxBytes),
    changeConversationState: (em, viewer, id, change) => lifecycle.changeState(em, viewer, id, change),
    deleteConversation: (em, viewer, id) => lifecycle.deleteConversation(em, viewer, id),
    expiresAt: (conversation) => expiryOf(conversation, options.conversationTtlMs ?? 0),

    async listTools(viewer) {
      return (await tools.open(viewer.userId)).list();
    },

    async abandonRunning(em) {
      if (detached.size > 0) await Promise.race([Promise.all(detached), sleep(options.drainMs ?? DRAIN_MS)]);
      const abandoned = await abandonTurns(em, running);
      if (abandoned > 0) log.warn({ abandoned }, 'released the leases of turns cut short by shutdown');
      return abandoned;
    },

    async close() {
      await titles.close();
      await tools.close();
    },
  };
}
