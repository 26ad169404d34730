/**
 * The stateless turn: one `sendMessage`, from a verified viewer to the stored reply.
 *
 * The seven steps of DESIGN.md, in order. Nothing survives in process memory between turns:
 * the conversation row holds the lease that keeps one turn running per conversation, and the
 * reply's `seq` is reserved with the user message, so a turn that dies half way is finished by
 * a retry with the same `clientMessageId`, or closed as failed by the next message.
 */
import { setTimeout } from 'node:timers/promises';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Agent, AgentMessage, AgentReply, ToolBox, ToolCallRecord } from '../agent/types.js';
import { Conversation, ConversationStatus, Message, MessageRole, MessageStatus, ToolCall } from '../entities/index.js';
import { isUuid, newId } from '../entities/ids.js';
import { AppError, badInput, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import { loadContext } from './history.js';

export type Viewer = { userId: string };

export type SendMessageInput = {
  conversationId?: string | null;
  message: string;
  clientMessageId?: string | null;
  metadata?: Record<string, unknown> | null;
  /** While another turn runs: `REJECT` (default) answers CONVERSATION_BUSY, `ENQUEUE` waits for it. */
  ifBusy?: 'REJECT' | 'ENQUEUE' | null;
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
};

/** What a turn needs from the outside; all of it is made per request or is immutable. */
export type TurnDeps = {
  em: EntityManager;
  agent: Agent;
  /** Opens the tools of this turn for `userId`; closed when the turn ends. */
  openTools(em: EntityManager, userId: string): Promise<ToolBox & { close(): Promise<void> }>;
  settings: TurnSettings;
  log: Logger;
};

const TITLE_CHARS = 80;
const CLIENT_MESSAGE_ID_MAX = 255;

/** Runs one turn of `viewer` in a conversation (a new one when `conversationId` is absent). */
export async function sendMessage(deps: TurnDeps, viewer: Viewer, input: SendMessageInput): Promise<TurnResult> {
  // Step 1 (authentication) happened in transport: `viewer` comes from a verified token.
  // Step 2: `deps.em` is this request's own unit of work.
  const content = validate(input, deps.settings);

  // Steps 3 and 4: one short transaction that locks the conversation and takes the lease.
  const start = await beginTurnWhenFree(deps, viewer, input, content);
  if (start.kind === 'replay') return { ...start.result, replayed: true };
  const { conversation, userMessage, turnId } = start;

  // Step 5: the context, by keyset on (conversation_id, seq): never the whole history.
  const messages = await loadContext(deps.em, conversation.id, userMessage.seq, deps.settings.historyLimit);

  // Step 6: the agent, with no transaction open; the lease is renewed while it runs.
  const renewal = renewLease(deps, conversation.id, turnId);
  const { reply, failure, calls } = await runAgent(deps, messages, viewer.userId).finally(() => renewal.stop());

  // Step 7: one short transaction that stores the reply and its tool calls and frees the lease.
  const finished = await finishTurn(deps, conversation.id, userMessage, turnId, start.placeholder, reply, calls);
  if (!reply) {
    deps.log.error({ err: failure, conversationId: conversation.id }, 'agent failed');
    throw new AppError('UPSTREAM_ERROR', 'The agent failed to answer; the message is stored and can be retried with the same clientMessageId', {
      cause: failure,
    });
  }
  return { ...finished, userMessage, replayed: false };
}

// Private: the agent with this turn's tools; a failure is returned with the calls made before it.
// The calls are copied when the run ends: a call still running past the deadline is not stored.
async function runAgent(
  deps: TurnDeps,
  messages: AgentMessage[],
  userId: string,
): Promise<{ reply: AgentReply | null; failure?: unknown; calls: readonly ToolCallRecord[] }> {
  let tools: (ToolBox & { close(): Promise<void> }) | undefined;
  try {
    tools = await deps.openTools(deps.em, userId);
    const signal = AbortSignal.timeout(deps.settings.turnDeadlineMs);
    const deadline = new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => reject(new Error(`the turn took longer than ${deps.settings.turnDeadlineMs} ms`)), { once: true });
    });
    // The agent gets the signal to stop its work; the race ends the turn even if it does not listen.
    return { reply: await Promise.race([deps.agent.run({ messages, tools, signal }), deadline]), calls: [...tools.calls] };
  } catch (error) {
    return { reply: null, failure: error, calls: [...(tools?.calls ?? [])] };
  } finally {
    await tools?.close();
  }
}

// Private: pushes the lease's expiry forward while the turn is alive, so that only a dead
// instance's turn can be taken over. The update matches on the turn id: a lost lease stays lost.
function renewLease(deps: TurnDeps, conversationId: string, turnId: string): { stop(): void } {
  const { turnLeaseMs } = deps.settings;
  const timer = setInterval(() => {
    deps.em
      .fork()
      .nativeUpdate(Conversation, { id: conversationId, turnId }, { leaseExpiresAt: new Date(Date.now() + turnLeaseMs) })
      .catch((error: unknown) => deps.log.warn({ err: error, conversationId }, 'lease renewal failed'));
  }, Math.max(Math.floor(turnLeaseMs / 3), 50));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

type Started =
  | { kind: 'replay'; result: Omit<TurnResult, 'replayed'> }
  | { kind: 'run'; conversation: Conversation; userMessage: Message; turnId: string; placeholder: Message | null };

// Private: with `ifBusy: ENQUEUE`, tries again with backoff until the running turn is done or
// `enqueueTimeoutMs` has passed. Each try is a short transaction: nothing is held while waiting.
async function beginTurnWhenFree(deps: TurnDeps, viewer: Viewer, input: SendMessageInput, content: string): Promise<Started> {
  const deadline = Date.now() + deps.settings.enqueueTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await beginTurn(deps, viewer, input, content);
    } catch (error) {
      const waiting = input.ifBusy === 'ENQUEUE' && error instanceof AppError && error.code === 'CONVERSATION_BUSY';
      if (!waiting || Date.now() >= deadline) throw error;
      await setTimeout(Math.min(25 * 2 ** attempt, 500, Math.max(deadline - Date.now(), 0)));
    }
  }
}

// Private: steps 3 and 4.
async function beginTurn(deps: TurnDeps, viewer: Viewer, input: SendMessageInput, content: string): Promise<Started> {
  const { userId } = viewer;
  const now = new Date();
  return deps.em.transactional(async (em) => {
    // A retry of a turn already started: replay it, or resume it when it never finished.
    const retried = input.clientMessageId
      ? await em.findOne(Message, { userId, clientMessageId: input.clientMessageId })
      : null;
    if (retried && (retried.content !== content || (input.conversationId && retried.conversation.id !== input.conversationId))) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This clientMessageId was already used for a different message');
    }
    const conversationId = retried ? retried.conversation.id : input.conversationId;

    let conversation: Conversation;
    // `refresh`: a row already in this request's identity map (an ENQUEUE retry) must be re-read under the lock.
    if (conversationId) {
      const found = await em.findOne(Conversation, { id: conversationId, userId }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
      if (!found) throw notFound('Conversation');
      conversation = found;
    } else {
      conversation = new Conversation(userId, content.slice(0, TITLE_CHARS), input.metadata ?? null);
      em.persist(conversation);
    }
    if (conversation.status !== ConversationStatus.ACTIVE) {
      throw new AppError('CONVERSATION_CLOSED', `The conversation is ${conversation.status} and takes no new messages`);
    }
    if (conversation.isBusy(now)) {
      throw new AppError('CONVERSATION_BUSY', 'Another turn is running in this conversation', {
        extensions: { retryAfterMs: conversation.leaseExpiresAt!.getTime() - now.getTime() },
      });
    }

    // The reply's seq was reserved with the user message; it may hold a failed reply.
    const reservedReply = retried
      ? await em.findOne(Message, { conversation: conversation.id, seq: retried.seq + 1 })
      : null;
    if (retried && reservedReply && reservedReply.status === MessageStatus.COMPLETE) {
      const toolCalls = await em.find(ToolCall, { message: reservedReply.id, userId }, { orderBy: { id: 'asc' } });
      return { kind: 'replay', result: { conversation, userMessage: retried, assistantMessage: reservedReply, toolCalls } };
    }

    // A turn that died without finishing left its (expired) lease and maybe an empty reply slot:
    // close it as failed so that seq stays gapless, unless this very request is its retry.
    if (conversation.turnId !== null) {
      const slot = conversation.nextSeq - 1;
      const resumesIt = retried?.seq === slot - 1;
      if (!resumesIt && !(await em.findOne(Message, { conversation: conversation.id, seq: slot }))) {
        em.persist(failedReply(em, conversation, slot, 'The turn was interrupted before the assistant answered.'));
        conversation.messageCount += 1;
      }
    }

    const turnId = newId();
    conversation.turnId = turnId;
    conversation.leaseExpiresAt = new Date(now.getTime() + deps.settings.turnLeaseMs);
    conversation.updatedAt = now;
    if (retried) return { kind: 'run', conversation, userMessage: retried, turnId, placeholder: reservedReply };

    if (input.metadata && conversationId) conversation.metadata = { ...conversation.metadata, ...input.metadata };
    const userMessage = new Message({
      conversation: em.getReference(Conversation, conversation.id, { wrapped: true }),
      userId,
      seq: conversation.nextSeq,
      role: MessageRole.USER,
      content,
      clientMessageId: input.clientMessageId ?? null,
    });
    conversation.nextSeq += 2;
    conversation.messageCount += 1;
    conversation.lastMessageAt = now;
    em.persist(userMessage);
    return { kind: 'run', conversation, userMessage, turnId, placeholder: null };
  });
}

// Private: step 7. Writes the reply (or a failed reply) at the reserved seq and frees the lease.
async function finishTurn(
  deps: TurnDeps,
  conversationId: string,
  userMessage: Message,
  turnId: string,
  placeholder: Message | null,
  reply: AgentReply | null,
  calls: readonly ToolCallRecord[],
): Promise<Omit<TurnResult, 'replayed' | 'userMessage'>> {
  const now = new Date();
  return deps.em.transactional(async (em) => {
    // `refresh`: the identity map still holds the row as step 4 left it; the lease may have changed since.
    const conversation = await em.findOneOrFail(
      Conversation,
      { id: conversationId, userId: userMessage.userId },
      { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    const seq = userMessage.seq + 1;
    // Our lease ran out (the instance stalled) and another turn may have closed our slot as failed.
    const lostLease = conversation.turnId !== turnId;
    let assistant = placeholder ? em.merge(placeholder) : lostLease ? await em.findOne(Message, { conversation: conversationId, seq }) : null;
    if (!assistant) {
      assistant = failedReply(em, conversation, seq, '');
      em.persist(assistant);
      conversation.messageCount += 1;
    }
    assistant.status = reply ? MessageStatus.COMPLETE : MessageStatus.FAILED;
    assistant.content = reply ? reply.content : 'The agent failed to answer.';
    assistant.model = reply?.model ?? null;
    assistant.promptTokens = reply?.usage?.promptTokens ?? null;
    assistant.completionTokens = reply?.usage?.completionTokens ?? null;
    assistant.totalTokens = reply?.usage?.totalTokens ?? null;
    assistant.createdAt = now;

    const messageRef = em.getReference(Message, assistant.id, { wrapped: true });
    const conversationRef = em.getReference(Conversation, conversation.id, { wrapped: true });
    const toolCalls = calls.map(
      (call) => new ToolCall({ ...call, message: messageRef, conversation: conversationRef, userId: userMessage.userId }),
    );
    em.persist(toolCalls);

    if (reply?.usage) {
      conversation.promptTokens += reply.usage.promptTokens;
      conversation.completionTokens += reply.usage.completionTokens;
      conversation.totalTokens += reply.usage.totalTokens;
    }
    conversation.lastMessageAt = now;
    conversation.updatedAt = now;
    if (!lostLease) {
      conversation.turnId = null;
      conversation.leaseExpiresAt = null;
    }
    return { conversation, assistantMessage: assistant, toolCalls };
  });
}

/** An assistant message marked failed: it keeps the reserved seq so that `seq` stays gapless. */
function failedReply(em: EntityManager, conversation: Conversation, seq: number, content: string): Message {
  const message = new Message({
    conversation: em.getReference(Conversation, conversation.id, { wrapped: true }),
    userId: conversation.userId,
    seq,
    role: MessageRole.ASSISTANT,
    content,
  });
  message.status = MessageStatus.FAILED;
  return message;
}

// Private: bad input is refused before any SQL runs.
function validate(input: SendMessageInput, settings: TurnSettings): string {
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
