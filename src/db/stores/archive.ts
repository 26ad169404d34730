/**
 * The archive store: the statements of export and import (`archive/`), which read and write whole
 * conversations column by column. Every statement on one conversation names its user; only the
 * choice of the conversations to export may span users (an operator's export of everything), and
 * it reads keys alone, in the order of the `(user_id, created_at, id)` index.
 *
 * The reads of one conversation take a `Reader` (`direct.ts`): a snapshot's own connection for
 * export (`readSnapshot`), or the ORM's transaction for import's comparison (`ormReader`).
 *
 * Timestamps are read as PostgreSQL's text in UTC with all six fractional digits
 * (`2026-12-05T18:30:00.123456Z`) and written back from that text: they never pass through a
 * JavaScript `Date`, which would drop the microseconds of `message.created_at`.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ConversationStatus } from '../../entities/index.js';
import type { Reader } from '../direct.js';
import { acrossUsersUnless } from './across-users.js';

/** The columns of a conversation that an archive keeps: all but the running turn's lease and the queue count (runtime state). */
export type ConversationColumns = {
  id: string;
  userId: string;
  title: string | null;
  status: `${ConversationStatus}`;
  metadata: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
  lastMessageAt: string;
  expiresAt: string | null;
  archivedAt: string | null;
  messageCount: number;
  nextSeq: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
};

/** The columns of a message an archive keeps: all but its conversation and user (its record's) and the generated tsvector. */
export type MessageColumns = {
  id: string;
  seq: number;
  role: 'user' | 'assistant' | 'system' | 'tool';
  content: string;
  status: 'complete' | 'in_progress' | 'failed';
  clientMessageId: string | null;
  model: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
  createdAt: string;
  /** The text search configuration it is indexed with (`simple`, `english`, ...). */
  searchConfig: string;
};

/** The columns of a tool call an archive keeps: all but its message, conversation and user (its record's). */
export type ToolCallColumns = {
  id: string;
  callId: string;
  server: string;
  name: string;
  arguments: unknown;
  result: unknown;
  isError: boolean;
  startedAt: string;
  durationMs: number;
};

/** Which conversations an export takes; every condition is optional (none: all of them). */
export type ArchiveFilter = {
  userId?: string | null;
  conversationIds?: readonly string[] | null;
  status?: `${ConversationStatus}` | null;
  /** ISO 8601 instants: `updated_at >= updatedAfter`, `updated_at < updatedBefore`. */
  updatedAfter?: string | null;
  updatedBefore?: string | null;
};

/** A conversation's place in the export order. */
export type ArchiveKey = { userId: string; createdAt: string; id: string };

/** A timestamptz column as ISO 8601 text in UTC, microseconds included: how the archive reads every timestamp. */
export const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** The conditions on `conversation` that choose by owner and ids, and their parameters (export's and restore's filters start so). */
export function ownerConditions(filter: { userId?: string | null; conversationIds?: readonly string[] | null }): {
  where: string[];
  params: unknown[];
} {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.userId != null) {
    where.push('user_id = ?');
    params.push(filter.userId);
  }
  if (filter.conversationIds != null) {
    // The ORM expands array parameters into lists; a PostgreSQL array literal keeps one parameter.
    where.push('id = any(?::uuid[])');
    params.push(`{${filter.conversationIds.join(',')}}`);
  }
  return { where, params };
}

const CONVERSATION_SELECT =
  'select id, user_id as "userId", title, status, metadata, ' +
  `${iso('created_at')} as "createdAt", ${iso('updated_at')} as "updatedAt", ${iso('last_message_at')} as "lastMessageAt", ` +
  `${iso('expires_at')} as "expiresAt", ${iso('archived_at')} as "archivedAt", ` +
  'message_count as "messageCount", next_seq as "nextSeq", prompt_tokens as "promptTokens", ' +
  'completion_tokens as "completionTokens", total_tokens as "totalTokens" from conversation';

const MESSAGE_SELECT =
  'select id, seq, role, content, status, client_message_id as "clientMessageId", model, prompt_tokens as "promptTokens", ' +
  `completion_tokens as "completionTokens", total_tokens as "totalTokens", ${iso('created_at')} as "createdAt", ` +
  'search_config::text as "searchConfig" from message';

const TOOL_CALL_SELECT =
  'select message_id as "messageId", id, call_id as "callId", server, name, arguments, result, is_error as "isError", ' +
  `${iso('started_at')} as "startedAt", duration_ms as "durationMs" from tool_call`;

/** Up to `limit` conversations passing `filter` after `after`, in `(user_id, created_at, id)` order: their keys. */
export async function archiveKeys(
  em: EntityManager,
  filter: ArchiveFilter,
  after: ArchiveKey | null,
  limit: number,
): Promise<ArchiveKey[]> {
  const { where, params } = conditions(filter);
  if (after) {
    where.push('(user_id, created_at, id) > (?, ?::timestamptz, ?::uuid)');
    params.push(after.userId, after.createdAt, after.id);
  }
  return em.execute<ArchiveKey[]>(
    `${acrossUsersUnless(filter.userId)}select user_id as "userId", ${iso('created_at')} as "createdAt", id from conversation ` +
      `${where.length ? `where ${where.join(' and ')} ` : ''}order by user_id, created_at, id limit ?`,
    [...params, limit],
  );
}

/**
 * How many conversations pass `filter`, how many messages they hold (for a progress bar), and how
 * many of them are purged (their messages are in an archive file, not here).
 */
export async function countArchive(
  em: EntityManager,
  filter: ArchiveFilter,
): Promise<{ conversations: number; messages: number; purged: number }> {
  const { where, params } = conditions(filter);
  const [row] = await em.execute<{ conversations: number; messages: string | number; purged: number }[]>(
    `${acrossUsersUnless(filter.userId)}select count(*)::int as conversations, coalesce(sum(message_count), 0)::bigint as messages, ` +
      `(count(*) filter (where purged_at is not null))::int as purged from conversation ` +
      `${where.length ? `where ${where.join(' and ')}` : ''}`,
    params,
  );
  return { conversations: row?.conversations ?? 0, messages: Number(row?.messages ?? 0), purged: row?.purged ?? 0 };
}

/** The user's conversation `id` as an archive keeps it, or null. */
export async function readConversationColumns(read: Reader, userId: string, id: string): Promise<ConversationColumns | null> {
  const [row] = await read<ConversationColumns>(`${CONVERSATION_SELECT} where user_id = ? and id = ?`, [userId, id]);
  return row ?? null;
}

/** Up to `limit` messages of the user's conversation after `afterSeq`, by `seq`. */
export function readMessageBatch(
  read: Reader,
  userId: string,
  conversationId: string,
  afterSeq: number,
  limit: number,
): Promise<MessageColumns[]> {
  return read<MessageColumns>(`${MESSAGE_SELECT} where user_id = ? and conversation_id = ? and seq > ? order by seq limit ?`, [
    userId,
    conversationId,
    afterSeq,
    limit,
  ]);
}

/** The tool calls of the messages `messageIds` of the user's conversation, by message, then oldest first (ids are time-ordered). */
export function readToolCallsOf(
  read: Reader,
  userId: string,
  conversationId: string,
  messageIds: readonly string[],
): Promise<(ToolCallColumns & { messageId: string })[]> {
  return read<ToolCallColumns & { messageId: string }>(
    `${TOOL_CALL_SELECT} where user_id = ? and conversation_id = ? and message_id = any(?::uuid[]) order by message_id, id`,
    // The ORM expands array parameters into lists; a PostgreSQL array literal keeps one parameter.
    [userId, conversationId, `{${messageIds.join(',')}}`],
  );
}

/**
 * Locks the user's conversation `id` for the transaction; false when the user has none with that
 * id (another user's conversation with that id is not seen: the insert after it fails).
 */
export async function lockConversation(em: EntityManager, userId: string, id: string): Promise<boolean> {
  const rows = await em.execute<{ id: string }[]>('select id from conversation where user_id = ? and id = ? for update', [userId, id]);
  return rows.length > 0;
}

/** Stores a conversation as the archive has it, free (no turn, nobody waiting). */
export async function insertConversationColumns(em: EntityManager, c: ConversationColumns): Promise<void> {
  await em.execute(
    'insert into conversation (id, user_id, title, status, metadata, created_at, updated_at, last_message_at, expires_at, archived_at, ' +
      'message_count, next_seq, prompt_tokens, completion_tokens, total_tokens, turn_id, lease_expires_at, waiting) values ' +
      '(?, ?, ?, ?::conversation_status, ?::jsonb, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?::timestamptz, ?::timestamptz, ' +
      '?, ?, ?, ?, ?, null, null, 0)',
    [
      c.id,
      c.userId,
      c.title,
      c.status,
      json(c.metadata),
      c.createdAt,
      c.updatedAt,
      c.lastMessageAt,
      c.expiresAt,
      c.archivedAt,
      c.messageCount,
      c.nextSeq,
      c.promptTokens,
      c.completionTokens,
      c.totalTokens,
    ],
    'run',
  );
}

/** Rows of one multi-row insert: 14 parameters each, well under PostgreSQL's 65,535. */
export const INSERT_CHUNK = 500;

/** Stores `messages` of the user's conversation, `INSERT_CHUNK` rows per statement. */
export async function insertMessageColumns(
  em: EntityManager,
  userId: string,
  conversationId: string,
  messages: readonly MessageColumns[],
): Promise<void> {
  for (let start = 0; start < messages.length; start += INSERT_CHUNK) {
    const chunk = messages.slice(start, start + INSERT_CHUNK);
    await em.execute(
      'insert into message (id, conversation_id, user_id, seq, role, content, status, client_message_id, model, ' +
        'prompt_tokens, completion_tokens, total_tokens, created_at, search_config) values ' +
        chunk.map(() => '(?, ?, ?, ?, ?::message_role, ?, ?::message_status, ?, ?, ?, ?, ?, ?::timestamptz, ?::regconfig)').join(', '),
      chunk.flatMap((m) => [
        m.id,
        conversationId,
        userId,
        m.seq,
        m.role,
        m.content,
        m.status,
        m.clientMessageId,
        m.model,
        m.promptTokens,
        m.completionTokens,
        m.totalTokens,
        m.createdAt,
        m.searchConfig,
      ]),
      'run',
    );
  }
}

/** Stores `calls` of the user's conversation (each with its message's id), `INSERT_CHUNK` rows per statement. */
export async function insertToolCallColumns(
  em: EntityManager,
  userId: string,
  conversationId: string,
  calls: readonly (ToolCallColumns & { messageId: string })[],
): Promise<void> {
  for (let start = 0; start < calls.length; start += INSERT_CHUNK) {
    const chunk = calls.slice(start, start + INSERT_CHUNK);
    await em.execute(
      'insert into tool_call (id, message_id, conversation_id, user_id, call_id, server, name, arguments, result, is_error, ' +
        'started_at, duration_ms) values ' +
        chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?, ?::timestamptz, ?)').join(', '),
      chunk.flatMap((t) => [
        t.id,
        t.messageId,
        conversationId,
        userId,
        t.callId,
        t.server,
        t.name,
        json(t.arguments),
        json(t.result),
        t.isError,
        t.startedAt,
        t.durationMs,
      ]),
      'run',
    );
  }
}

// Private: a JSON column's value as the text of a `?::jsonb` parameter; SQL null for null.
function json(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

// Private: `filter` as SQL conditions on `conversation` and their parameters.
function conditions(filter: ArchiveFilter): { where: string[]; params: unknown[] } {
  const { where, params } = ownerConditions(filter);
  if (filter.status != null) {
    where.push('status = ?::conversation_status');
    params.push(filter.status);
  }
  if (filter.updatedAfter != null) {
    where.push('updated_at >= ?::timestamptz');
    params.push(filter.updatedAfter);
  }
  if (filter.updatedBefore != null) {
    where.push('updated_at < ?::timestamptz');
    params.push(filter.updatedBefore);
  }
  return { where, params };
}
