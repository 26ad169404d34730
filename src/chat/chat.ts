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
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Agent, ToolInfo } from '../agent/types.js';
import type { Viewer } from '../auth/viewer.js';
import type { Config } from '../config.js';
import type { TurnSignals } from '../db/signals.js';
import type { Conversation } from '../entities/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { connectTurnTools, type TurnToolsOptions } from '../mcp/turn-tools.js';
import type { ConversationEvent, EventStreamOptions } from './events.js';
import { abandonTurns } from './lease.js';
import type { StateChange } from './lifecycle.js';
import * as lifecycle from './lifecycle.js';
import { expiryOf } from './sweeper.js';
import { createTitles } from './titles.js';
import { type RunningTurn, runTurn, type SendMessageInput, type TurnResult, type TurnSettings } from './turn.js';

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
};

type CreateInput = Parameters<typeof lifecycle.createConversation>[2];
type UpdateInput = Parameters<typeof lifecycle.updateConversation>[2];

/** What the transport knows of the request a turn answers. */
export type RequestInfo = { log?: Logger; receivedAt?: Date };

export type Chat = {
  /**
   * Runs one turn of `viewer` in a conversation (a new one when `input.conversationId` is absent),
   * in `em`, the request's own unit of work. `request` gives its logger (default: the chat's) and
   * when it reached this instance (its place in the conversation's queue; default: now).
   * Throws `AppError`s (BAD_USER_INPUT, NOT_FOUND, CONVERSATION_BUSY, RATE_LIMITED, ...).
   */
  sendMessage(em: EntityManager, viewer: Viewer, input: SendMessageInput, request?: RequestInfo): Promise<TurnResult>;
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
  /**
   * Checks that `conversationId` is the viewer's (AppError NOT_FOUND otherwise, BAD_USER_INPUT for a malformed id), then streams its events after `options.after`.
   * The iterator throws AppError('SLOW_CONSUMER') when `options.backlog()` exceeds the limit or its queue overflows; it ends when options.signal aborts or `return()` is called.
   */
  conversationEvents(
    em: EntityManager,
    viewer: Viewer,
    conversationId: string,
    options: EventStreamOptions,
  ): Promise<AsyncIterableIterator<ConversationEvent>>;
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
  };
}

/** Makes the chat of this process (its todo server connected); see `Chat`. */
export async function createChat(options: ChatOptions): Promise<Chat> {
  const { agent, settings, log, signals } = options;
  const tools = await connectTurnTools(options.tools);
  const titles = createTitles(agent);
  // Private: the turns this process runs now; `runTurn` adds each one and removes it as it ends.
  const running = new Set<RunningTurn>();

  return {
    sendMessage: (em, viewer, input, request = {}) =>
      runTurn(
        { em, agent, openTools: tools.open, settings, log: request.log ?? log, running, signals, titles, arrivedAt: request.receivedAt },
        viewer,
        input,
      ),

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
      const abandoned = await abandonTurns(em, running);
      if (abandoned > 0) log.warn({ abandoned }, 'released the leases of turns cut short by shutdown');
      return abandoned;
    },

    async close() {
      await titles.close();
      await tools.close();
    },

    // TEMPORARY (subs branch): the core's implementation replaces this at the merge.
    async conversationEvents() {
      throw new AppError('INTERNAL_SERVER_ERROR', 'conversation events are not implemented yet');
    },
  };
}
