/**
 * The event store: every statement on `conversation_event`. A turn appends its events in order,
 * each append one statement that takes the next positions from `conversation.event_seq` (the row
 * lock orders appends, so positions are gapless and commit in order), stores what goes with them
 * (the text appended to the reply in progress, a finished tool call) and tells every instance on
 * commit (`pg_notify`): the conversation and its last position, and the events themselves when
 * they fit in a notification. Subscribers read back what they missed (`readEvents`).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { type ConversationEvent, ConversationEventKind, type StartedCall } from '../../chat/events.js';
import type { Message, ToolCall } from '../../entities/index.js';
import { directQuery } from '../direct.js';
import { messageView } from './messages.js';
import { dateOf } from './pages.js';
import { toolCallView } from './tool-calls.js';

export const EVENTS_CHANNEL = 'conversation_events';

/** PostgreSQL refuses a notification payload of 8,000 bytes or more; events larger go by reference. */
const NOTIFY_PAYLOAD_MAX = 7_900;

/** An event to store: its id (made before the first try) and what it carries, in `conversation_event`'s columns. */
export type NewEvent = {
  id: string;
  kind: ConversationEventKind;
  createdAt: Date;
  text?: string | null;
  userMessageId?: string | null;
  call?: StartedCall | null;
  error?: { code: string; message: string } | null;
  /** TOOL_CALL_FINISHED: the call, stored by the same statement. */
  toolCall?: ToolCall | null;
  /** TURN_COMPLETED, TURN_FAILED: the reply as stored (for the notification; the row references it). */
  message?: Message | null;
};

export type Append = {
  userId: string;
  conversationId: string;
  turnId: string;
  /** The turn's reply. */
  replyId: string;
  events: NewEvent[];
  /** Appended to the reply in progress: the text of this append's TEXT_DELTAs. */
  text: string;
};

/**
 * Appends `events` (and `text` to the reply in progress, and the finished tool call one of them
 * carries) in one statement, only while the turn holds the conversation's lease; a try whose
 * first event is already stored (an earlier try committed) appends nothing again. The tool call is
 * stored whatever the lease (as `storeToolCall` always has). Returns the last position, or null when
 * nothing was appended.
 */
export async function appendEvents(em: EntityManager, append: Append): Promise<number | null> {
  const { userId, conversationId, turnId, replyId, events, text } = append;
  const first = events[0];
  if (!first) return null;
  const call = events.find((event) => event.toolCall)?.toolCall ?? null;
  const stored = eventRows(append);
  const sql =
    `with c as (update conversation set event_seq = event_seq + ?::int where id = ? and user_id = ? and turn_id = ?::uuid ` +
    `and not exists (select 1 from conversation_event where id = ?::uuid and user_id = ?) returning id, user_id, event_seq), ` +
    (call
      ? `tc as (insert into tool_call (id, message_id, conversation_id, user_id, call_id, server, name, arguments, result, is_error, started_at, duration_ms) ` +
        `values (?::uuid, ?::uuid, ?::uuid, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?, ?::timestamptz, ?) on conflict (user_id, id) do nothing), `
      : '') +
    `ins as (insert into conversation_event (id, conversation_id, user_id, position, kind, turn_id, message_id, text, data, tool_call_id, created_at) ` +
    `select e.id, c.id, c.user_id, c.event_seq - ?::int + e.i, e.kind, ?::uuid, ?::uuid, e.text, e.data, e.tool_call_id, e.created_at ` +
    `from c, jsonb_to_recordset(?::jsonb) as e(i int, id uuid, kind conversation_event_kind, text text, data jsonb, tool_call_id uuid, created_at timestamptz)), ` +
    `reply as (update message set content = content || ?::text where id = ?::uuid and user_id = ? and status = 'in_progress' ` +
    `and ?::text <> '' and exists (select 1 from c)) ` +
    `select c.event_seq, pg_notify(?, ? || c.event_seq::text || ?) from c`;
  const params = [
    events.length,
    conversationId,
    userId,
    turnId,
    first.id,
    userId,
    ...(call
      ? [
          call.id,
          replyId,
          conversationId,
          userId,
          call.callId,
          call.server,
          call.name,
          JSON.stringify(call.arguments ?? null),
          JSON.stringify(call.result ?? null),
          call.isError,
          call.startedAt,
          call.durationMs,
        ]
      : []),
    events.length,
    turnId,
    replyId,
    stored.rows,
    text,
    replyId,
    userId,
    text,
    EVENTS_CHANNEL,
    stored.prefix,
    stored.suffix,
  ];
  const [row] = await directQuery<{ event_seq: number }>(em, sql, params);
  return row ? row.event_seq : null;
}

/**
 * The parts of an append that go into `finishTurn`'s statement (step 7 stores the reply, its last
 * TEXT_DELTA and TURN_COMPLETED together): the events as `jsonb_to_recordset` rows and the
 * notification's text around the last position.
 */
export function eventRows(append: Omit<Append, 'userId' | 'text'>): { rows: string; prefix: string; suffix: string } {
  const rows = append.events.map((event, index) => ({
    i: index + 1,
    id: event.id,
    kind: event.kind,
    text: event.text ?? null,
    data: dataOf(event),
    tool_call_id: event.toolCall?.id ?? null,
    created_at: event.createdAt.toISOString(),
  }));
  return { rows: JSON.stringify(rows), ...notification(append) };
}

/**
 * What a notification on `EVENTS_CHANNEL` says: the conversation, its last position, and its events
 * when they fit; or that the conversation was deleted (`deleted`, its events gone with it).
 */
export type EventNotice = { conversationId: string; last: number; events: Record<string, unknown>[] | null; deleted?: true };

/** The payload that tells subscribers their conversation was deleted (`stores/conversations.ts`), after the conversation id and a colon. */
export const DELETED_NOTICE = 'deleted';

/**
 * Reads a notification's payload (`<conversation id>:<last position>[:<events as JSON>]`, or
 * `<conversation id>:deleted`); null when it is not one.
 */
export function parseNotice(payload: string): EventNotice | null {
  const deleted = /^([0-9a-f-]{36}):deleted$/.exec(payload);
  if (deleted?.[1]) return { conversationId: deleted[1], last: 0, events: null, deleted: true };
  const match = /^([0-9a-f-]{36}):(\d+)(?::(.*))?$/s.exec(payload);
  if (!match?.[1] || !match[2]) return null;
  let events: Record<string, unknown>[] | null = null;
  if (match[3] !== undefined) {
    try {
      events = JSON.parse(match[3]) as Record<string, unknown>[];
    } catch {
      events = null;
    }
  }
  return { conversationId: match[1], last: Number(match[2]), events };
}

const EVENT_SELECT =
  `select e.position, e.kind, e.turn_id, e.message_id, e.text, e.data, e.created_at, ` +
  `case when e.kind = 'tool_call_finished' then (select to_jsonb(t) from tool_call t where t.id = e.tool_call_id and t.user_id = e.user_id) end as tool_call, ` +
  `case when e.kind in ('turn_completed', 'turn_failed') then (select to_jsonb(m) - 'search' - 'search_config' from message m ` +
  `where m.id = e.message_id and m.user_id = e.user_id) end as message ` +
  `from conversation_event e where e.conversation_id = ? and e.user_id = ? and e.position > ? order by e.position limit ?`;

/** The user's events of `conversationId` after position `after`, oldest first, at most `limit`. */
export async function readEvents(
  em: EntityManager,
  userId: string,
  conversationId: string,
  after: number,
  limit: number,
): Promise<ConversationEvent[]> {
  const rows = await directQuery<Record<string, unknown>>(em, EVENT_SELECT, [conversationId, userId, after, limit]);
  const date = dateOf(em);
  return rows.map((row) => eventOf(conversationId, row.position as number, row, date));
}

/** The position of the conversation's last event (0 before its first); null when it is not the user's. */
export async function lastPosition(em: EntityManager, userId: string, conversationId: string): Promise<number | null> {
  const rows = await em.execute<{ event_seq: number }[]>('select event_seq from conversation where id = ? and user_id = ?', [
    conversationId,
    userId,
  ]);
  return rows[0]?.event_seq ?? null;
}

/** A notification's events (positions `last - n + 1` to `last`) as events. */
export function noticeEvents(em: EntityManager, notice: EventNotice): ConversationEvent[] | null {
  if (!notice.events) return null;
  const date = dateOf(em);
  const first = notice.last - notice.events.length + 1;
  return notice.events.map((row, index) => eventOf(notice.conversationId, first + index, row, date));
}

// Private: what an event keeps in its `data` column.
function dataOf(event: NewEvent): unknown {
  if (event.userMessageId) return { userMessageId: event.userMessageId };
  if (event.call) return { call: event.call };
  if (event.error) return { error: event.error };
  return null;
}

// Private: the notification of an append: the conversation, then (added by the statement) the last
// position, then the events in their stored shape when the whole fits in a payload.
function notification({ conversationId, turnId, replyId, events }: Omit<Append, 'userId' | 'text'>): { prefix: string; suffix: string } {
  const prefix = `${conversationId}:`;
  const wire = events.map((event) => ({
    kind: event.kind,
    turn_id: turnId,
    message_id: replyId,
    text: event.text ?? null,
    data: dataOf(event),
    created_at: event.createdAt.toISOString(),
    message: event.message ? messageRow(event.message) : null,
  }));
  // A turn's last event without its reply at hand (a turn ended by a failure path) goes by
  // reference: subscribers read it with the reply as stored.
  const ending = (kind: ConversationEventKind) =>
    kind === ConversationEventKind.TURN_COMPLETED || kind === ConversationEventKind.TURN_FAILED;
  if (events.some((event) => ending(event.kind) && !event.message)) return { prefix, suffix: '' };
  // A tool call's arguments and result are JSON the database stores as `jsonb`, which orders keys
  // its own way: read back, they would differ from the notification's (a client comparing what it
  // saw live with what it reads later would see a change). They go by reference.
  if (events.some((event) => event.call || event.toolCall)) return { prefix, suffix: '' };
  const suffix = `:${JSON.stringify(wire)}`;
  return Buffer.byteLength(prefix) + 12 + Buffer.byteLength(suffix) <= NOTIFY_PAYLOAD_MAX ? { prefix, suffix } : { prefix, suffix: '' };
}

// Private: a message in `message`'s column names, as `to_jsonb` gives it.
function messageRow(message: Message): Record<string, unknown> {
  return {
    id: message.id,
    conversation_id: message.conversation.id,
    user_id: message.userId,
    seq: message.seq,
    role: message.role,
    content: message.content,
    status: message.status,
    client_message_id: message.clientMessageId,
    model: message.model,
    prompt_tokens: message.promptTokens,
    completion_tokens: message.completionTokens,
    total_tokens: message.totalTokens,
    created_at: message.createdAt.toISOString(),
  };
}

// Private: a stored row (or a notification's) as an event.
function eventOf(
  conversationId: string,
  position: number,
  row: Record<string, unknown>,
  date: (value: unknown) => Date,
): ConversationEvent {
  const data = (row.data ?? {}) as { userMessageId?: string; call?: StartedCall; error?: { code: string; message: string } };
  return {
    conversationId,
    position,
    kind: row.kind as ConversationEventKind,
    turnId: row.turn_id as string,
    messageId: row.message_id as string,
    createdAt: date(row.created_at),
    text: (row.text as string | null) ?? null,
    userMessageId: data.userMessageId ?? null,
    call: data.call ?? null,
    toolCall: row.tool_call ? toolCallView(row.tool_call as Record<string, unknown>, date) : null,
    message: row.message ? messageView(row.message as Record<string, unknown>, date) : null,
    error: data.error ?? null,
  };
}
