/**
 * The statements of a turn that touch several tables at once, each written as one statement so
 * that a turn costs few round trips (DESIGN.md's budget: see `npm run bench`). Like every store,
 * each names the user on every table it touches. The rules (who runs, replays, waits or is
 * refused) are the turn's, in `chat/turn-store.ts`; these only read and write.
 */
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Conversation, Message, type MessageRole, type MessageStatus } from '../../entities/index.js';
import type { ConversationChanges } from './conversations.js';
import type { MessageChanges } from './messages.js';
import { COUNTED_COLUMNS, type Count, type Counted, type CountedRow, counted, upsertCounters } from './rate-counters.js';

/**
 * Inside step 4's transaction: the user's conversation, locked to the commit and detached, and the
 * head of its queue. Two statements, on purpose: a statement reads with the snapshot it began
 * with, and this lock may wait; the queue is read after it, so that a request that joined the
 * queue while this one waited is seen and keeps its place.
 */
export async function lockForTurn(
  em: EntityManager,
  userId: string,
  id: string,
  now: Date,
): Promise<{ conversation: Conversation; queueHead: string | null } | null> {
  const conversation = await em.findOne(Conversation, { id, userId }, { lockMode: LockMode.PESSIMISTIC_WRITE, disableIdentityMap: true });
  if (!conversation) return null;
  const [head] = await em.execute<{ id: string | number }[]>(
    'select id from turn_waiter where conversation_id = ? and user_id = ? and expires_at > ? order by id limit 1',
    [id, userId, now],
  );
  return { conversation, queueHead: head ? String(head.id) : null };
}

/**
 * Step 4's writes, in one statement: the conversation stored (`insert`) or changed (`changes`),
 * the new messages stored, and `counts` added to the user's counters, which come back as they now
 * are (the caller refuses the turn, rolling all of it back, when one is over its limit).
 */
export async function startTurn(
  em: EntityManager,
  conversation: { insert: Conversation } | { userId: string; id: string; changes: ConversationChanges },
  messages: Message[],
  counts: Count[],
): Promise<Counted[]> {
  const parts = [
    'insert' in conversation
      ? // Its data, not the entity: the builder would encode the entity's JSON metadata twice.
        em
          .createQueryBuilder(Conversation)
          .insert({ ...conversation.insert })
          .toQuery()
      : em
          .createQueryBuilder(Conversation)
          .update(conversation.changes)
          .where({ id: conversation.id, userId: conversation.userId })
          .toQuery(),
    ...(messages.length > 0 ? [em.createQueryBuilder(Message).insert(messages).toQuery()] : []),
  ].map(({ sql, params }) => ({ sql, params: [...params] }));
  const userId = 'insert' in conversation ? conversation.insert.userId : conversation.userId;
  if (counts.length > 0) {
    const upsert = upsertCounters(userId, counts);
    parts.push({ sql: `${upsert.sql} returning ${COUNTED_COLUMNS}`, params: upsert.params });
  }
  const ctes = parts.map((part, i) => `w${i} as (${part.sql})`).join(', ');
  const last = counts.length > 0 ? `select * from w${parts.length - 1}` : 'select 1';
  const rows = await em.execute<CountedRow[]>(
    `with ${ctes} ${last}`,
    parts.flatMap((part) => part.params),
  );
  return counts.length > 0 ? rows.map(counted) : [];
}

/** A tool call as a turn's context replays it. */
export type ContextCall = { callId: string; name: string; arguments: unknown; result: unknown };

/** A message of a turn's context, with the tool calls of an assistant message. */
export type ContextRow = { id: string; role: MessageRole; content: string; status: MessageStatus; seq: number; calls: ContextCall[] };

/**
 * The last `limit` messages of the user's conversation up to and including `uptoSeq`, newest
 * first, each assistant message with its tool calls (oldest first), in one statement: one indexed
 * range scan on `(conversation_id, seq)` and one on `(message_id, id)` per reply, whatever the
 * length of the history.
 */
export async function contextRows(
  em: EntityManager,
  userId: string,
  conversationId: string,
  uptoSeq: number,
  limit: number,
): Promise<ContextRow[]> {
  const rows = await em.execute<(Omit<ContextRow, 'calls'> & { calls: ContextCall[] | null })[]>(
    `select m.id, m.role, m.content, m.status, m.seq, case when m.role = 'assistant' then (` +
      `select json_agg(json_build_object('callId', t.call_id, 'name', t.name, 'arguments', t.arguments, 'result', t.result) order by t.id) ` +
      `from tool_call t where t.message_id = m.id and t.user_id = m.user_id) end as calls ` +
      `from message m where m.conversation_id = ? and m.user_id = ? and m.seq <= ? order by m.seq desc limit ?`,
    [conversationId, userId, uptoSeq, limit],
  );
  return rows.map((row) => ({ ...row, calls: row.calls ?? [] }));
}

export type FinishTurn = {
  userId: string;
  conversationId: string;
  replyId: string;
  turnId: string;
  reply: MessageChanges;
  /** Added to the conversation's token totals. */
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
  now: Date;
  /** Added to the user's counters (the day's tokens) when the reply is written. */
  counts: Count[];
  /** The channel told (on commit) that the turn ended, when the lease was still the turn's. */
  channel: string;
};

/**
 * Step 7, in one statement (its own transaction): locks the conversation and the reply (both read
 * as they are once locked, however long the lock took: a retry elsewhere may have completed the
 * reply meanwhile) and, unless the reply is
 * already complete and the lease no longer the turn's (an earlier try of this step committed, or a
 * retry elsewhere finished it), writes the reply, adds the usage to the conversation, frees the
 * lease when it was the turn's (and tells waiters, on commit), and counts the tokens. Returns
 * whether the lease was the turn's and whether it wrote; null when the conversation or the reply
 * is not the user's.
 */
export async function finishTurn(em: EntityManager, input: FinishTurn): Promise<{ ours: boolean; wrote: boolean } | null> {
  const { userId, conversationId, replyId, turnId, reply, usage, now } = input;
  const tokens = upsertCounters(userId, input.counts, '(select writes from decided)');
  const sql =
    `with locked as (select c.turn_id, m.status from conversation c join message m on m.id = ? and m.user_id = c.user_id ` +
    `where c.id = ? and c.user_id = ? for update of c, m), ` +
    `decided as (select turn_id is not distinct from ?::uuid as ours, (status <> 'complete' or turn_id is not distinct from ?::uuid) as writes from locked), ` +
    `reply as (update message set status = ?, content = ?, model = ?, prompt_tokens = ?, completion_tokens = ?, total_tokens = ?, created_at = ? ` +
    `where id = ? and user_id = ? and (select writes from decided) returning id), ` +
    `conversation as (update conversation set prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ?, ` +
    `total_tokens = total_tokens + ?, last_message_at = ?, updated_at = ?, ` +
    `turn_id = case when (select ours from decided) then null else turn_id end, ` +
    `lease_expires_at = case when (select ours from decided) then null else lease_expires_at end ` +
    `where id = ? and user_id = ? and (select writes from decided) returning id)` +
    (input.counts.length > 0 ? `, tokens as (${tokens.sql}) ` : ' ') +
    `select ours, writes, (select count(*) from reply) as replies, (select count(*) from conversation) as conversations, ` +
    `case when ours then pg_notify(?, ?) end as notified from decided`;
  const params = [
    replyId,
    conversationId,
    userId,
    turnId,
    turnId,
    reply.status,
    reply.content,
    reply.model,
    reply.promptTokens,
    reply.completionTokens,
    reply.totalTokens,
    reply.createdAt,
    replyId,
    userId,
    usage.promptTokens,
    usage.completionTokens,
    usage.totalTokens,
    now,
    now,
    conversationId,
    userId,
    ...(input.counts.length > 0 ? tokens.params : []),
    input.channel,
    conversationId,
  ];
  const [row] = await em.execute<{ ours: boolean; writes: boolean }[]>(sql, params);
  return row ? { ours: row.ours, wrote: row.writes } : null;
}
