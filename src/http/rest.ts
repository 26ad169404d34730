/**
 * The REST route of the original sketch, kept for compatibility:
 * `POST /api/{user_id}/chat` with `{ "conversation_id"?, "message" }` ->
 * `{ "conversation_id", "response", "tool_calls" }`. The bearer token's subject must be `{user_id}`.
 * Errors are JSON `{ "error": { "code", "message" } }` with the status of their code (`./errors.ts`);
 * a 429 (RATE_LIMITED) also has `retryAfterMs` and a `Retry-After` header.
 */
import express, { Router } from 'express';
import { z } from 'zod';
import type { Authenticator } from '../auth/authenticator.js';
import type { Chat } from '../chat/chat.js';
import type { Orm } from '../db/orm.js';
import { badInput, forbidden } from '../errors.js';
import { sendError } from './errors.js';

const body = z.object({
  conversation_id: z.string().nullish(),
  message: z.string(),
});

export function restRouter(deps: { orm: Orm; auth: Authenticator; chat: Chat; bodyLimit: string }): Router {
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
      const input = { conversationId: parsed.data.conversation_id, message: parsed.data.message, clientMessageId: idempotencyKey };
      const turn = await deps.chat.sendMessage(deps.orm.em.fork(), viewer, input, { log: req.log, receivedAt: req.receivedAt });
      res.json({
        conversation_id: turn.conversation.id,
        response: turn.assistantMessage.content,
        tool_calls: turn.toolCalls.map((call) => ({
          id: call.callId,
          server: call.server,
          name: call.name,
          arguments: call.arguments,
          result: call.result,
          is_error: call.isError,
        })),
      });
    } catch (error) {
      sendError(res, error, req.log, 'internal error in a REST request');
    }
  });
  return router;
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
