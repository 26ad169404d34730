/**
 * The events of one running turn, written as it goes (`chat/events.ts` says what subscribers get).
 *
 * Events wait in a buffer and are written together, one statement at a time in order, at most
 * every `FLUSH_MS` (sooner once `FLUSH_BYTES` of text wait): never a statement per token. A turn
 * that answers within that time writes no statement of its own for its events: `TURN_STARTED`, its
 * text and `TURN_COMPLETED` go into step 7's statement (`closing`). A finished tool call is stored
 * by the statement that writes the events before it and its `TOOL_CALL_FINISHED`, as soon as it
 * completes (a turn that dies keeps what it did). Writes are tried again on transient errors; one
 * that still fails is logged, and the reply's final content still reaches subscribers with
 * `TURN_COMPLETED`.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { StartingCall } from '../agent/types.js';
import { retryTransient } from '../db/retry.js';
import { appendEvents, type NewEvent } from '../db/stores/events.js';
import { newId } from '../entities/ids.js';
import type { ToolCall } from '../entities/index.js';
import type { Logger } from '../log.js';
import { storableJson, storableText } from '../text.js';
import { ConversationEventKind } from './events.js';

/** At most one write of a turn's events per this many milliseconds... */
export const FLUSH_MS = 250;
/** ...unless this much text (UTF-16 units) waits. */
export const FLUSH_BYTES = 2_048;

export type TurnEventsOf = { em: EntityManager; log: Logger; userId: string; conversationId: string; turnId: string; replyId: string };

export type TurnEvents = {
  /** Text appended to the reply, as the model writes it. */
  text(piece: string): void;
  /** A tool call starting. */
  toolStarted(call: StartingCall): void;
  /** Stores a finished tool call, with the events before it and its TOOL_CALL_FINISHED, in one statement. */
  toolFinished(call: ToolCall): Promise<void>;
  /**
   * For step 7: waits for writes under way, then takes what is still buffered (the text not written
   * yet included) and the reply's text as its TEXT_DELTAs spelled it. Nothing is written after.
   */
  closing(): Promise<{ events: NewEvent[]; text: string }>;
  /** Stops writing (a turn that ends without step 7); what is buffered is dropped. */
  stop(): void;
};

/** Starts the events of a turn that began at `startedAt` (step 4's statement counts as its last write), with TURN_STARTED buffered. */
export function turnEvents(of: TurnEventsOf, userMessageId: string, startedAt: Date): TurnEvents {
  const pending: NewEvent[] = [event(ConversationEventKind.TURN_STARTED, { userMessageId })];
  // Text not yet in `pending`: cut into a TEXT_DELTA when an event follows it or a write takes it.
  let text = '';
  // All the reply's text so far, as its TEXT_DELTAs spell it.
  let written = '';
  let lastWrite = startedAt.getTime();
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;

  // Private: the buffered text as a TEXT_DELTA, but for a last high surrogate that waits for its pair.
  const cutText = (final: boolean) => {
    const keep = !final && /[\ud800-\udbff]$/.test(text) ? 1 : 0;
    const piece = storableText(text.slice(0, text.length - keep));
    text = text.slice(text.length - keep);
    if (piece === '') return;
    written += piece;
    pending.push(event(ConversationEventKind.TEXT_DELTA, { text: piece }));
  };

  // Private: writes what is buffered (and `call`, with its events), after the writes before it.
  const write = (call?: ToolCall): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    const run = chain.then(async () => {
      if (stopped) return;
      cutText(false);
      const events = pending.splice(0);
      if (call) events.push(event(ConversationEventKind.TOOL_CALL_FINISHED, { toolCall: call }));
      if (events.length === 0) return;
      lastWrite = Date.now();
      const appended = events.filter((e) => e.kind === ConversationEventKind.TEXT_DELTA).map((e) => e.text ?? '');
      try {
        await retryTransient(() => appendEvents(of.em.fork(), { ...of, events, text: appended.join('') }), {
          log: of.log,
          what: call ? 'store tool call' : 'store turn events',
        });
      } catch (error) {
        of.log.error(
          { err: error, conversationId: of.conversationId },
          call ? 'a tool call could not be stored' : 'turn events could not be stored',
        );
      }
    });
    chain = run;
    return run;
  };

  // Private: a write now when enough text waits, else one at most FLUSH_MS after the last.
  const schedule = () => {
    if (stopped) return;
    if (text.length >= FLUSH_BYTES) {
      void write();
      return;
    }
    timer ??= setTimeout(() => void write(), Math.max(0, lastWrite + FLUSH_MS - Date.now()));
  };

  return {
    text(piece) {
      if (stopped || piece === '') return;
      text += piece;
      schedule();
    },
    toolStarted(call) {
      if (stopped) return;
      cutText(false);
      pending.push(
        event(ConversationEventKind.TOOL_CALL_STARTED, {
          call: {
            callId: storableText(call.callId),
            server: call.server,
            name: storableText(call.name),
            arguments: storableJson(call.arguments),
          },
        }),
      );
      schedule();
    },
    toolFinished: (call) => write(call),
    async closing() {
      clearTimeout(timer);
      timer = undefined;
      await chain;
      stopped = true;
      cutText(true);
      return { events: pending.splice(0), text: written };
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** An event made now, with its id (kept across tries of the statement that stores it). */
export function event(kind: ConversationEventKind, fields: Omit<NewEvent, 'id' | 'kind' | 'createdAt'> = {}): NewEvent {
  return { id: newId(), kind, createdAt: new Date(), ...fields };
}
