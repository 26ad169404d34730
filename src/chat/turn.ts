/**
 * The stateless turn: one `sendMessage`, from a verified viewer to the stored reply. Reached
 * through `Chat` (`chat.ts`), which gives it the process's collaborators.
 *
 * The seven steps of DESIGN.md, in order. Nothing survives in process memory between turns:
 * the conversation row holds the lease that keeps one turn running per conversation (renewed
 * while this instance lives), the user message and its reply in progress take the next two
 * `seq`s together, and every tool call is stored the moment it completes. A turn that dies half
 * way is finished exactly once by a retry with the same `clientMessageId` (its tool calls given
 * to the model as context), or closed as failed by the next message once its lease runs out.
 * The writes are in `turn-store.ts`; transient database errors are retried in `db/retry.ts`.
 *
 * Each turn is a `turn` span with a child span per step (`turn.begin`, `turn.context`,
 * `turn.agent`, `turn.finish`), started through `@opentelemetry/api`: no-ops unless `tracing.ts`
 * started an SDK. The turn span carries ids, outcome and error code, the request id, the user as
 * `userRef`'s hash (always); never message text.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Agent, AgentMessage, AgentReply, StartingCall, ToolBox, ToolCallRecord } from '../agent/types.js';
import type { Viewer } from '../auth/viewer.js';
import { backoff } from '../backoff.js';
import { retryTransient } from '../db/retry.js';
import type { TurnSignals } from '../db/signals.js';
import { isUuid, newId } from '../entities/ids.js';
import type { Conversation, Message, ToolCall } from '../entities/index.js';
import { AppError, badInput } from '../errors.js';
import { type Logger, userRef } from '../log.js';
import { storableText, textProblem } from '../text.js';
import { ConversationEventKind } from './events.js';
import { contextMessages, loadContext } from './history.js';
import { failTurn, keepLease, type TurnToEnd } from './lease.js';
import { checkMetadata } from './metadata.js';
import { leaveQueue, waitersAhead } from './queue.js';
import type { TurnLimits } from './rate-limits.js';
import type { Titles } from './titles.js';
import { event, type TurnEvents, turnEvents } from './turn-events.js';
import { type TurnObserver, type TurnReport, TurnWatch } from './turn-report.js';
import { beginTurn, finishTurn, firstMessageTitle, type Started, type TurnIds, toolCallOf } from './turn-store.js';

export type SendMessageInput = {
  conversationId?: string | null;
  message: string;
  clientMessageId?: string | null;
  metadata?: Record<string, unknown> | null;
  /** While another turn runs: `REJECT` (default) answers CONVERSATION_BUSY, `ENQUEUE` waits its turn. */
  ifBusy?: 'REJECT' | 'ENQUEUE' | null;
  /** False: answer once the turn has begun (its messages stored), and let it run on (`Chat.sendMessage`). */
  wait?: boolean | null;
};

export type TurnResult = {
  conversation: Conversation;
  userMessage: Message;
  assistantMessage: Message;
  toolCalls: ToolCall[];
  replayed: boolean;
};

export type TurnSettings = {
  historyLimit: number;
  maxMessageChars: number;
  turnLeaseMs: number;
  enqueueTimeoutMs: number;
  /** The agent's whole run, tools included, must end within this. */
  turnDeadlineMs: number;
  /** Largest metadata object accepted, in bytes of JSON. */
  metadataMaxBytes: number;
  /** Per-user limits on turns, new conversations and model tokens (0 = off). */
  rateLimits: TurnLimits;
  /** The `turn` log line names the user by id (`LOG_USER_IDS=on`); default false: by a hash (`userRef`). */
  logUserIds?: boolean;
};

/** A turn this process is running: what shutdown releases if it cannot wait for it. */
export type RunningTurn = TurnToEnd;

/**
 * What a turn needs from the outside; all of it is made per request or is immutable, but for
 * `running`, which `chat.ts` owns. Only `chat.ts` makes these: everyone else calls `Chat`.
 */
export type TurnDeps = {
  em: EntityManager;
  agent: Agent;
  /** Opens the tools of this turn for `userId`, telling `onStart` of each call as it starts and `onCall` as it completes. */
  openTools(userId: string, onCall?: (call: ToolCallRecord) => void, onStart?: (call: StartingCall) => void): Promise<ToolBox>;
  settings: TurnSettings;
  log: Logger;
  /** The process's running turns (for graceful shutdown): the turn is in it while it runs. */
  running: Set<RunningTurn>;
  /** Wakes waiting requests when a turn ends; without it they only poll. */
  signals?: TurnSignals;
  /** Titles conversations by the model after their first turn; without it they keep the first message's. */
  titles?: Titles;
  /** When the request reached this instance: its place in the conversation's queue (default: now). */
  arrivedAt?: Date;
  /** Told once the turn has begun (step 4 stored its messages), before the agent runs; not for a replay. */
  onStarted?: (started: TurnResult & { eventsAfter: number }) => void;
  /** Told of each tool call, of waits in the queue and of the turn's end (metrics); see `turn-report.ts`. */
  observe?: TurnObserver;
};

const CLIENT_MESSAGE_ID_MAX = 255;
/** A first message's key used concurrently: after this many unique-key races, give up. */
const KEY_RACES_MAX = 3;

/**
 * Runs one turn of `viewer` in a conversation (a new one when `conversationId` is absent). However
 * it ends, it is logged in one `turn` line and reported to `deps.observe`.
 */
export function runTurn(deps: TurnDeps, viewer: Viewer, input: SendMessageInput): Promise<TurnResult> {
  return tracer.startActiveSpan('turn', async (span) => {
    const watch = new TurnWatch();
    try {
      const result = await turnSteps(deps, viewer, input, watch);
      reportTurn(deps, viewer, watch.answered(result.replayed), span);
      return result;
    } catch (error) {
      reportTurn(deps, viewer, watch.threw(error), span);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The tracer of the turn's spans (a no-op until an SDK is registered: `tracing.ts`). */
const tracer = trace.getTracer('stateless-chat');

// Private: `work` inside a child span named `name` of the active one, ended when `work` settles.
// A refusal (an `AppError`: busy, rate-limited, not found) is recorded on it; only an unexpected
// error marks it failed.
async function step<T>(name: string, work: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.recordException(error as Error);
      if (!(error instanceof AppError)) span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}

// Private: the turn's one line (the user named by `userRef`), then the observer, then the turn
// span's attributes; none may throw into the turn.
function reportTurn(deps: TurnDeps, viewer: Viewer, report: TurnReport, span: Span): void {
  const { outcome, errorCode, conversationId, turnId, phases, totalMs, toolCalls, model, tokens } = report;
  const level = outcome === 'failed' || outcome === 'error' ? 'warn' : 'info';
  const user = userRef(viewer.userId, deps.settings.logUserIds ?? false);
  if (span.isRecording()) {
    // Hashed whatever LOG_USER_IDS says: spans leave for a collector that the setting does not cover.
    // The request id the turn's log lines carry (`http/request-id.ts` binds it to the request's logger).
    const requestId = deps.log.bindings().requestId;
    span.setAttributes({
      'turn.outcome': outcome,
      'turn.tool_calls': toolCalls,
      'enduser.ref': userRef(viewer.userId, false),
      ...(typeof requestId === 'string' ? { 'request.id': requestId } : {}),
      ...(conversationId ? { 'conversation.id': conversationId } : {}),
      ...(turnId ? { 'turn.id': turnId } : {}),
      ...(errorCode ? { 'error.code': errorCode } : {}),
      ...(model ? { 'gen_ai.response.model': model } : {}),
      ...(tokens ? { 'gen_ai.usage.input_tokens': tokens.prompt, 'gen_ai.usage.output_tokens': tokens.completion } : {}),
    });
    if (outcome === 'failed' || outcome === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode ?? outcome });
  }
  deps.log[level](
    {
      outcome,
      errorCode,
      conversationId,
      turnId,
      userId: user,
      ms: totalMs,
      phases,
      toolCalls,
      model,
      tokens,
    },
    'turn',
  );
  try {
    deps.observe?.end?.(report);
  } catch (error) {
    deps.log.warn({ err: error }, 'the turn observer failed');
  }
}

// Private: the seven steps, timed by `watch` at their boundaries.
async function turnSteps(deps: TurnDeps, viewer: Viewer, input: SendMessageInput, watch: TurnWatch): Promise<TurnResult> {
  // Step 1 (authentication) happened in transport: `viewer` comes from a verified token.
  // Step 2: `deps.em` is this request's own unit of work.
  const content = validate(input, deps.settings);

  // Steps 3 and 4: one short transaction that locks the conversation, counts the turn against the
  // user's rate limits, stores the user message with its reply in progress and takes the lease
  // (or replays, or waits its turn, or is refused with RATE_LIMITED and stores nothing).
  const ids: TurnIds = { userMessage: newId(), reply: newId(), turn: newId() };
  const start = await step('turn.begin', async (span) => {
    const started = await beginInOrder(deps, viewer, input, content, ids);
    span.setAttributes({ 'conversation.id': started.conversation.id, 'turn.replayed': started.kind === 'replay' });
    return started;
  });
  watch.lap('begin');
  watch.conversationId = start.conversation.id;
  if (start.kind === 'replay') {
    return {
      conversation: start.conversation,
      userMessage: start.userMessage,
      assistantMessage: start.reply,
      toolCalls: start.toolCalls,
      replayed: true,
    };
  }
  const { conversation, userMessage, reply } = start;
  watch.turnId = ids.turn;
  const running: RunningTurn = { conversationId: conversation.id, userId: viewer.userId, turnId: ids.turn, replyId: reply.id };
  deps.running.add(running);
  const renewal = renewLease(deps, running);
  const events = turnEvents({ em: deps.em, log: deps.log, ...running }, userMessage.id, new Date());
  // The turn holds the conversation: its first event (TURN_STARTED) takes the position after this.
  deps.onStarted?.({
    conversation,
    userMessage,
    assistantMessage: reply,
    toolCalls: [],
    replayed: false,
    eventsAfter: conversation.eventSeq,
  });
  // Set once step 7 has stored the reply (completed, or failed by the agent): from then on the
  // conversation is free and nothing is left to undo.
  let settled = false;
  try {
    // Step 5: the context, by keyset on (conversation_id, seq): never the whole history. It ends
    // with the reply in progress, which holds the tool calls a resumed turn already made.
    // Most turns' step 4 read it already, in the statement that started them.
    const messages = await step('turn.context', async (span) => {
      span.setAttribute('turn.context.read_at_begin', start.context !== undefined && start.context !== null);
      const loaded = start.context
        ? contextMessages(start.context)
        : await retryTransient(() => loadContext(deps.em, viewer.userId, conversation.id, reply.seq, deps.settings.historyLimit), {
            log: deps.log,
            what: 'load context',
          });
      span.setAttribute('turn.context.messages', loaded.length);
      return loaded;
    });
    watch.lap('context');

    // Step 6: the agent, with no transaction open; its text and tool calls become events as they
    // come, and each tool call is stored as it completes.
    const recorder = toolCallRecorder(deps, events, watch, { conversationId: conversation.id, replyId: reply.id, userId: viewer.userId });
    const outcome = await step('turn.agent', async (span) => {
      const ran = await runAgent(deps, messages, viewer.userId, { onCall: recorder.record, events });
      if (!ran.reply) span.setStatus({ code: SpanStatusCode.ERROR, message: 'the agent failed' });
      return ran;
    });
    watch.agentDone();
    if (outcome.reply) {
      watch.model = outcome.reply.model;
      const { usage } = outcome.reply;
      if (usage) watch.tokens = { prompt: usage.promptTokens, completion: usage.completionTokens };
    }
    // Step 7 (with the tool calls' and events' writes it waits for): one short statement that
    // completes the reply, stores the last events and frees the lease.
    const finished = await step('turn.finish', async () => {
      await recorder.stored();
      const closing = await events.closing();
      if (outcome.reply) {
        // An agent that streamed less than its answer (or none of it): the rest is one last TEXT_DELTA.
        const content = storableText(outcome.reply.content);
        if (content.startsWith(closing.text) && content !== closing.text) {
          closing.events.push(event(ConversationEventKind.TEXT_DELTA, { text: content.slice(closing.text.length) }));
        } else if (!content.startsWith(closing.text)) {
          deps.log.warn(
            { conversationId: conversation.id },
            "the agent's answer differs from the text it streamed; TURN_COMPLETED has the answer",
          );
        }
      }

      const lastId = newId();
      return retryTransient(
        () =>
          finishTurn(deps.em, {
            userId: viewer.userId,
            turnId: ids.turn,
            conversation,
            reply,
            toolCalls: recorder.calls,
            resumed: start.resumed,
            outcome: outcome.reply,
            limits: deps.settings.rateLimits,
            events: { pending: closing.events, lastId },
          }),
        { log: deps.log, what: 'finish turn' },
      );
    });
    watch.lap('finish');
    settled = true;
    if (!outcome.reply) {
      deps.log.error({ err: outcome.failure, conversationId: conversation.id }, 'agent failed');
      throw new AppError(
        'UPSTREAM_ERROR',
        'The agent failed to answer; the message is stored and can be retried with the same clientMessageId',
        {
          cause: outcome.failure,
        },
      );
    }
    // A first turn answered: the model may title the conversation, after the reply (`titles.ts`).
    if (reply.seq === 2 && finished.conversation.title === firstMessageTitle(content)) {
      deps.titles?.request({
        em: deps.em.fork(),
        userId: viewer.userId,
        conversationId: conversation.id,
        replaces: finished.conversation.title,
        message: content,
        reply: outcome.reply.content,
        log: deps.log,
      });
    }
    return { ...finished, userMessage, replayed: false };
  } catch (error) {
    // Anything unexpected between the two transactions (the context or the reply could not be
    // read or stored after their retries, a bug): end the turn now, or its conversation stays
    // busy for the whole lease. The error itself goes on to the transport, which masks it.
    if (!settled) await endFailedTurn(deps, running);
    throw error;
  } finally {
    events.stop();
    renewal.stop();
    deps.running.delete(running);
  }
}

// Private: marks the reply of a turn that failed unexpectedly as failed and frees its
// conversation, in a fresh unit of work (the request's may hold what the failed transaction
// changed). If even that fails (the database is gone), the lease runs out as before.
async function endFailedTurn(deps: TurnDeps, turn: RunningTurn): Promise<void> {
  try {
    const ended = await retryTransient(() => failTurn(deps.em.fork(), turn), { log: deps.log, what: 'fail turn', tries: 3 });
    if (ended)
      deps.log.warn(
        { conversationId: turn.conversationId, replyId: turn.replyId },
        'turn failed: its reply is marked failed and the conversation freed',
      );
  } catch (error) {
    deps.log.error(
      { err: error, conversationId: turn.conversationId },
      'could not end the failed turn; its conversation stays busy until the lease runs out',
    );
  }
}

// Private: step 4, tried again on transient database errors and on a unique-key race (two first
// messages with one key at once: the loser looks again and replays). With `ifBusy: ENQUEUE` a busy
// conversation puts the request in its queue (step 4 commits that), and it waits, alive and in
// arrival order, trying again only once no waiter is ahead of it, until its turn comes or
// `enqueueTimeoutMs` has passed. Nothing is held while it waits.
async function beginInOrder(
  deps: TurnDeps,
  viewer: Viewer,
  input: SendMessageInput,
  content: string,
  ids: TurnIds,
): Promise<Exclude<Started, { kind: 'queued' }>> {
  const arrivedAt = deps.arrivedAt ?? new Date();
  const deadline = arrivedAt.getTime() + deps.settings.enqueueTimeoutMs;
  // Set once step 4 has queued the request: its ticket and its conversation.
  let queued = null as Extract<Started, { kind: 'queued' }> | null;
  // Whether this request was counted as waiting (`TurnObserver.waiting`).
  let waited = false;
  let races = 0;
  try {
    for (let wait = 0; ; wait++) {
      const ticket: string | null = queued?.ticket ?? null;
      if (ticket === null || Date.now() >= deadline || !(await waitersAhead(deps.em, viewer.userId, ticket))) {
        let started: Started;
        try {
          started = await retryTransient(
            (attempt) =>
              beginTurn(deps.em, ids, {
                userId: viewer.userId,
                conversationId: input.conversationId,
                content,
                clientMessageId: input.clientMessageId,
                metadata: input.metadata,
                ticket,
                enqueue: input.ifBusy === 'ENQUEUE' && Date.now() < deadline,
                arrivedAt,
                contextLimit: deps.settings.historyLimit,
                leaseMs: deps.settings.turnLeaseMs,
                limits: deps.settings.rateLimits,
                retrying: attempt > 0 || races > 0,
              }),
            { log: deps.log, what: 'begin turn' },
          );
        } catch (error) {
          if (error instanceof UniqueConstraintViolationException && races++ < KEY_RACES_MAX) continue;
          throw error;
        }
        if (started.kind === 'run') queued = null; // its ticket, if it had one, was used up by step 4
        if (started.kind !== 'queued') return started;
        queued = started;
        if (!waited) {
          waited = true;
          deps.observe?.waiting?.(1);
        }
      }
      if (queued === null) continue;
      const pause = Math.min(backoff({ baseMs: 20, maxMs: 400 })(wait), Math.max(deadline - Date.now(), 0));
      await (deps.signals ? deps.signals.waitForTurnEnd(queued.conversationId, pause) : sleep(pause));
    }
  } finally {
    if (waited) deps.observe?.waiting?.(-1);
    // Given back by a request that gave up (or was answered with a replay).
    if (queued !== null) await leaveQueue(deps.em, viewer.userId, queued.conversationId, queued.ticket).catch(() => undefined);
  }
}

// Private: stores each tool call the moment the tool box reports it (with the events before it),
// outside any transaction.
function toolCallRecorder(
  deps: TurnDeps,
  events: TurnEvents,
  watch: TurnWatch,
  turn: { conversationId: string; replyId: string; userId: string },
) {
  const writes: Promise<unknown>[] = [];
  const calls: ToolCall[] = [];
  return {
    record(call: ToolCallRecord) {
      watch.toolCall(call);
      deps.observe?.toolCall?.(call);
      const stored = toolCallOf(deps.em, { ...turn, id: newId(), call });
      calls.push(stored);
      writes.push(events.toolFinished(stored));
    },
    /** Resolves when every call reported so far is stored (or given up on, and logged). */
    stored: () => Promise.all(writes),
    /** The calls reported so far. */
    calls,
  };
}

// Private: the agent with this turn's tools; a failure is returned, not thrown.
async function runAgent(
  deps: TurnDeps,
  messages: AgentMessage[],
  userId: string,
  { onCall, events }: { onCall: (call: ToolCallRecord) => void; events: TurnEvents },
): Promise<{ reply: AgentReply | null; failure?: unknown }> {
  let ended = false;
  // The deadline is a timer cleared when the turn ends, not `AbortSignal.timeout`: that one's
  // timer (and the turn it holds, unit of work included) would stay alive for the whole deadline.
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    // A call that completes after the deadline ended the turn is not recorded: the turn is over.
    const tools = await deps.openTools(
      userId,
      (call) => ended || onCall(call),
      (call) => ended || events.toolStarted(call),
    );
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`the turn took longer than ${deps.settings.turnDeadlineMs} ms`);
        stop.abort(error);
        reject(error);
      }, deps.settings.turnDeadlineMs);
    });
    // The agent gets the signal to stop its work; the race ends the turn even if it does not listen.
    // Text the agent streams becomes TEXT_DELTAs (`turn-events.ts` never throws into the agent).
    const onText = (delta: string) => ended || events.text(delta);
    return { reply: await Promise.race([deps.agent.run({ messages, tools, signal: stop.signal, onText }), deadline]) };
  } catch (error) {
    return { reply: null, failure: error };
  } finally {
    ended = true;
    clearTimeout(timer);
  }
}

// Private: pushes the lease's expiry forward while the turn is alive, so that only a dead
// instance's turn can be taken over (`keepLease`: every third of the lease; late renewals and a
// lost lease logged and counted; a lost lease stays lost).
function renewLease(deps: TurnDeps, turn: RunningTurn): { stop(): void } {
  return keepLease(() => deps.em.fork(), turn, deps.settings.turnLeaseMs, deps.log);
}

// Private: bad input is refused before any SQL runs. Text is checked here too, not only at the
// GraphQL edge: every transport (REST, tools) reaches the turn through this function.
function validate(input: SendMessageInput, settings: TurnSettings): string {
  for (const field of ['message', 'clientMessageId', 'conversationId'] as const) {
    const value = input[field];
    const problem = typeof value === 'string' ? textProblem(value) : null;
    if (problem) throw badInput(`${field} ${problem}`, field);
  }
  if (input.metadata != null) checkMetadata(input.metadata, 'metadata', settings.metadataMaxBytes);
  const content = input.message.trim();
  if (content.length === 0) throw badInput('message must not be empty', 'message');
  if (input.message.length > settings.maxMessageChars) {
    throw badInput(`message is ${input.message.length} characters; at most ${settings.maxMessageChars} are accepted`, 'message');
  }
  if (input.conversationId != null && !isUuid(input.conversationId)) {
    throw badInput(`conversationId must be a UUID, got ${JSON.stringify(input.conversationId)}`, 'conversationId');
  }
  if (input.clientMessageId != null && (input.clientMessageId.length === 0 || input.clientMessageId.length > CLIENT_MESSAGE_ID_MAX)) {
    throw badInput(`clientMessageId must be 1 to ${CLIENT_MESSAGE_ID_MAX} characters`, 'clientMessageId');
  }
  return content;
}
