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
import type { Agent, ToolCallRecord, ToolInfo } from '../agent/types.js';
import type { Viewer } from '../auth/viewer.js';
import type { Config } from '../config.js';
import type { TurnSignals } from '../db/signals.js';
import { taskStore } from '../db/stores/tasks.js';
import type { Logger } from '../log.js';
import type { TodoOptions } from '../mcp/todo-server.js';
import type { ToolLimits, ToolServer } from '../mcp/toolbox.js';
import { openTurnTools } from '../mcp/turn-tools.js';
import { abandonTurns } from './lease.js';
import { type RunningTurn, runTurn, type SendMessageInput, type TurnResult, type TurnSettings } from './turn.js';

/** The tools a turn is offered, described; the chat opens them for each turn. */
export type ChatTools = {
  /** The shared external servers, asked for at every turn (`McpHub.servers`: the connected ones). */
  shared: () => ToolServer[];
  /** How long a call may take and how much of its result is kept. */
  limits: ToolLimits;
  /** The built-in todo server's task quota and logger. */
  todo: TodoOptions;
};

export type ChatOptions = {
  agent: Agent;
  tools: ChatTools;
  settings: TurnSettings;
  /** Where the chat logs when a call brings no logger of its own (shutdown, for one). */
  log: Logger;
  /** Wakes requests waiting their turn when a turn ends; without it they only poll. */
  signals?: TurnSignals;
};

export type Chat = {
  /**
   * Runs one turn of `viewer` in a conversation (a new one when `input.conversationId` is absent),
   * in `em`, the request's own unit of work. `log` is the request's logger (default: the chat's).
   * Throws `AppError`s (BAD_USER_INPUT, NOT_FOUND, CONVERSATION_BUSY, RATE_LIMITED, ...).
   */
  sendMessage(em: EntityManager, viewer: Viewer, input: SendMessageInput, log?: Logger): Promise<TurnResult>;
  /** Every tool the agent is offered in a turn of `viewer`, listed as that turn would see them. */
  listTools(em: EntityManager, viewer: Viewer): Promise<ToolInfo[]>;
  /**
   * For shutdown: frees the conversations of the turns still running in this process and marks
   * their replies failed, so that a retry elsewhere runs at once instead of waiting for the lease
   * to run out. Returns how many were still held; throws when the database cannot be reached.
   */
  abandonRunning(em: EntityManager): Promise<number>;
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

/** Makes the chat of this process; see `Chat`. */
export function createChat(options: ChatOptions): Chat {
  const { agent, tools, settings, log, signals } = options;
  // Private: the turns this process runs now; `runTurn` adds each one and removes it as it ends.
  const running = new Set<RunningTurn>();
  const openTools = (em: EntityManager, userId: string, onCall?: (call: ToolCallRecord) => void) =>
    openTurnTools(taskStore(em), userId, tools.limits, tools.shared(), onCall, tools.todo);

  return {
    sendMessage: (em, viewer, input, requestLog = log) =>
      runTurn({ em, agent, openTools, settings, log: requestLog, running, signals }, viewer, input),

    async listTools(em, viewer) {
      const box = await openTools(em, viewer.userId);
      try {
        return box.list();
      } finally {
        await box.close();
      }
    },

    async abandonRunning(em) {
      const abandoned = await abandonTurns(em, running);
      if (abandoned > 0) log.warn({ abandoned }, 'released the leases of turns cut short by shutdown');
      return abandoned;
    },
  };
}
