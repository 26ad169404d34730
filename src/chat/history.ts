/**
 * The context of a turn: the last `limit` messages up to the new one, read by keyset on
 * `(conversation_id, seq)` (one indexed range scan, whatever the length of the history), with the
 * tool calls of the assistant messages among them (one more statement), turned into the agent's
 * neutral messages. Past tool use is replayed as real calls followed by their results.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AgentMessage } from '../agent/types.js';
import { type ContextRow, contextRows } from '../db/stores/turns.js';
import { type Message, MessageRole, MessageStatus, type ToolCall } from '../entities/index.js';

type StoredMessage = Pick<Message, 'id' | 'role' | 'content' | 'status'>;
type StoredCall = Pick<ToolCall, 'callId' | 'name' | 'arguments' | 'result'>;

/**
 * Loads the messages of the user's conversation `conversationId` up to and including `uptoSeq` (the reply in progress of
 * this turn, right after the new user message), at most `limit` of them, oldest first, with
 * their tool calls.
 */
export async function loadContext(
  em: EntityManager,
  userId: string,
  conversationId: string,
  uptoSeq: number,
  limit: number,
): Promise<AgentMessage[]> {
  return contextMessages(await contextRows(em, userId, conversationId, uptoSeq, limit));
}

/** The agent's messages of context rows read newest first (by `loadContext`, or by the turn's quick start). */
export function contextMessages(newestFirst: readonly ContextRow[]): AgentMessage[] {
  const rows = newestFirst.toReversed();
  return toAgentMessages(rows, new Map(rows.map((row) => [row.id, row.calls])));
}

/**
 * Maps stored messages (oldest first) to agent messages. An assistant message with tool calls
 * becomes the calls, their results, then its text. A failed reply, or the reply in progress of a
 * resumed turn, contributes only its completed tool calls (so a retry does not repeat them),
 * never its text: the user never saw it.
 */
export function toAgentMessages(rows: StoredMessage[], callsByMessage: Map<string, StoredCall[]> = new Map()): AgentMessage[] {
  const messages: AgentMessage[] = [];
  for (const row of rows) {
    if (row.role === MessageRole.USER) messages.push({ role: 'user', content: row.content });
    else if (row.role === MessageRole.SYSTEM) messages.push({ role: 'system', content: row.content });
    else if (row.role === MessageRole.ASSISTANT) {
      const calls = callsByMessage.get(row.id) ?? [];
      if (calls.length > 0) {
        messages.push({
          role: 'assistant',
          content: '',
          toolCalls: calls.map((call) => ({ id: call.callId, name: call.name, arguments: JSON.stringify(call.arguments ?? {}) })),
        });
        for (const call of calls) messages.push({ role: 'tool', callId: call.callId, content: JSON.stringify(call.result ?? null) });
      }
      if (row.status === MessageStatus.COMPLETE && row.content !== '') messages.push({ role: 'assistant', content: row.content });
    }
  }
  return messages;
}
