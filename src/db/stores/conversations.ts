/**
 * The conversation store: the statements on `conversation` alone (the turn's, which also write
 * its messages, are in `turns.ts`). Each function acts for one user and filters by `user_id`;
 * another user's conversation is simply not there. Writes are explicit statements: nothing is
 * ever flushed behind the caller's back, and every write names the user.
 */
import { type FilterObject, LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Conversation, type ConversationStatus } from '../../entities/index.js';
import { DELETED_NOTICE, EVENTS_CHANNEL } from './events.js';
import type { Page } from './pages.js';
import { conversationMatches, type SearchText } from './search.js';

/** A listing's key: the conversation's instant in the order (its last activity or its creation) and its id. */
export type ConversationKey = { at: Date; id: string };

/**
 * The order of a listing: by last activity (`lastMessageAt`, changed by every turn) or by creation
 * (`createdAt`, which never changes: a tool paging by it sees every conversation once, however
 * many are written to meanwhile), newest first (`desc`) or oldest first.
 */
export type ConversationOrder = { by: 'lastMessageAt' | 'createdAt'; direction: 'asc' | 'desc' };

/** The default listing: newest activity first. */
export const BY_ACTIVITY: ConversationOrder = { by: 'lastMessageAt', direction: 'desc' };

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
    | 'title'
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
 * One page of the user's conversations in `order` (default: newest activity first), keyed on
 * `(last_message_at, id)` or `(created_at, id)`, each with its index. Returns up to
 * `page.limit + 1` rows in page direction.
 */
export function listConversations(
  em: EntityManager,
  userId: string,
  page: Page<ConversationKey>,
  filter: ConversationFilter = {},
  order: ConversationOrder = BY_ACTIVITY,
): Promise<Conversation[]> {
  // A forward page reads in the listing's order, a backward one against it.
  const ascending = (order.direction === 'asc') === (page.direction === 'forward');
  const sort = ascending ? 'asc' : 'desc';
  const { where, raw } = conditions(userId, filter);
  const query = em
    .createQueryBuilder(Conversation)
    .select('*')
    .where(where)
    .orderBy([{ [order.by]: sort }, { id: sort }])
    .limit(page.limit + 1);
  for (const condition of raw) query.andWhere(...condition);
  if (page.cursor) {
    const { at, id } = page.cursor;
    const cmp = ascending ? '$gt' : '$lt';
    query.andWhere({ $or: [{ [order.by]: { [cmp]: at } }, { [order.by]: at, id: { [cmp]: id } }] });
  }
  return query.getResultList();
}

/**
 * How many conversations of the user pass `filter`: one count over the user's rows of an index
 * (`(user_id, last_message_at, id)` read alone when there is no filter; the filter's own index
 * otherwise), never the rows of other users.
 */
export async function countConversations(em: EntityManager, userId: string, filter: ConversationFilter = {}): Promise<number> {
  const { where, raw } = conditions(userId, filter);
  const query = em.createQueryBuilder(Conversation).count().where(where);
  for (const condition of raw) query.andWhere(...condition);
  const [row] = await query.execute<{ count: string | number }[]>('all', false);
  return Number(row?.count ?? 0);
}

// Private: the user and `filter` as the query builder takes them; JSON containment (`@>`, backed
// by the GIN index on `metadata`, jsonb_path_ops) and text search (`search.ts`) are raw SQL.
function conditions(userId: string, filter: ConversationFilter): { where: FilterObject<Conversation>; raw: [string, unknown[]][] } {
  const updatedAt = {
    ...(filter.updatedAfter ? { $gte: filter.updatedAfter } : {}),
    ...(filter.updatedBefore ? { $lt: filter.updatedBefore } : {}),
  };
  const raw: [string, unknown[]][] = [];
  if (filter.metadata) raw.push(['metadata @> ?::jsonb', [JSON.stringify(filter.metadata)]]);
  if (filter.search) raw.push(conversationMatches(userId, filter.search));
  return {
    where: { userId, ...(filter.status ? { status: filter.status } : {}), ...(Object.keys(updatedAt).length ? { updatedAt } : {}) },
    raw,
  };
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

/**
 * Deletes the user's conversation `id`, its messages, tool calls, events and waiters with it
 * (foreign keys cascade), and tells its subscribers on every instance, on commit, so that their
 * streams end (`chat/event-hub.ts`); false when there was none.
 */
export async function deleteConversation(em: EntityManager, userId: string, id: string): Promise<boolean> {
  const rows = await em.execute<{ id: string }[]>(
    'with d as (delete from conversation where id = ? and user_id = ? returning id) ' +
      "select d.id, pg_notify(?, d.id::text || ':' || ?) from d",
    [id, userId, EVENTS_CHANNEL, DELETED_NOTICE],
  );
  return rows.length > 0;
}

/** Sets the title of the user's conversation `id` to `to`, only while it is still `from`. Returns whether it did. */
export async function retitle(em: EntityManager, userId: string, id: string, from: string, to: string): Promise<boolean> {
  return (await em.nativeUpdate(Conversation, { id, userId, title: from }, { title: to, updatedAt: new Date() })) > 0;
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
