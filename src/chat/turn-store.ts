/**
 * What a turn writes, in its two short transactions (steps 4 and 7 of the turn). The queue of
 * turns waiting for a conversation is in `queue.ts`; the lease's renewal and early release in `lease.ts`.
 *
 * Step 4 locks the conversation row, decides (replay, resume, run, busy), stores the user
 * message together with its reply in progress at the next two `seq`s, and takes the lease. The
 * common turn (a conversation that is free, nobody queued, a first try) does all that, and reads
 * its context, in one statement (`quickStart` in `db/stores/turns.ts`); anything else takes the
 * full path, a short transaction.
 * Step 7 completes (or fails) that reply and frees the lease; a turn that cannot get there (an
 * error in between, a shutdown) is ended by `failTurn` (`lease.ts`) the same way. All may be tried again after a
 * transient error: ids are made before the first try, so a try finds out whether an earlier one
 * committed by looking rows up, never by inserting twice.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AgentReply, ToolCallRecord } from '../agent/types.js';
import { TURN_ENDED_CHANNEL } from '../db/signals.js';
import * as conversations from '../db/stores/conversations.js';
import { appendEvents, EVENTS_CHANNEL, eventRows, type NewEvent } from '../db/stores/events.js';
import * as messages from '../db/stores/messages.js';
import * as toolCalls from '../db/stores/tool-calls.js';
import type { ContextRow } from '../db/stores/turns.js';
import * as turns from '../db/stores/turns.js';
import * as waiters from '../db/stores/waiters.js';
import { Conversation, ConversationStatus, Message, MessageRole, MessageStatus, RateKind, ToolCall } from '../entities/index.js';
import { AppError, notFound } from '../errors.js';
import { storableJson, storableText } from '../text.js';
import { ConversationEventKind } from './events.js';
import { ConversationBusy, joinQueue, queueBusy, takeTurnFromQueue } from './queue.js';
import { checkTurn, TURNS_WINDOW_MS, type TurnLimits, tokenCounts, turnCounts } from './rate-limits.js';
import { event } from './turn-events.js';

const TITLE_CHARS = 80;
/** The ids of one request's turn, made before its first try. */
export type TurnIds = { userMessage: string; reply: string; turn: string };

export type BeginInput = {
  userId: string;
  conversationId?: string | null;
  content: string;
  clientMessageId?: string | null;
  metadata?: Record<string, unknown> | null;
  /** This request's place in the queue, once it waits (`ifBusy: ENQUEUE`). */
  ticket: string | null;
  /** Busy, join the queue (and commit that) instead of throwing `ConversationBusy`. */
  enqueue: boolean;
  /** When the request reached this instance: its place in the queue, should it join. */
  arrivedAt: Date;
  /** How many messages the turn's context holds (the quick start reads them with the rest). */
  contextLimit: number;
  leaseMs: number;
  /** The user's limits a turn that begins is counted against. */
  limits: TurnLimits;
  /** An earlier try may have committed before its connection broke. */
  retrying: boolean;
};

export type Started =
  | { kind: 'replay'; conversation: Conversation; userMessage: Message; reply: Message; toolCalls: ToolCall[] }
  | {
      kind: 'run';
      conversation: Conversation;
      userMessage: Message;
      reply: Message;
      resumed: boolean;
      /** The turn's context (step 5) when step 4 read it too: its messages newest first, up to the reply. */
      context?: ContextRow[];
    }
  | { kind: 'queued'; conversationId: string; ticket: string };

/**
 * Step 4: see the module header. Throws NOT_FOUND, IDEMPOTENCY_KEY_REUSED, CONVERSATION_CLOSED,
 * RATE_LIMITED, and `ConversationBusy` unless `enqueue` (then it returns `queued`).
 */
export async function beginTurn(em: EntityManager, ids: TurnIds, input: BeginInput): Promise<Started> {
  const { userId } = input;
  const now = new Date();
  // The common turn (a conversation given, a first try, not yet in the queue) starts in one
  // statement; whatever that cannot settle (a retry or replay, a turn that died, a queue, a day of
  // tokens to start, a conversation locked right now) takes the full path below, in a transaction.
  if (input.conversationId && !input.retrying && input.ticket === null) {
    const quick = await startQuickly(em, ids, input, input.conversationId, now);
    if (quick) return quick;
  }
  return em.transactional(async (em) => {
    // A retry of a turn already started (same key, or our own try whose commit we did not see).
    // Rows are read detached and written back by explicit statements (`db/stores/`).
    const retried = input.clientMessageId
      ? await messages.readByClientMessageId(em, userId, input.clientMessageId)
      : input.retrying
        ? await messages.readMessage(em, userId, ids.userMessage)
        : null;
    if (retried && (retried.content !== input.content || (input.conversationId && retried.conversation.id !== input.conversationId))) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This clientMessageId was already used for a different message');
    }
    const conversationId = retried ? retried.conversation.id : input.conversationId;

    let conversation: Conversation;
    let queueHead: string | null = null;
    if (conversationId) {
      const found = await conversations.readLocked(em, userId, conversationId);
      if (!found) throw notFound('Conversation');
      conversation = found;
      // A statement of its own, after the lock: a statement reads with the snapshot it began with,
      // and the lock may have waited for a request that joined the queue meanwhile.
      queueHead = await waiters.queueHead(em, userId, conversationId, now);
    } else {
      conversation = new Conversation(userId, firstMessageTitle(input.content), input.metadata ?? null);
    }

    // The reply's seq was reserved with the user message: replay it when it is complete.
    const reply = retried ? await messages.readAtSeq(em, userId, conversation.id, retried.seq + 1) : null;
    if (retried && reply?.status === MessageStatus.COMPLETE) {
      const calls = await toolCalls.toolCallsOfMessages(em, userId, [reply.id]);
      return { kind: 'replay', conversation, userMessage: retried, reply, toolCalls: calls };
    }
    if (conversation.status !== ConversationStatus.ACTIVE) {
      throw new AppError('CONVERSATION_CLOSED', `The conversation is ${conversation.status} and takes no new messages`);
    }
    const ours = conversation.turnId === ids.turn;
    const busy =
      conversation.isBusy(now) && !ours
        ? new ConversationBusy(conversation.id, (conversation.leaseExpiresAt?.getTime() ?? now.getTime()) - now.getTime())
        : conversationId && !ours && !(await takeTurnFromQueue(em, conversation, input.ticket, queueHead, now))
          ? queueBusy(conversation.id)
          : null;
    if (busy) {
      if (!input.enqueue) throw busy;
      return {
        kind: 'queued',
        conversationId: conversation.id,
        ticket: await joinQueue(em, userId, conversation.id, input.ticket, input.arrivedAt),
      };
    }
    // A turn that really begins is counted, by the statement that stores it; refused, it rolls
    // back with the rest. When it is `ours`, an earlier try of this request committed and was
    // counted then.
    const counts = ours ? [] : turnCounts(input.limits, !conversationId);

    // A turn that died without finishing left its (expired) lease and its reply in progress:
    // close that reply as failed, unless this very request is its retry.
    if (conversation.turnId !== null && !ours) {
      const slot = conversation.nextSeq - 1;
      if (retried?.seq !== slot - 1) {
        const dead = await messages.readAtSeq(em, userId, conversation.id, slot);
        if (dead?.status === MessageStatus.IN_PROGRESS) {
          const content = 'The turn was interrupted before the assistant answered.';
          await messages.updateMessage(em, userId, dead.id, { status: MessageStatus.FAILED, content });
          // Its subscribers hear it failed, under its (expired) lease, before this turn takes it.
          const failed = event(ConversationEventKind.TURN_FAILED, { error: { code: 'TURN_INTERRUPTED', message: content } });
          const last = await appendEvents(em, {
            userId,
            conversationId: conversation.id,
            turnId: conversation.turnId,
            replyId: dead.id,
            events: [failed],
            text: '',
          });
          if (last !== null) conversation.eventSeq = last;
        }
      }
    }

    conversation.turnId = ids.turn;
    conversation.leaseExpiresAt = new Date(now.getTime() + input.leaseMs);
    conversation.updatedAt = now;
    if (retried) {
      // Stored before this version kept replies in progress, a reply slot may still be empty.
      const resumed = reply ?? newReply(em, conversation, retried.seq + 1, ids.reply);
      if (!reply) conversation.messageCount += 1;
      const { turnId, leaseExpiresAt, updatedAt, messageCount } = conversation;
      checkTurn(
        await turns.startTurn(
          em,
          { userId, id: conversation.id, changes: { turnId, leaseExpiresAt, updatedAt, messageCount } },
          reply ? [] : [resumed],
          counts,
        ),
        input.limits,
      );
      // The resumed run writes its reply again from the start (its TURN_STARTED tells subscribers).
      if (reply && (resumed.status !== MessageStatus.IN_PROGRESS || resumed.content !== '')) {
        resumed.status = MessageStatus.IN_PROGRESS;
        resumed.content = '';
        await messages.updateMessage(em, userId, resumed.id, { status: resumed.status, content: '' });
      }
      return { kind: 'run', conversation, userMessage: retried, reply: resumed, resumed: true };
    }

    const merged = input.metadata != null && conversationId != null;
    if (merged) conversation.metadata = { ...conversation.metadata, ...input.metadata };
    // A conversation made empty (`createConversation` without a title) takes its first message's.
    const titled = conversation.title === null;
    if (titled) conversation.title = firstMessageTitle(input.content);
    const userMessage = new Message({
      conversation: em.getReference(Conversation, [conversation.userId, conversation.id], { wrapped: true }),
      userId,
      seq: conversation.nextSeq,
      role: MessageRole.USER,
      content: input.content,
      clientMessageId: input.clientMessageId ?? null,
    });
    userMessage.id = ids.userMessage;
    const started = newReply(em, conversation, conversation.nextSeq + 1, ids.reply);
    conversation.nextSeq += 2;
    conversation.messageCount += 2;
    conversation.lastMessageAt = now;
    const { metadata, title, turnId, leaseExpiresAt, updatedAt, lastMessageAt, nextSeq, messageCount } = conversation;
    const stored = conversationId
      ? {
          userId,
          id: conversation.id,
          changes: {
            ...(merged ? { metadata } : {}),
            ...(titled ? { title } : {}),
            turnId,
            leaseExpiresAt,
            updatedAt,
            lastMessageAt,
            nextSeq,
            messageCount,
          },
        }
      : { insert: conversation };
    checkTurn(await turns.startTurn(em, stored, [userMessage, started], counts), input.limits);
    return { kind: 'run', conversation, userMessage, reply: started, resumed: false };
  });
}

// Private: the one-statement start (`turns.quickStart`); null when the full path must decide.
async function startQuickly(
  em: EntityManager,
  ids: TurnIds,
  input: BeginInput,
  conversationId: string,
  now: Date,
): Promise<Started | null> {
  const { userId, limits } = input;
  const leaseExpiresAt = new Date(now.getTime() + input.leaseMs);
  const quick = await turns.quickStart(em, {
    userId,
    conversationId,
    turnId: ids.turn,
    userMessageId: ids.userMessage,
    replyId: ids.reply,
    content: input.content,
    clientMessageId: input.clientMessageId ?? null,
    metadata: input.metadata ?? null,
    title: firstMessageTitle(input.content),
    now,
    leaseExpiresAt,
    turnsPerMinute: limits.turnsPerMinute,
    tokensPerDay: limits.tokensPerDay,
    turnsWindowMs: TURNS_WINDOW_MS,
    contextLimit: input.contextLimit,
  });
  const { conversation } = quick;
  // Not the user's, or locked by another statement right now: the full path tells which (and waits).
  if (!conversation || quick.keyed) return null;
  if (quick.started) {
    const seq = conversation.nextSeq;
    Object.assign(conversation, {
      turnId: ids.turn,
      leaseExpiresAt,
      updatedAt: now,
      lastMessageAt: now,
      nextSeq: seq + 2,
      messageCount: conversation.messageCount + 2,
      metadata: input.metadata ? { ...conversation.metadata, ...input.metadata } : conversation.metadata,
      title: conversation.title ?? firstMessageTitle(input.content),
    });
    const userMessage = new Message({
      conversation: em.getReference(Conversation, [conversation.userId, conversation.id], { wrapped: true }),
      userId,
      seq,
      role: MessageRole.USER,
      content: input.content,
      clientMessageId: input.clientMessageId ?? null,
    });
    userMessage.id = ids.userMessage;
    userMessage.createdAt = now;
    const reply = newReply(em, conversation, seq + 1, ids.reply);
    reply.createdAt = now;
    // This turn's two messages, then those the statement read before them, newest first.
    const context =
      quick.context &&
      [
        { id: reply.id, role: reply.role, content: reply.content, status: reply.status, seq: reply.seq, calls: [] },
        { id: userMessage.id, role: userMessage.role, content: userMessage.content, status: userMessage.status, seq, calls: [] },
        ...quick.context,
      ].slice(0, input.contextLimit);
    return { kind: 'run', conversation, userMessage, reply, resumed: false, ...(context ? { context } : {}) };
  }
  // Refused the way the full path would refuse it, in the same order; a request that would wait
  // joins the queue on the full path, under the lock that finds the conversation busy.
  if (conversation.status !== ConversationStatus.ACTIVE) {
    throw new AppError('CONVERSATION_CLOSED', `The conversation is ${conversation.status} and takes no new messages`);
  }
  if (conversation.isBusy(now) && !input.enqueue) {
    throw new ConversationBusy(conversation.id, (conversation.leaseExpiresAt?.getTime() ?? now.getTime()) - now.getTime());
  }
  if (conversation.turnId !== null || conversation.waiting !== 0) return null;
  if (limits.tokensPerDay > 0 && !quick.tokens) return null;
  const retryAfter = (at: Date) => Math.max(1, at.getTime() - Date.now());
  if (quick.tokens)
    checkTurn([{ kind: RateKind.TOKENS, count: quick.tokens.count, retryAfterMs: retryAfter(quick.tokens.resetsAt) }], limits);
  if (quick.turnsResetAt) {
    checkTurn([{ kind: RateKind.TURNS, count: limits.turnsPerMinute + 1, retryAfterMs: retryAfter(quick.turnsResetAt) }], limits);
  }
  // Refused by a counter this statement's snapshot did not show yet (a race at a window's start): the full path decides.
  return null;
}

/** What step 7 is given: the turn as step 4 left it, and what the agent did. */
export type FinishInput = {
  userId: string;
  turnId: string;
  /** The conversation and the reply in progress as step 4 returned them (detached: they are updated here to match). */
  conversation: Conversation;
  reply: Message;
  /** The tool calls this run stored; a resumed turn's earlier ones are read back. */
  toolCalls: ToolCall[];
  resumed: boolean;
  outcome: AgentReply | null;
  limits: TurnLimits;
  /** The turn's events still to write (`TurnEvents.closing`), and the id of its last, TURN_COMPLETED or TURN_FAILED, made once for every try. */
  events: { pending: NewEvent[]; lastId: string };
};

/**
 * Step 7, in one statement: the reply completed (or failed when the outcome is null), the usage
 * counted, the lease freed (`db/stores/turns.ts`). Already completed by someone else (an earlier
 * try of this step committed, or, our lease lost, a retry of the same message on another instance
 * finished it first), it is read back as it is: either way it happened once.
 */
export async function finishTurn(
  em: EntityManager,
  input: FinishInput,
): Promise<{ conversation: Conversation; assistantMessage: Message; toolCalls: ToolCall[] }> {
  const { userId, outcome, conversation, reply } = input;
  const now = new Date();
  const changes = {
    status: outcome ? MessageStatus.COMPLETE : MessageStatus.FAILED,
    // The model's text is not refused like a client's: what PostgreSQL cannot hold is replaced, visibly.
    content: outcome ? storableText(outcome.content) : 'The agent failed to answer.',
    model: outcome?.model ?? null,
    promptTokens: outcome?.usage?.promptTokens ?? null,
    completionTokens: outcome?.usage?.completionTokens ?? null,
    totalTokens: outcome?.usage?.totalTokens ?? null,
    createdAt: now,
  };
  const usage = {
    promptTokens: outcome?.usage?.promptTokens ?? 0,
    completionTokens: outcome?.usage?.completionTokens ?? 0,
    totalTokens: outcome?.usage?.totalTokens ?? 0,
  };
  // The last event carries the reply as this statement stores it.
  const stored = Object.assign(Object.create(Message.prototype) as Message, reply, changes);
  const last: NewEvent = {
    id: input.events.lastId,
    kind: outcome ? ConversationEventKind.TURN_COMPLETED : ConversationEventKind.TURN_FAILED,
    createdAt: now,
    message: stored,
    ...(outcome ? {} : { error: { code: 'UPSTREAM_ERROR', message: 'The agent failed to answer.' } }),
  };
  const events = [...input.events.pending, last];
  const finished = await turns.finishTurn(em, {
    userId,
    conversationId: conversation.id,
    replyId: reply.id,
    turnId: input.turnId,
    reply: changes,
    usage,
    now,
    counts: tokenCounts(usage.totalTokens, input.limits),
    channel: TURN_ENDED_CHANNEL,
    events: {
      count: events.length,
      channel: EVENTS_CHANNEL,
      ...eventRows({ conversationId: conversation.id, turnId: input.turnId, replyId: reply.id, events }),
    },
  });
  if (!finished) throw new Error(`the turn's conversation or reply is gone (${conversation.id}, ${reply.id})`);
  if (!finished.wrote) {
    const [current, stored, calls] = await Promise.all([
      conversations.findConversation(em.fork(), userId, conversation.id),
      messages.readMessage(em, userId, reply.id),
      toolCalls.toolCallsOfMessages(em.fork(), userId, [reply.id]),
    ]);
    if (!current || !stored) throw new Error(`the turn's conversation or reply is gone (${conversation.id}, ${reply.id})`);
    return { conversation: current, assistantMessage: stored, toolCalls: calls };
  }
  Object.assign(reply, changes);
  conversation.promptTokens += usage.promptTokens;
  conversation.completionTokens += usage.completionTokens;
  conversation.totalTokens += usage.totalTokens;
  conversation.lastMessageAt = now;
  conversation.updatedAt = now;
  if (finished.ours) {
    conversation.turnId = null;
    conversation.leaseExpiresAt = null;
  }
  // A resumed turn's reply also holds the calls of the run that died: read them all back.
  const calls = input.resumed
    ? await toolCalls.toolCallsOfMessages(em.fork(), userId, [reply.id])
    : [...input.toolCalls].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { conversation, assistantMessage: reply, toolCalls: calls };
}

/**
 * A tool call as the turn stores it the moment it completes (`TurnEvents.toolFinished`), so that a
 * turn that dies keeps what it did. `id` is made by the caller, once: a try after an unknown
 * outcome inserts nothing twice.
 */
export function toolCallOf(
  em: EntityManager,
  row: { id: string; conversationId: string; replyId: string; userId: string; call: ToolCallRecord },
): ToolCall {
  const stored = new ToolCall({
    ...row.call,
    // Made by the model and by tool servers: NUL and lone surrogates are replaced, not refused.
    callId: storableText(row.call.callId),
    name: storableText(row.call.name),
    arguments: storableJson(row.call.arguments),
    result: storableJson(row.call.result),
    message: em.getReference(Message, [row.userId, row.replyId], { wrapped: true }),
    conversation: em.getReference(Conversation, [row.userId, row.conversationId], { wrapped: true }),
    userId: row.userId,
  });
  stored.id = row.id;
  return stored;
}

/** The reply of a turn, in progress: it holds its reserved seq from the start, so seq stays gapless. */
function newReply(em: EntityManager, conversation: Conversation, seq: number, id: string): Message {
  const reply = new Message({
    conversation: em.getReference(Conversation, [conversation.userId, conversation.id], { wrapped: true }),
    userId: conversation.userId,
    seq,
    role: MessageRole.ASSISTANT,
    content: '',
  });
  reply.id = id;
  reply.status = MessageStatus.IN_PROGRESS;
  return reply;
}

/** A conversation's title until a better one is given: the first `TITLE_CHARS` UTF-16 units of its first message, never cutting a surrogate pair in two. */
export function firstMessageTitle(content: string): string {
  const cut = content.slice(0, TITLE_CHARS);
  return /[\ud800-\udbff]$/.test(cut) && content.length > TITLE_CHARS ? cut.slice(0, -1) : cut;
}
