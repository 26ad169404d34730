/**
 * The REST route of the original sketch, kept for compatibility:
 * `POST /api/{user_id}/chat` with `{ "conversation_id"?, "message" }` ->
 * `{ "conversation_id", "response", "tool_calls" }`. The bearer token's subject must be `{user_id}`.
 * Errors are JSON `{ "error": { "code", "message" } }` with the status of their code (`./errors.ts`);
 * a 429 (RATE_LIMITED) also has `retryAfterMs` and a `Retry-After` header. With
 * `Accept: text/event-stream` the answer is the turn's events as they happen (`streamTurn`).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import express, { type Response, Router } from 'express';
import { z } from 'zod';
import type { Authenticator } from '../auth/authenticator.js';
import type { Viewer } from '../auth/viewer.js';
import type { Chat, SentMessage } from '../chat/chat.js';
import { ConversationEventKind } from '../chat/events.js';
import type { Orm } from '../db/orm.js';
import type { ToolCallView } from '../db/stores/tool-calls.js';
import { AppError, badInput, forbidden } from '../errors.js';
import { encodeCursor } from '../graphql/pagination.js';
import { sendError } from './errors.js';

const body = z.object({
  conversation_id: z.string().nullish(),
  message: z.string(),
});

export function restRouter(deps: {
  orm: Orm;
  auth: Authenticator;
  chat: Chat;
  bodyLimit: string;
  /** How often an event stream with nothing to say sends a comment, so that proxies keep it open (SUBSCRIPTION_HEARTBEAT). */
  heartbeatMs: number;
}): Router {
  const router = Router();
  router.post('/:userId/chat', express.json({ limit: deps.bodyLimit }), async (req, res) => {
    try {
      const viewer = await deps.auth.authenticate(req.headers.authorization);
      if (viewer.userId !== req.params.userId) {
        throw forbidden('The bearer token belongs to another user than the one in the path');
      }
      const parsed = body.safeParse(req.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw badInput(`Invalid body: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'not the expected shape'}`);
      }
      const idempotencyKey = headerText(req.header('Idempotency-Key'), 'Idempotency-Key');
      const streaming = req.accepts(['application/json', 'text/event-stream']) === 'text/event-stream';
      const input = { conversationId: parsed.data.conversation_id, message: parsed.data.message, clientMessageId: idempotencyKey };
      const em = deps.orm.em.fork();
      const turn = await deps.chat.sendMessage(em, viewer, { ...input, wait: !streaming }, { log: req.log, receivedAt: req.receivedAt });
      if (!streaming) {
        res.json(answer(turn.conversation.id, turn.assistantMessage.content, turn.toolCalls));
        return;
      }
      await streamTurn(deps.chat, em, viewer, turn, res, deps.heartbeatMs);
    } catch (error) {
      if (!res.headersSent) sendError(res, error, req.log, 'internal error in a REST request');
      else {
        if (!(error instanceof AppError)) req.log.error({ err: error }, 'internal error in a REST event stream');
        res.end();
      }
    }
  });
  return router;
}

/**
 * The turn's events as Server-Sent Events (`Accept: text/event-stream`): one per event, named by
 * its kind in lower case, its `id` the cursor `conversationEvents(after:)` resumes from, its data
 * JSON; the last is `turn_completed` (with the body a JSON client gets) or `turn_failed`. The turn
 * runs on if the client goes away.
 */
async function streamTurn(
  chat: Chat,
  em: EntityManager,
  viewer: Viewer,
  turn: SentMessage,
  res: Response,
  heartbeatMs: number,
): Promise<void> {
  res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
  res.flushHeaders();
  const conversationId = turn.conversation.id;
  if (turn.eventsAfter === null) {
    // Answered whole (a replay): its end, at once.
    send(res, 'turn_completed', null, answer(conversationId, turn.assistantMessage.content, turn.toolCalls));
    res.end();
    return;
  }
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  const events = await chat.conversationEvents(em, viewer, conversationId, {
    after: turn.eventsAfter,
    backlog: () => res.writableLength,
    signal: gone.signal,
  });
  const heartbeat = setInterval(() => res.write(':\n\n'), heartbeatMs);
  const calls: ToolCallView[] = [];
  try {
    for await (const event of events) {
      if (event.messageId !== turn.assistantMessage.id) continue;
      const cursor = encodeCursor('event', [event.position]);
      if (event.toolCall) calls.push(event.toolCall);
      switch (event.kind) {
        case ConversationEventKind.TURN_STARTED:
          send(res, event.kind, cursor, {
            conversation_id: conversationId,
            message_id: event.messageId,
            user_message_id: event.userMessageId,
          });
          break;
        case ConversationEventKind.TEXT_DELTA:
          send(res, event.kind, cursor, { text: event.text });
          break;
        case ConversationEventKind.TOOL_CALL_STARTED:
          send(res, event.kind, cursor, {
            id: event.call?.callId,
            server: event.call?.server,
            name: event.call?.name,
            arguments: event.call?.arguments,
          });
          break;
        case ConversationEventKind.TOOL_CALL_FINISHED:
          send(res, event.kind, cursor, event.toolCall && restCall(event.toolCall));
          break;
        case ConversationEventKind.TURN_COMPLETED:
          send(res, event.kind, cursor, answer(conversationId, event.message?.content ?? '', calls));
          return;
        case ConversationEventKind.TURN_FAILED:
          send(res, event.kind, cursor, {
            error: { code: event.error?.code ?? 'UPSTREAM_ERROR', message: event.error?.message ?? 'The turn failed' },
          });
          return;
      }
    }
  } finally {
    clearInterval(heartbeat);
    await events.return?.();
    res.end();
  }
}

// Private: one Server-Sent Event.
function send(res: Response, event: string, id: string | null, data: unknown): void {
  res.write(`event: ${event}\n${id ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
}

// Private: the body of a turn's answer, as this route has always given it.
function answer(conversationId: string, response: string, calls: readonly ToolCallView[]) {
  return { conversation_id: conversationId, response, tool_calls: calls.map(restCall) };
}

// Private: a tool call as this route gives it.
function restCall(call: ToolCallView) {
  return { id: call.callId, server: call.server, name: call.name, arguments: call.arguments, result: call.result, is_error: call.isError };
}

/**
 * A header's value as the UTF-8 text the client sent. Node hands headers over as latin1 (one
 * character per byte), so `é` sent as UTF-8 would arrive as "Ã©", and the bytes of a lone
 * surrogate would pass as three odd letters: decode strictly, refuse what is not UTF-8.
 */
function headerText(value: string | undefined, name: string): string | undefined {
  if (value === undefined || /^[\x20-\x7e]*$/.test(value)) return value;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(value, 'latin1'));
  } catch {
    throw badInput(`${name} is not UTF-8 text`, name);
  }
}
