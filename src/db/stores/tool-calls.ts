/**
 * The tool-call store: every statement on `tool_call`. Each function acts for one user and
 * filters by `user_id`. A call is inserted once, the moment it completes, and never changed.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { ToolCall } from '../../entities/index.js';
import { lateralPages, type Page } from './pages.js';

export type ToolCallFilter = { name?: string | null; isError?: boolean | null };

/** The user's tool calls of the messages `messageIds`, oldest first (ids are time-ordered). */
export function toolCallsOfMessages(em: EntityManager, userId: string, messageIds: readonly string[]): Promise<ToolCall[]> {
  return em.find(ToolCall, { message: { $in: [...messageIds] }, userId }, { orderBy: { id: 'asc' } });
}

/** Whether the user's tool call `id` is stored (an earlier try of an insert may have committed). */
export async function toolCallExists(em: EntityManager, userId: string, id: string): Promise<boolean> {
  return (await em.count(ToolCall, { id, userId })) > 0;
}

/** Stores one tool call as it is (its `userId` included): one INSERT, on its own. */
export async function insertToolCall(em: EntityManager, call: ToolCall): Promise<void> {
  await em.insert(call);
}

/** One page of tool calls by id of each of the user's conversations, in one statement (see `lateralPages`). */
export async function toolCallPages(
  em: EntityManager,
  userId: string,
  conversationIds: string[],
  page: Page<string>,
  filter: ToolCallFilter,
): Promise<ToolCall[]> {
  const equal = [
    ...(filter.name != null ? [{ column: 'name', value: filter.name }] : []),
    ...(filter.isError != null ? [{ column: 'is_error', value: filter.isError }] : []),
  ];
  const rows = await lateralPages(em, { table: 'tool_call', keyColumn: 'id', keyType: 'uuid', conversationIds, userId, page, equal });
  return rows.map((row) => em.map(ToolCall, row));
}
