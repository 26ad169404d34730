/**
 * What a turn writes, in its two short transactions (steps 4 and 7 of the turn). The queue of
 * turns waiting for a conversation is in `queue.ts`; the lease's renewal and early release in `lease.ts`.
 *
 * Step 4 locks the conversation row, decides (replay, resume, run, busy), stores the user
 * message together with its reply in progress at the next two `seq`s, and takes the lease.
 * Step 7 completes (or fails) that reply and frees the lease; a turn that cannot get there (an
 * error in between, a shutdown) is ended by `failTurn` (`lease.ts`) the same way. All may be tried again after a
 * transient error: ids are made before the first try, so a try finds out whether an earlier one
 * committed by looking rows up, never by inserting twice.
 */
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AgentReply, ToolCallRecord } from '../agent/types.js';
import { TURN_ENDED_CHANNEL } from '../db/signals.js';
import { Conversation, ConversationStatus, Message, MessageRole, MessageStatus, ToolCall } from '../entities/index.js';
import { AppError, notFound } from '../errors.js';
import { storableJson, storableText } from '../text.js';
import { ConversationBusy, takeTurnFromQueue } from './queue.js';
import { addTokensSql, countTurn, type TurnLimits } from './rate-limits.js';

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
  leaseMs: number;
  /** The user's limits a turn that begins is counted against. */
  limits: TurnLimits;
  /** An earlier try may have committed before its connection broke. */
  retrying: boolean;
};

export type Started =
  | { kind: 'replay'; conversation: Conversation; userMessage: Message; reply: Message; toolCalls: ToolCall[] }
  | { kind: 'run'; conversation: Conversation; userMessage: Message; reply: Message };

/** Step 4: see the module header. Throws NOT_FOUND, IDEMPOTENCY_KEY_REUSED, CONVERSATION_CLOSED, `ConversationBusy`, RATE_LIMITED. */
export async function beginTurn(em: EntityManager, ids: TurnIds, input: BeginInput): Promise<Started> {
  const { userId } = input;
  const now = new Date();
  return em.transactional(async (em) => {
    // A retry of a turn already started (same key, or our own try whose commit we did not see).
    const retried = input.clientMessageId
      ? await em.findOne(Message, { userId, clientMessageId: input.clientMessageId })
      : input.retrying
        ? await em.findOne(Message, { id: ids.userMessage, userId })
        : null;
    if (retried && (retried.content !== input.content || (input.conversationId && retried.conversation.id !== input.conversationId))) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This clientMessageId was already used for a different message');
    }
    const conversationId = retried ? retried.conversation.id : input.conversationId;

    let conversation: Conversation;
    if (conversationId) {
      // `refresh`: a row already in this request's identity map (an earlier try) must be re-read under the lock.
      const found = await em.findOne(Conversation, { id: conversationId, userId }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
      if (!found) throw notFound('Conversation');
      conversation = found;
    } else {
      conversation = new Conversation(userId, titleFrom(input.content), input.metadata ?? null);
      em.persist(conversation);
    }

    // The reply's seq was reserved with the user message: replay it when it is complete.
    const reply = retried ? await em.findOne(Message, { conversation: conversation.id, seq: retried.seq + 1 }, { refresh: true }) : null;
    if (retried && reply?.status === MessageStatus.COMPLETE) {
      const toolCalls = await em.find(ToolCall, { message: reply.id, userId }, { orderBy: { id: 'asc' } });
      return { kind: 'replay', conversation, userMessage: retried, reply, toolCalls };
    }
    if (conversation.status !== ConversationStatus.ACTIVE) {
      throw new AppError('CONVERSATION_CLOSED', `The conversation is ${conversation.status} and takes no new messages`);
    }
    const ours = conversation.turnId === ids.turn;
    if (conversation.isBusy(now) && !ours) {
      throw new ConversationBusy(conversation.id, (conversation.leaseExpiresAt?.getTime() ?? now.getTime()) - now.getTime());
    }
    if (conversationId && !ours) await takeTurnFromQueue(em, conversation.id, input.ticket, now);
    // A turn that really begins is counted (one statement); refused, it rolls back with the rest.
    // When it is `ours`, an earlier try of this request committed and was counted then.
    if (!ours) await countTurn(em, userId, input.limits, !conversationId);

    // A turn that died without finishing left its (expired) lease and its reply in progress:
    // close that reply as failed, unless this very request is its retry.
    if (conversation.turnId !== null && !ours) {
      const slot = conversation.nextSeq - 1;
      if (retried?.seq !== slot - 1) {
        const dead = await em.findOne(Message, { conversation: conversation.id, seq: slot }, { refresh: true });
        if (dead?.status === MessageStatus.IN_PROGRESS) markFailed(dead, 'The turn was interrupted before the assistant answered.');
      }
    }

    conversation.turnId = ids.turn;
    conversation.leaseExpiresAt = new Date(now.getTime() + input.leaseMs);
    conversation.updatedAt = now;
    if (retried) {
      // Stored before this version kept replies in progress, a reply slot may still be empty.
      const resumed = reply ?? newReply(em, conversation, retried.seq + 1, ids.reply);
      if (!reply) {
        em.persist(resumed);
        conversation.messageCount += 1;
      }
      resumed.status = MessageStatus.IN_PROGRESS;
      return { kind: 'run', conversation, userMessage: retried, reply: resumed };
    }

    if (input.metadata && conversationId) conversation.metadata = { ...conversation.metadata, ...input.metadata };
    const userMessage = new Message({
      conversation: em.getReference(Conversation, conversation.id, { wrapped: true }),
      userId,
      seq: conversation.nextSeq,
      role: MessageRole.USER,
      content: input.content,
      clientMessageId: input.clientMessageId ?? null,
    });
    userMessage.id = ids.userMessage;
    const started = newReply(em, conversation, conversation.nextSeq + 1, ids.reply);
    em.persist([userMessage, started]);
    conversation.nextSeq += 2;
    conversation.messageCount += 2;
    conversation.lastMessageAt = now;
    return { kind: 'run', conversation, userMessage, reply: started };
  });
}

/** Step 7: the reply completed (or failed when `reply` is null), the usage counted, the lease freed. */
export async function finishTurn(
  em: EntityManager,
  input: { conversationId: string; userId: string; replyId: string; turnId: string; reply: AgentReply | null; limits: TurnLimits },
): Promise<{ conversation: Conversation; assistantMessage: Message; toolCalls: ToolCall[] }> {
  const now = new Date();
  return em.transactional(async (em) => {
    // `refresh`: the identity map holds these rows as step 4 left them; the lease may have moved since.
    const conversation = await em.findOneOrFail(
      Conversation,
      { id: input.conversationId, userId: input.userId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    const assistant = await em.findOneOrFail(Message, { id: input.replyId, userId: input.userId }, { refresh: true });
    const toolCalls = await em.find(ToolCall, { message: input.replyId, userId: input.userId }, { orderBy: { id: 'asc' } });
    const ours = conversation.turnId === input.turnId;
    // Already completed: an earlier try of this step committed, or (our lease lost) a retry of
    // the same message on another instance finished it first. Either way it happened once.
    if (assistant.status === MessageStatus.COMPLETE && !ours) return { conversation, assistantMessage: assistant, toolCalls };

    const { reply } = input;
    assistant.status = reply ? MessageStatus.COMPLETE : MessageStatus.FAILED;
    // The model's text is not refused like a client's: what PostgreSQL cannot hold is replaced, visibly.
    assistant.content = reply ? storableText(reply.content) : 'The agent failed to answer.';
    assistant.model = reply?.model ?? null;
    assistant.promptTokens = reply?.usage?.promptTokens ?? null;
    assistant.completionTokens = reply?.usage?.completionTokens ?? null;
    assistant.totalTokens = reply?.usage?.totalTokens ?? null;
    assistant.createdAt = now;
    if (reply?.usage) {
      conversation.promptTokens += reply.usage.promptTokens;
      conversation.completionTokens += reply.usage.completionTokens;
      conversation.totalTokens += reply.usage.totalTokens;
    }
    conversation.lastMessageAt = now;
    conversation.updatedAt = now;
    if (ours) {
      conversation.turnId = null;
      conversation.leaseExpiresAt = null;
    }
    // One statement for two things: when the lease was ours, the notice (delivered on commit) that
    // wakes requests waiting for this conversation on any instance; when the quota is on, the
    // turn's model tokens added to the user's day.
    const tokens = addTokensSql(input.userId, reply?.usage?.totalTokens ?? 0, input.limits);
    if (ours || tokens) {
      await em.execute(`${tokens?.sql ?? ''}select pg_notify(?, ?) where ?`, [
        ...(tokens?.params ?? []),
        TURN_ENDED_CHANNEL,
        conversation.id,
        ours,
      ]);
    }
    return { conversation, assistantMessage: assistant, toolCalls };
  });
}

/**
 * Stores one tool call as soon as it completes, so that a turn that dies keeps what it did.
 * `id` is made by the caller: after an unknown outcome the same insert is recognised, not doubled.
 */
export async function storeToolCall(
  em: EntityManager,
  row: { id: string; conversationId: string; replyId: string; userId: string; call: ToolCallRecord },
  retrying: boolean,
): Promise<void> {
  if (retrying && (await em.findOne(ToolCall, { id: row.id }))) return;
  const stored = new ToolCall({
    ...row.call,
    // Made by the model and by tool servers: NUL and lone surrogates are replaced, not refused.
    callId: storableText(row.call.callId),
    name: storableText(row.call.name),
    arguments: storableJson(row.call.arguments),
    result: storableJson(row.call.result),
    message: em.getReference(Message, row.replyId, { wrapped: true }),
    conversation: em.getReference(Conversation, row.conversationId, { wrapped: true }),
    userId: row.userId,
  });
  stored.id = row.id;
  // One INSERT on its own (autocommit), not a flush with its own transaction around it.
  await em.insert(stored);
}

/** The reply of a turn, in progress: it holds its reserved seq from the start, so seq stays gapless. */
function newReply(em: EntityManager, conversation: Conversation, seq: number, id: string): Message {
  const reply = new Message({
    conversation: em.getReference(Conversation, conversation.id, { wrapped: true }),
    userId: conversation.userId,
    seq,
    role: MessageRole.ASSISTANT,
    content: '',
  });
  reply.id = id;
  reply.status = MessageStatus.IN_PROGRESS;
  return reply;
}

function markFailed(message: Message, content: string): void {
  message.status = MessageStatus.FAILED;
  message.content = content;
}

/** The first `TITLE_CHARS` UTF-16 units of a first message, never cutting a surrogate pair in two. */
function titleFrom(content: string): string {
  const cut = content.slice(0, TITLE_CHARS);
  return /[\ud800-\udbff]$/.test(cut) && content.length > TITLE_CHARS ? cut.slice(0, -1) : cut;
}
