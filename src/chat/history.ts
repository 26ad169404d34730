/**
 * The context of a turn: the last `limit` messages before the new one, read by keyset on
 * `(conversation_id, seq)` (one indexed range scan, whatever the length of the history), turned
 * into the agent's neutral messages.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { AgentMessage } from '../agent/types.js';
import { Message, MessageRole, MessageStatus } from '../entities/index.js';

/**
 * Loads the messages of `conversationId` up to and including `uptoSeq` (the new user message),
 * at most `limit` of them, oldest first. Failed replies are left out: they never reached the user.
 */
export async function loadContext(em: EntityManager, conversationId: string, uptoSeq: number, limit: number): Promise<AgentMessage[]> {
  const rows = await em.find(
    Message,
    { conversation: conversationId, seq: { $lte: uptoSeq } },
    { orderBy: { seq: 'desc' }, limit, fields: ['role', 'content', 'status', 'seq'] },
  );
  return toAgentMessages(rows.reverse());
}

/** Maps stored messages (oldest first) to agent messages, dropping failed and empty ones. */
export function toAgentMessages(rows: Pick<Message, 'role' | 'content' | 'status'>[]): AgentMessage[] {
  const messages: AgentMessage[] = [];
  for (const row of rows) {
    if (row.status === MessageStatus.FAILED) continue;
    if (row.role === MessageRole.USER) messages.push({ role: 'user', content: row.content });
    else if (row.role === MessageRole.ASSISTANT) messages.push({ role: 'assistant', content: row.content });
    else if (row.role === MessageRole.SYSTEM) messages.push({ role: 'system', content: row.content });
  }
  return messages;
}
