/**
 * The message store: every statement on `message`. Each function acts for one user and filters
 * by `user_id`. Rows the turn goes on to change are read detached from the unit of work and
 * written back by explicit statements (see `conversations.ts`).
 */
import type { EntityData, EntityManager } from '@mikro-orm/postgresql';
import { Message, type MessageStatus } from '../../entities/index.js';
import { dateOf, lateralPages, type Page } from './pages.js';
import type { ToolCallView } from './tool-calls.js';

/** The columns a turn changes on a message. */
export type MessageChanges = Partial<
  Pick<Message, 'status' | 'content' | 'model' | 'promptTokens' | 'completionTokens' | 'totalTokens' | 'createdAt'>
>;

/** A message as browsing reads it: its columns, its conversation by id; no entity, nothing tracked. */
export type MessageView = Pick<
  Message,
  | 'id'
  | 'userId'
  | 'seq'
  | 'role'
  | 'content'
  | 'status'
  | 'clientMessageId'
  | 'model'
  | 'promptTokens'
  | 'completionTokens'
  | 'totalTokens'
  | 'createdAt'
> & {
  conversation: { id: string };
  /** Its tool calls, when they were read with it. */
  toolCalls?: ToolCallView[];
};

/** The user's message `id`, or null. */
export function findMessage(em: EntityManager, userId: string, id: string): Promise<Message | null> {
  return em.findOne(Message, { id, userId });
}

/** The user's messages among `ids` (any order; unknown ids and other users' are left out). */
export function findMessages(em: EntityManager, userId: string, ids: readonly string[]): Promise<Message[]> {
  return em.find(Message, { id: { $in: [...ids] }, userId });
}

/** Detached: the user's message `id`, read fresh. */
export function readMessage(em: EntityManager, userId: string, id: string): Promise<Message | null> {
  return em.findOne(Message, { id, userId }, { disableIdentityMap: true });
}

/** Detached: the user message the user sent with idempotency key `clientMessageId`. */
export function readByClientMessageId(em: EntityManager, userId: string, clientMessageId: string): Promise<Message | null> {
  return em.findOne(Message, { userId, clientMessageId }, { disableIdentityMap: true });
}

/** Detached: the message at `seq` of the user's conversation `conversationId`. */
export function readAtSeq(em: EntityManager, userId: string, conversationId: string, seq: number): Promise<Message | null> {
  return em.findOne(Message, { conversation: [userId, conversationId], userId, seq }, { disableIdentityMap: true });
}

/** Writes `changes` to the user's message `id`; with `onlyIf`, only while it has that status. Returns whether it did. */
export async function updateMessage(
  em: EntityManager,
  userId: string,
  id: string,
  changes: MessageChanges,
  onlyIf?: MessageStatus,
): Promise<boolean> {
  const where = onlyIf ? { id, userId, status: onlyIf } : { id, userId };
  return (await em.nativeUpdate(Message, where, changes as EntityData<Message>)) > 0;
}

/**
 * One page of messages by `seq` of each of the user's conversations, in one statement (see
 * `lateralPages`), as views: a browse reads thousands, and an entity each (hydrated, tracked,
 * snapshotted) was most of its cost.
 */
export async function messagePages(
  em: EntityManager,
  userId: string,
  conversationIds: string[],
  page: Page<number>,
): Promise<MessageView[]> {
  const rows = await lateralPages(em, {
    table: 'message',
    columns: MESSAGE_COLUMNS,
    keyColumn: 'seq',
    keyType: 'int',
    conversationIds,
    userId,
    page,
  });
  const date = dateOf(em);
  return rows.map((row) => messageView(row, date));
}

/** The columns of `message` a view is made of (not the search columns: a tsvector is bulky, and no view shows it). */
export const MESSAGE_COLUMNS = [
  'id',
  'conversation_id',
  'user_id',
  'seq',
  'role',
  'content',
  'status',
  'client_message_id',
  'model',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'created_at',
] as const;

/** A row of `message` (as the driver returns it, `MESSAGE_COLUMNS`) as a view. */
export function messageView(row: Record<string, unknown>, date: (value: unknown) => Date): MessageView {
  return {
    id: row.id as string,
    conversation: { id: row.conversation_id as string },
    userId: row.user_id as string,
    seq: row.seq as number,
    role: row.role as MessageView['role'],
    content: row.content as string,
    status: row.status as MessageView['status'],
    clientMessageId: row.client_message_id as string | null,
    model: row.model as string | null,
    promptTokens: row.prompt_tokens as number | null,
    completionTokens: row.completion_tokens as number | null,
    totalTokens: row.total_tokens as number | null,
    createdAt: date(row.created_at),
  };
}
