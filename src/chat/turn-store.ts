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
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AgentReply, ToolCallRecord } from '../agent/types.js';
import { signalTurnEnded } from '../db/signals.js';
import * as conversations from '../db/stores/conversations.js';
import * as messages from '../db/stores/messages.js';
import * as toolCalls from '../db/stores/tool-calls.js';
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
    if (conversationId) {
      const found = await conversations.lockConversation(em, userId, conversationId);
      if (!found) throw notFound('Conversation');
      conversation = found;
    } else {
      conversation = new Conversation(userId, titleFrom(input.content), input.metadata ?? null);
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
    if (conversation.isBusy(now) && !ours) {
      throw new ConversationBusy(conversation.id, (conversation.leaseExpiresAt?.getTime() ?? now.getTime()) - now.getTime());
    }
    if (conversationId && !ours) await takeTurnFromQueue(em, userId, conversation.id, input.ticket, now);
    // A turn that really begins is counted (one statement); refused, it rolls back with the rest.
    // When it is `ours`, an earlier try of this request committed and was counted then.
    if (!ours) await countTurn(em, userId, input.limits, !conversationId);

    // A turn that died without finishing left its (expired) lease and its reply in progress:
    // close that reply as failed, unless this very request is its retry.
    if (conversation.turnId !== null && !ours) {
      const slot = conversation.nextSeq - 1;
      if (retried?.seq !== slot - 1) {
        const dead = await messages.readAtSeq(em, userId, conversation.id, slot);
        if (dead?.status === MessageStatus.IN_PROGRESS) {
          await messages.updateMessage(em, userId, dead.id, {
            status: MessageStatus.FAILED,
            content: 'The turn was interrupted before the assistant answered.',
          });
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
      await saveTurnState(em, conversation, false);
      if (!reply) await messages.insertMessages(em, [resumed]);
      else if (resumed.status !== MessageStatus.IN_PROGRESS) {
        resumed.status = MessageStatus.IN_PROGRESS;
        await messages.updateMessage(em, userId, resumed.id, { status: resumed.status });
      }
      return { kind: 'run', conversation, userMessage: retried, reply: resumed };
    }

    const merged = input.metadata != null && conversationId != null;
    if (merged) conversation.metadata = { ...conversation.metadata, ...input.metadata };
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
    conversation.nextSeq += 2;
    conversation.messageCount += 2;
    conversation.lastMessageAt = now;
    if (conversationId) await saveTurnState(em, conversation, merged);
    else await conversations.insertConversation(em, conversation);
    await messages.insertMessages(em, [userMessage, started]);
    return { kind: 'run', conversation, userMessage, reply: started };
  });
}

// Private: writes what step 4 changed on a conversation that is already stored (its metadata
// only when the message merged some in).
async function saveTurnState(em: EntityManager, conversation: Conversation, metadataChanged: boolean): Promise<void> {
  const { metadata, turnId, leaseExpiresAt, updatedAt, lastMessageAt, nextSeq, messageCount } = conversation;
  await conversations.updateConversation(em, conversation.userId, conversation.id, {
    ...(metadataChanged ? { metadata } : {}),
    turnId,
    leaseExpiresAt,
    updatedAt,
    lastMessageAt,
    nextSeq,
    messageCount,
  });
}

/** Step 7: the reply completed (or failed when `reply` is null), the usage counted, the lease freed. */
export async function finishTurn(
  em: EntityManager,
  input: { conversationId: string; userId: string; replyId: string; turnId: string; reply: AgentReply | null; limits: TurnLimits },
): Promise<{ conversation: Conversation; assistantMessage: Message; toolCalls: ToolCall[] }> {
  const now = new Date();
  return em.transactional(async (em) => {
    const { userId } = input;
    // Read fresh and detached: the lease may have moved since step 4.
    const conversation = await conversations.lockConversation(em, userId, input.conversationId);
    const assistant = await messages.readMessage(em, userId, input.replyId);
    if (!conversation || !assistant)
      throw new Error(`the turn's conversation or reply is gone (${input.conversationId}, ${input.replyId})`);
    const calls = await toolCalls.toolCallsOfMessages(em, userId, [input.replyId]);
    const ours = conversation.turnId === input.turnId;
    // Already completed: an earlier try of this step committed, or (our lease lost) a retry of
    // the same message on another instance finished it first. Either way it happened once.
    if (assistant.status === MessageStatus.COMPLETE && !ours) return { conversation, assistantMessage: assistant, toolCalls: calls };

    const { reply } = input;
    assistant.status = reply ? MessageStatus.COMPLETE : MessageStatus.FAILED;
    // The model's text is not refused like a client's: what PostgreSQL cannot hold is replaced, visibly.
    assistant.content = reply ? storableText(reply.content) : 'The agent failed to answer.';
    assistant.model = reply?.model ?? null;
    assistant.promptTokens = reply?.usage?.promptTokens ?? null;
    assistant.completionTokens = reply?.usage?.completionTokens ?? null;
    assistant.totalTokens = reply?.usage?.totalTokens ?? null;
    assistant.createdAt = now;
    const { status, content, model, promptTokens, completionTokens, totalTokens, createdAt } = assistant;
    await messages.updateMessage(em, userId, assistant.id, {
      status,
      content,
      model,
      promptTokens,
      completionTokens,
      totalTokens,
      createdAt,
    });

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
    await conversations.updateConversation(em, userId, conversation.id, {
      promptTokens: conversation.promptTokens,
      completionTokens: conversation.completionTokens,
      totalTokens: conversation.totalTokens,
      lastMessageAt: now,
      updatedAt: now,
      turnId: conversation.turnId,
      leaseExpiresAt: conversation.leaseExpiresAt,
    });
    // One statement for two things: when the lease was ours, the notice (delivered on commit) that
    // wakes requests waiting for this conversation on any instance; when the quota is on, the
    // turn's model tokens added to the user's day.
    await signalTurnEnded(em, conversation.id, { notify: ours, first: addTokensSql(userId, reply?.usage?.totalTokens ?? 0, input.limits) });
    return { conversation, assistantMessage: assistant, toolCalls: calls };
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
  if (retrying && (await toolCalls.toolCallExists(em, row.userId, row.id))) return;
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
  await toolCalls.insertToolCall(em, stored);
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

/** The first `TITLE_CHARS` UTF-16 units of a first message, never cutting a surrogate pair in two. */
function titleFrom(content: string): string {
  const cut = content.slice(0, TITLE_CHARS);
  return /[\ud800-\udbff]$/.test(cut) && content.length > TITLE_CHARS ? cut.slice(0, -1) : cut;
}
