/**
 * The events of a conversation, as subscribers receive them (the contract between the turn that
 * writes them and the transports that stream them).
 *
 * Each conversation has one ordered stream: positions 1, 2, 3, … with no gap, assigned in the
 * database by the statement that stores the event. A turn writes `TURN_STARTED`, then its
 * `TEXT_DELTA`s and tool calls as they happen (flushed at a bounded rate, never per token), then
 * `TURN_COMPLETED` or `TURN_FAILED`. The reply stored is exactly the concatenation of the
 * `TEXT_DELTA`s after its last `TURN_STARTED` (a turn resumed after a crash starts its reply again).
 */
import type { MessageView } from '../db/stores/messages.js';
import type { ToolCallView } from '../db/stores/tool-calls.js';

export enum ConversationEventKind {
  TURN_STARTED = 'turn_started',
  TEXT_DELTA = 'text_delta',
  TOOL_CALL_STARTED = 'tool_call_started',
  TOOL_CALL_FINISHED = 'tool_call_finished',
  TURN_COMPLETED = 'turn_completed',
  TURN_FAILED = 'turn_failed',
}

/** A tool call as the model asked for it, before it ran (no stored record yet). */
export type StartedCall = { callId: string; server: string; name: string; arguments: unknown };

export type ConversationEvent = {
  conversationId: string;
  /** Per conversation, from 1, gapless: what a subscriber resumes after. */
  position: number;
  kind: ConversationEventKind;
  /** The turn (one run of the agent) the event belongs to. */
  turnId: string;
  /** The reply the turn writes. */
  messageId: string;
  createdAt: Date;
  /** TEXT_DELTA: the text appended to the reply. */
  text: string | null;
  /** TURN_STARTED: the user message the turn answers. */
  userMessageId: string | null;
  /** TOOL_CALL_STARTED: the call as the model asked for it. */
  call: StartedCall | null;
  /** TOOL_CALL_FINISHED: the stored record. */
  toolCall: ToolCallView | null;
  /** TURN_COMPLETED, TURN_FAILED: the reply as stored. */
  message: MessageView | null;
  /** TURN_FAILED: why, as an error code and a message. */
  error: { code: string; message: string } | null;
};

export type EventStreamOptions = {
  /** Stream the events after this position; null: only events from now on. */
  after: number | null;
  /**
   * Bytes the transport holds unsent for this subscriber (a WebSocket's `bufferedAmount`, a
   * response's `writableLength`). Above the limit the stream ends with SLOW_CONSUMER: the client
   * resumes with `after:` its last cursor instead of this server buffering without bound.
   */
  backlog?: () => number;
  /** Ends the stream (the client unsubscribed or went away). */
  signal?: AbortSignal;
};
