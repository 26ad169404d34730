/**
 * The statements of a turn that touch several tables at once, each written as one statement so
 * that a turn costs few round trips (DESIGN.md's budget: see `npm run bench`). Like every store,
 * each names the user on every table it touches. The rules (who runs, replays, waits or is
 * refused) are the turn's, in `chat/turn-store.ts`; these only read and write.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { Conversation, Message, type MessageRole, type MessageStatus } from '../../entities/index.js';
import { directQuery } from '../direct.js';
import { searchLanguageOf } from '../settings.js';
import type { ConversationChanges } from './conversations.js';
import type { MessageChanges } from './messages.js';
import { COUNTED_COLUMNS, type Count, type Counted, type CountedRow, counted, upsertCounters } from './rate-counters.js';

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
  // Named, not left to the column's default: through a transaction pooler there is no session setting.
  const language = searchLanguageOf(em);
  for (const message of messages) message.searchConfig ??= language;
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
    // Their conversation as its key, `[userId, id]`: the builder maps a key to the columns it
    // shares with the message's own `user_id`, not a reference.
    ...(messages.length > 0
      ? [
          em
            .createQueryBuilder(Message)
            .insert(messages.map((message) => ({ ...message, conversation: [message.userId, message.conversation.id] })))
            .toQuery(),
        ]
      : []),
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
 * length of the history. The range is bounded on both sides (`seq` is gapless), so that even a
 * plan made for a conversation of any size (these statements stay prepared) reads `limit` rows,
 * not the history: with only the upper bound, a generic plan read all 10,000 messages of a long
 * conversation and sorted them (`npm run bench`, latency by history length).
 */
export async function contextRows(
  em: EntityManager,
  userId: string,
  conversationId: string,
  uptoSeq: number,
  limit: number,
): Promise<ContextRow[]> {
  const rows = await directQuery<ContextDbRow>(em, `${CONTEXT_SELECT} and m.seq <= ? and m.seq > ? order by m.seq desc limit ?`, [
    conversationId,
    userId,
    uptoSeq,
    uptoSeq - limit,
    limit,
  ]);
  return rows.map(contextRow);
}

// Private: the messages of a conversation (then `user_id`) for a context, each assistant message
// with its tool calls, oldest first; the caller adds the range, the order and the limit.
const CONTEXT_SELECT =
  `select m.id, m.role, m.content, m.status, m.seq, case when m.role = 'assistant' then (` +
  `select json_agg(json_build_object('callId', t.call_id, 'name', t.name, 'arguments', t.arguments, 'result', t.result) order by t.id) ` +
  `from tool_call t where t.message_id = m.id and t.user_id = m.user_id) end as calls ` +
  `from message m where m.conversation_id = ? and m.user_id = ?`;

type ContextDbRow = Omit<ContextRow, 'calls'> & { calls: ContextCall[] | null };

const contextRow = (row: ContextDbRow): ContextRow => ({ ...row, calls: row.calls ?? [] });

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
  /** The channel told (on commit) that the turn ended, when the lease was still the turn's and someone waits. */
  channel: string;
  /** The turn's last events (its last TEXT_DELTA, TURN_COMPLETED or TURN_FAILED), appended when the reply is written (`eventRows`). */
  events: { count: number; rows: string; prefix: string; suffix: string; channel: string } | null;
};

/**
 * Step 7, in one statement (its own transaction): locks the conversation and the reply (both read
 * as they are once locked, however long the lock took: a retry elsewhere may have completed the
 * reply meanwhile) and, unless the reply is
 * already complete and the lease no longer the turn's (an earlier try of this step committed, or a
 * retry elsewhere finished it), writes the reply, adds the usage to the conversation, frees the
 * lease when it was the turn's (and tells waiters, on commit, when the locked row counts any: a
 * request that joins later finds the conversation free), and counts the tokens. Returns
 * whether the lease was the turn's and whether it wrote; null when the conversation or the reply
 * is not the user's.
 */
export async function finishTurn(em: EntityManager, input: FinishTurn): Promise<{ ours: boolean; wrote: boolean } | null> {
  const { userId, conversationId, replyId, turnId, reply, usage, now, events } = input;
  const tokens = upsertCounters(userId, input.counts, '(select writes from decided)');
  const sql =
    `with locked as (select c.turn_id, c.waiting, m.status from conversation c join message m on m.id = ? and m.user_id = c.user_id ` +
    `where c.id = ? and c.user_id = ? for update of c, m), ` +
    `decided as (select turn_id is not distinct from ?::uuid as ours, waiting, (status <> 'complete' or turn_id is not distinct from ?::uuid) as writes from locked), ` +
    `reply as (update message set status = ?, content = ?, model = ?, prompt_tokens = ?, completion_tokens = ?, total_tokens = ?, created_at = ? ` +
    `where id = ? and user_id = ? and (select writes from decided) returning id), ` +
    `changed as (update conversation set prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ?, ` +
    `total_tokens = total_tokens + ?, last_message_at = ?, updated_at = ?, event_seq = event_seq + ?::int, ` +
    `turn_id = case when (select ours from decided) then null else turn_id end, ` +
    `lease_expires_at = case when (select ours from decided) then null else lease_expires_at end ` +
    `where id = ? and user_id = ? and (select writes from decided) returning id, user_id, event_seq)` +
    (input.counts.length > 0 ? `, tokens as (${tokens.sql}) ` : ' ') +
    (events
      ? `, events as (insert into conversation_event (id, conversation_id, user_id, position, kind, turn_id, message_id, text, data, tool_call_id, created_at) ` +
        `select e.id, c.id, c.user_id, c.event_seq - ?::int + e.i, e.kind, ?::uuid, ?::uuid, e.text, e.data, e.tool_call_id, e.created_at ` +
        `from changed c, jsonb_to_recordset(?::jsonb) as e(i int, id uuid, kind conversation_event_kind, text text, data jsonb, tool_call_id uuid, created_at timestamptz)) `
      : '') +
    `select ours, writes, (select count(*) from reply) as replies, (select count(*) from changed) as conversations, ` +
    `case when ours and waiting > 0 then pg_notify(?, ?) end as notified` +
    (events ? `, (select pg_notify(?, ? || event_seq::text || ?) from changed) as told` : '') +
    ` from decided`;
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
    events?.count ?? 0,
    conversationId,
    userId,
    ...(input.counts.length > 0 ? tokens.params : []),
    ...(events ? [events.count, turnId, replyId, events.rows] : []),
    input.channel,
    conversationId,
    ...(events ? [events.channel, events.prefix, events.suffix] : []),
  ];
  const [row] = await directQuery<{ ours: boolean; writes: boolean }>(em, sql, params);
  return row ? { ours: row.ours, wrote: row.writes } : null;
}

export type QuickStart = {
  userId: string;
  conversationId: string;
  turnId: string;
  userMessageId: string;
  replyId: string;
  content: string;
  clientMessageId: string | null;
  /** Merged into the conversation's metadata (shallow, the new keys win). */
  metadata: Record<string, unknown> | null;
  /** The title an untitled conversation takes (one made empty by `createConversation`). */
  title: string;
  now: Date;
  leaseExpiresAt: Date;
  /** Turns per minute (0 = off): the turn is counted only when it stays within. */
  turnsPerMinute: number;
  /** Model tokens per day (0 = off): the turn runs only while the day's count is under it. */
  tokensPerDay: number;
  turnsWindowMs: number;
  /** How many messages the turn's context holds, the two of this turn included. */
  contextLimit: number;
};

/** What `quickStart` found: the conversation as it was locked, and why the turn did not start. */
export type QuickStarted = {
  /** The conversation before the turn's changes; null when it is not the user's, or is locked right now. */
  conversation: Conversation | null;
  started: boolean;
  /** A message with this idempotency key exists: a retry, for the full path. */
  keyed: boolean;
  /** The day's tokens: absent or past its window (the full path starts a new day), or its count and end. */
  tokens: { count: number; resetsAt: Date } | null;
  /** Refused by turns per minute: when the window ends. */
  turnsResetAt: Date | null;
  /**
   * Started: the messages before this turn's two, newest first, as the context takes them; null
   * when the statement's snapshot may not hold them all (the conversation changed between the
   * snapshot and the lock), and the caller reads them afresh.
   */
  context: ContextRow[] | null;
};

/**
 * Step 4 for the common turn, in one statement (no transaction around it): an active conversation
 * with no turn, nobody in its queue, no earlier message with the same idempotency key, within the
 * user's limits. It locks the conversation only if it can at once (`skip locked`: a conversation
 * locked by another statement is left to the full path, which waits for it). Nobody waits when the
 * locked row's `waiting` is 0: a locked row is read as it is now, whatever the statement's
 * snapshot, and every change to the queue changes that count under the same lock (a waiter's row,
 * read here, could have been committed after the snapshot and be missed). It counts the turn
 * (only if it stays within the limit: the counter's `on conflict … where` is decided on the
 * latest row), takes the lease,
 * reserves the next two `seq`s and stores the user message and its reply in progress, or writes
 * nothing and says why (`turn-store.ts` then answers, or takes the full path).
 *
 * A turn it starts also gets the messages before its own (step 5), read with the statement's
 * snapshot. They are all in it when the row it locked is the row of its snapshot (the same
 * `xmin`): every change to a conversation's messages (a turn's start, its end, a failed turn's
 * closing) changes the conversation row too, and tool calls are stored before their turn ends.
 */
export async function quickStart(em: EntityManager, q: QuickStart): Promise<QuickStarted> {
  const counting = q.turnsPerMinute > 0;
  const checkingTokens = q.tokensPerDay > 0;
  const sql =
    `with c as (select c.xmin::text as locked_version, c.* from conversation c where c.id = ? and c.user_id = ? for update of c skip locked), ` +
    `keyed as (select 1 from message where user_id = ? and client_message_id = ?::text), ` +
    `tok as (select count, resets_at from rate_counter where user_id = ? and kind = 'tokens' and ?::boolean), ` +
    `free as (select c.id from c where c.status = 'active' and c.turn_id is null and c.waiting = 0 ` +
    `and not exists (select 1 from keyed) and (not ?::boolean or exists (select 1 from tok where resets_at > now() and count < ?::bigint))), ` +
    `counted as (insert into rate_counter as r (user_id, kind, count, resets_at) ` +
    `select ?, 'turns'::rate_kind, 1, now() + make_interval(secs => ?::float8) where ?::boolean and exists (select 1 from free) ` +
    `on conflict (user_id, kind) do update set ` +
    `count = case when r.resets_at > now() then r.count + 1 else 1 end, ` +
    `resets_at = case when r.resets_at > now() then r.resets_at else excluded.resets_at end ` +
    `where r.resets_at <= now() or r.count + 1 <= ?::bigint returning r.kind), ` +
    `allowed as (select id from free where not ?::boolean or exists (select 1 from counted)), ` +
    `upd as (update conversation v set turn_id = ?::uuid, lease_expires_at = ?::timestamptz, updated_at = ?::timestamptz, ` +
    `last_message_at = ?::timestamptz, next_seq = v.next_seq + 2, message_count = v.message_count + 2, ` +
    `metadata = case when ?::jsonb is null then v.metadata else coalesce(v.metadata, '{}'::jsonb) || ?::jsonb end, title = coalesce(v.title, ?::text) ` +
    `where v.id = (select id from allowed) and v.user_id = ? returning v.id, v.user_id, v.next_seq), ` +
    `ins as (insert into message (id, conversation_id, user_id, seq, role, content, status, client_message_id, created_at, search_config) ` +
    `select ?::uuid, upd.id, upd.user_id, upd.next_seq - 2, 'user'::message_role, ?::text, 'complete'::message_status, ?::text, ?::timestamptz, ?::regconfig from upd ` +
    `union all select ?::uuid, upd.id, upd.user_id, upd.next_seq - 1, 'assistant'::message_role, '', 'in_progress'::message_status, null, ?::timestamptz, ?::regconfig from upd), ` +
    `seen as (select (select xmin::text from conversation where id = ? and user_id = ?) = (select locked_version from c) as same), ` +
    `ctx as (${CONTEXT_SELECT} and m.seq < (select next_seq from c) and m.seq >= (select next_seq from c) - ? ` +
    `and exists (select 1 from upd) and (select same from seen) ` +
    `order by m.seq desc limit ?) ` +
    `select ${conversationColumns(em)}, exists (select 1 from upd) as started, exists (select 1 from keyed) as keyed, ` +
    `case when exists (select 1 from upd) and (select same from seen) then (select coalesce(json_agg(x order by x.seq desc), '[]'::json) from ctx x) end as context, ` +
    `(select count from tok where resets_at > now()) as tokens_count, (select resets_at from tok where resets_at > now()) as tokens_reset_at, ` +
    `(select resets_at from rate_counter where user_id = ? and kind = 'turns' and ?::boolean and not exists (select 1 from counted) ` +
    `and exists (select 1 from free)) as turns_reset_at from c`;
  const metadata = q.metadata ? JSON.stringify(q.metadata) : null;
  // Named, not left to the column's default: through a transaction pooler there is no session setting.
  const language = searchLanguageOf(em);
  const params = [
    q.conversationId,
    q.userId,
    q.userId,
    q.clientMessageId,
    q.userId,
    checkingTokens,
    checkingTokens,
    q.tokensPerDay,
    q.userId,
    q.turnsWindowMs / 1000,
    counting,
    q.turnsPerMinute,
    counting,
    q.turnId,
    q.leaseExpiresAt,
    q.now,
    q.now,
    metadata,
    metadata,
    q.title,
    q.userId,
    q.userMessageId,
    q.content,
    q.clientMessageId,
    q.now,
    language,
    q.replyId,
    q.now,
    language,
    q.conversationId,
    q.userId,
    q.conversationId,
    q.userId,
    Math.max(q.contextLimit - 2, 0),
    Math.max(q.contextLimit - 2, 0),
    q.userId,
    counting,
  ];
  const [row] = await directQuery<Record<string, unknown>>(em, sql, params);
  if (!row) return { conversation: null, started: false, keyed: false, tokens: null, turnsResetAt: null, context: null };
  const { started, keyed, context, tokens_count, tokens_reset_at, turns_reset_at, ...columns } = row;
  return {
    conversation: em.map(Conversation, columns, { disableIdentityMap: true }),
    started: started === true,
    keyed: keyed === true,
    tokens: tokens_count == null ? null : { count: Number(tokens_count), resetsAt: new Date(tokens_reset_at as string | Date) },
    turnsResetAt: turns_reset_at == null ? null : new Date(turns_reset_at as string | Date),
    context: Array.isArray(context) ? (context as ContextDbRow[]).map(contextRow) : null,
  };
}

// Private: the conversation's columns by name, from the entity's metadata: a statement kept
// prepared on a connection may not change the type of its result, and `c.*` would when a migration
// adds a column while this process runs.
let columnList: string | undefined;
function conversationColumns(em: EntityManager): string {
  columnList ??= em
    .getMetadata(Conversation)
    .props.filter((prop) => prop.kind === 'scalar' && prop.persist !== false)
    .flatMap((prop) => prop.fieldNames ?? [])
    .map((column) => `c."${column}"`)
    .join(', ');
  return columnList;
}
