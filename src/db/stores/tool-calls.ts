/**
 * The tool-call store: every statement on `tool_call`. Each function acts for one user and
 * filters by `user_id`. A call is inserted once, the moment it completes, and never changed.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { ToolCall } from '../../entities/index.js';
import { dateOf, lateralPages, type Page } from './pages.js';

export type ToolCallFilter = { name?: string | null; isError?: boolean | null };

/** A tool call as browsing reads it: its columns, its message and conversation by id; no entity, nothing tracked. */
export type ToolCallView = Pick<
  ToolCall,
  'id' | 'userId' | 'callId' | 'server' | 'name' | 'arguments' | 'result' | 'isError' | 'startedAt' | 'durationMs'
> & { message: { id: string }; conversation: { id: string } };

/** The user's tool calls of the messages `messageIds` as views, oldest first, in one statement. */
export async function toolCallViewsOfMessages(em: EntityManager, userId: string, messageIds: readonly string[]): Promise<ToolCallView[]> {
  const rows = await em.execute<Record<string, unknown>[]>(
    'select * from tool_call where message_id = any(?::uuid[]) and user_id = ? order by id',
    // The ORM expands array parameters into lists; a PostgreSQL array literal keeps one parameter.
    [`{${messageIds.join(',')}}`, userId],
  );
  const date = dateOf(em);
  return rows.map((row) => toolCallView(row, date));
}

/** The user's tool calls among `ids` (any order; unknown ids and other users' are left out). */
export function findToolCalls(em: EntityManager, userId: string, ids: readonly string[]): Promise<ToolCall[]> {
  return em.find(ToolCall, { id: { $in: [...ids] }, userId });
}

/** The user's tool calls of the messages `messageIds`, oldest first (ids are time-ordered). */
export function toolCallsOfMessages(em: EntityManager, userId: string, messageIds: readonly string[]): Promise<ToolCall[]> {
  return em.find(ToolCall, { message: { $in: messageIds.map((id) => [userId, id] as const) }, userId }, { orderBy: { id: 'asc' } });
}

/** One page of tool calls by id of each of the user's conversations, in one statement (see `lateralPages`), as views. */
export async function toolCallPages(
  em: EntityManager,
  userId: string,
  conversationIds: string[],
  page: Page<string>,
  filter: ToolCallFilter,
): Promise<ToolCallView[]> {
  const equal = [
    ...(filter.name != null ? [{ column: 'name', value: filter.name }] : []),
    ...(filter.isError != null ? [{ column: 'is_error', value: filter.isError }] : []),
  ];
  const rows = await lateralPages(em, { table: 'tool_call', keyColumn: 'id', keyType: 'uuid', conversationIds, userId, page, equal });
  const date = dateOf(em);
  return rows.map((row) => toolCallView(row, date));
}

/** A row of `tool_call` (as the driver or `to_jsonb` returns it) as a view. */
export function toolCallView(row: Record<string, unknown>, date: (value: unknown) => Date): ToolCallView {
  return {
    id: row.id as string,
    message: { id: row.message_id as string },
    conversation: { id: row.conversation_id as string },
    userId: row.user_id as string,
    callId: row.call_id as string,
    server: row.server as string,
    name: row.name as string,
    arguments: row.arguments,
    result: row.result,
    isError: row.is_error as boolean,
    startedAt: date(row.started_at),
    durationMs: row.duration_ms as number,
  };
}
