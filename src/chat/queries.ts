/**
 * Reads for browsing: conversations, messages and tasks of one user, by keyset.
 * Every query filters by `user_id`; another user's row is simply not there.
 */
import type { EntityManager, FilterQuery } from '@mikro-orm/postgresql';
import { Conversation, type ConversationStatus, Message, Task } from '../entities/index.js';

/** A page request decoded: which way to read, how many rows, and from which key (exclusive). */
export type Page<K> = { direction: 'forward' | 'backward'; limit: number; cursor: K | null };

export type ConversationKey = { lastMessageAt: Date; id: string };

export type ConversationFilter = { status?: ConversationStatus | null; updatedAfter?: Date | null; updatedBefore?: Date | null };

/**
 * One page of the user's conversations, newest activity first, keyed on `(last_message_at, id)`.
 * Returns up to `page.limit + 1` rows in page direction.
 */
export async function listConversations(
  em: EntityManager,
  userId: string,
  page: Page<ConversationKey>,
  filter: ConversationFilter = {},
): Promise<Conversation[]> {
  // Forward reads towards older activity: descending order.
  const older = page.direction === 'forward';
  const where: FilterQuery<Conversation>[] = [{ userId }];
  if (filter.status) where.push({ status: filter.status });
  if (filter.updatedAfter) where.push({ updatedAt: { $gte: filter.updatedAfter } });
  if (filter.updatedBefore) where.push({ updatedAt: { $lt: filter.updatedBefore } });
  if (page.cursor) {
    const { lastMessageAt, id } = page.cursor;
    const cmp = older ? '$lt' : '$gt';
    where.push({ $or: [{ lastMessageAt: { [cmp]: lastMessageAt } }, { lastMessageAt, id: { [cmp]: id } }] });
  }
  const order = older ? 'desc' : 'asc';
  return em.find(Conversation, { $and: where }, { orderBy: [{ lastMessageAt: order }, { id: order }], limit: page.limit + 1 });
}

/** The user's conversation `id`, or null when it does not exist or belongs to someone else. */
export function findConversation(em: EntityManager, userId: string, id: string): Promise<Conversation | null> {
  return em.findOne(Conversation, { id, userId });
}

/** The user's message `id`, or null. */
export function findMessage(em: EntityManager, userId: string, id: string): Promise<Message | null> {
  return em.findOne(Message, { id, userId });
}

/** One page of the user's tasks, oldest first (ids are time-ordered UUIDv7). */
export async function listTasks(em: EntityManager, userId: string, page: Page<string>, completed?: boolean | null): Promise<Task[]> {
  const forward = page.direction === 'forward';
  const where: FilterQuery<Task> = { userId };
  if (completed != null) where.completed = completed;
  if (page.cursor) where.id = { [forward ? '$gt' : '$lt']: page.cursor };
  return em.find(Task, where, { orderBy: { id: forward ? 'asc' : 'desc' }, limit: page.limit + 1 });
}
