/**
 * The conversation store: the statements on `conversation` alone (the turn's, which also write
 * its messages, are in `turns.ts`). Each function acts for one user and filters by `user_id`;
 * another user's conversation is simply not there. Writes are explicit statements: nothing is
 * ever flushed behind the caller's back, and every write names the user.
 */
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Conversation, type ConversationStatus } from '../../entities/index.js';
import type { Page } from './pages.js';
import { conversationMatches, type SearchText } from './search.js';

export type ConversationKey = { lastMessageAt: Date; id: string };

export type ConversationFilter = {
  status?: ConversationStatus | null;
  updatedAfter?: Date | null;
  updatedBefore?: Date | null;
  /** Conversations whose metadata contains this object (JSON containment: `@>`). */
  metadata?: Record<string, unknown> | null;
  /** Conversations whose title or one of whose messages matches (`search.ts`). */
  search?: SearchText | null;
};

/** The columns a turn changes on its conversation. */
export type ConversationChanges = Partial<
  Pick<
    Conversation,
    | 'metadata'
    | 'updatedAt'
    | 'lastMessageAt'
    | 'messageCount'
    | 'nextSeq'
    | 'turnId'
    | 'leaseExpiresAt'
    | 'promptTokens'
    | 'completionTokens'
    | 'totalTokens'
  >
>;

/** The user's conversation `id`, or null when it does not exist or belongs to someone else. */
export function findConversation(em: EntityManager, userId: string, id: string): Promise<Conversation | null> {
  return em.findOne(Conversation, { id, userId });
}

/** The user's conversations among `ids` (any order; unknown ids and other users' are left out). */
export function findConversations(em: EntityManager, userId: string, ids: readonly string[]): Promise<Conversation[]> {
  return em.find(Conversation, { id: { $in: [...ids] }, userId });
}

/**
 * One page of the user's conversations, newest activity first, keyed on `(last_message_at, id)`.
 * Returns up to `page.limit + 1` rows in page direction.
 */
export function listConversations(
  em: EntityManager,
  userId: string,
  page: Page<ConversationKey>,
  filter: ConversationFilter = {},
): Promise<Conversation[]> {
  // Forward reads towards older activity: descending order.
  const older = page.direction === 'forward';
  const order = older ? 'desc' : 'asc';
  const query = em
    .createQueryBuilder(Conversation)
    .select('*')
    .where({ userId })
    .orderBy([{ lastMessageAt: order }, { id: order }])
    .limit(page.limit + 1);
  if (filter.status) query.andWhere({ status: filter.status });
  if (filter.updatedAfter) query.andWhere({ updatedAt: { $gte: filter.updatedAfter } });
  if (filter.updatedBefore) query.andWhere({ updatedAt: { $lt: filter.updatedBefore } });
  // JSON containment, backed by the GIN index on `metadata` (jsonb_path_ops).
  if (filter.metadata) query.andWhere('metadata @> ?::jsonb', [JSON.stringify(filter.metadata)]);
  if (filter.search) query.andWhere(...conversationMatches(userId, filter.search));
  if (page.cursor) {
    const { lastMessageAt, id } = page.cursor;
    const cmp = older ? '$lt' : '$gt';
    query.andWhere({ $or: [{ lastMessageAt: { [cmp]: lastMessageAt } }, { lastMessageAt, id: { [cmp]: id } }] });
  }
  return query.getResultList();
}

/** The user's conversation `id`, locked until the transaction ends and detached; null when there is none. */
export function readLocked(em: EntityManager, userId: string, id: string): Promise<Conversation | null> {
  return em.findOne(Conversation, { id, userId }, { lockMode: LockMode.PESSIMISTIC_WRITE, disableIdentityMap: true });
}

/** Stores a new conversation as it is (its `userId` included). */
export async function insertConversation(em: EntityManager, conversation: Conversation): Promise<void> {
  await em.insert(conversation);
}

/** The columns the lifecycle changes (`chat/lifecycle.ts`). */
export type LifecycleChanges = Partial<Pick<Conversation, 'title' | 'metadata' | 'status' | 'archivedAt' | 'expiresAt' | 'updatedAt'>>;

/** Writes `changes` to the user's conversation `id`. */
export async function writeConversation(em: EntityManager, userId: string, id: string, changes: LifecycleChanges): Promise<void> {
  await em.nativeUpdate(Conversation, { id, userId }, changes);
}

/** Deletes the user's conversation `id`, its messages, tool calls and waiters with it (foreign keys cascade); false when there was none. */
export async function deleteConversation(em: EntityManager, userId: string, id: string): Promise<boolean> {
  return (await em.nativeDelete(Conversation, { id, userId })) > 0;
}

/**
 * Frees the lease of turn `turnId` on the user's conversation `id`, only while that turn holds it
 * (a lease taken over stays with its new turn). Returns whether it did.
 */
export async function releaseLease(em: EntityManager, userId: string, id: string, turnId: string): Promise<boolean> {
  return (await em.nativeUpdate(Conversation, { id, userId, turnId }, { turnId: null, leaseExpiresAt: null })) > 0;
}

/** Moves the lease of turn `turnId` to `until`, only while that turn holds it. Returns whether it did. */
export async function extendLease(em: EntityManager, userId: string, id: string, turnId: string, until: Date): Promise<boolean> {
  return (await em.nativeUpdate(Conversation, { id, userId, turnId }, { leaseExpiresAt: until })) > 0;
}
