/**
 * The search store: full-text search over one user's messages and conversation titles, in
 * PostgreSQL (`websearch_to_tsquery`, `ts_rank`, `ts_headline`), each statement filtered by
 * `user_id`.
 *
 * A message's words are its stored `search` tsvector (the search migration), found through the GIN
 * index on `(user_id, search)`. Titles are few and short: their tsvector is made as the statement
 * reads the user's conversations. Every match is ranked (`ts_rank` reads the stored tsvector; on
 * 100,000 matches it costs about what finding them does), a page is the top `limit + 1` of them
 * after the cursor, and snippets are made for the rows of the page only.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ConversationStatus, MessageRole } from '../../entities/index.js';
import { MESSAGE_COLUMNS, type MessageView, messageView } from './messages.js';
import { dateOf, type Page } from './pages.js';

/** What the user typed, and the text search configuration (SEARCH_LANGUAGE) it is read with. */
export type SearchText = { query: string; language: string };

/** A hit's place in the ranking: its rank, then its key (the message's id, or the conversation's for a title hit). */
export type SearchKey = { rank: number; id: string };

export type SearchFilter = {
  conversationId?: string | null;
  /** Messages of this role only (title hits have none: they are left out). */
  role?: MessageRole | null;
  /** Hits in conversations of this status only. */
  status?: ConversationStatus | null;
  /** Messages (title hits: conversations) created at or after this instant. */
  createdAfter?: Date | null;
  /** Messages (title hits: conversations) created before this instant. */
  createdBefore?: Date | null;
};

/** The markers `ts_headline` puts around the words found. */
export type Highlight = { start: string; stop: string };

/** One hit: a message whose content matches, or (message null) a conversation whose title matches. */
export type SearchHitRow = SearchKey & { conversationId: string; message: MessageView | null; snippet: string };

/**
 * One page of the user's hits for `text`, best rank first (ties: key descending), up to
 * `page.limit + 1` rows after `page.cursor`. Forward only. A query without a word to look for (only
 * stop words or punctuation) finds nothing.
 */
export async function searchHits(
  em: EntityManager,
  userId: string,
  text: SearchText,
  page: Page<SearchKey>,
  filter: SearchFilter,
  highlight: Highlight,
): Promise<SearchHitRow[]> {
  const params: unknown[] = [];
  const tsquery = () => {
    params.push(text.language, text.query);
    return 'websearch_to_tsquery(?::regconfig, ?)';
  };
  const title = () => {
    params.push(text.language);
    return `setweight(to_tsvector(?::regconfig, c.title), 'A')`;
  };

  // The matching messages, through the GIN index on (user_id, search).
  const messageWhere = [`m.user_id = ${param(params, userId)}`, `m.search @@ ${tsquery()}`];
  if (filter.conversationId) messageWhere.push(`m.conversation_id = ${param(params, filter.conversationId)}::uuid`);
  if (filter.role) messageWhere.push(`m.role = ${param(params, filter.role)}::message_role`);
  if (filter.createdAfter) messageWhere.push(`m.created_at >= ${param(params, filter.createdAfter)}`);
  if (filter.createdBefore) messageWhere.push(`m.created_at < ${param(params, filter.createdBefore)}`);
  if (filter.status) {
    messageWhere.push(
      `m.conversation_id in (select s.id from conversation s where s.user_id = ${param(params, userId)} and s.status = ${param(params, filter.status)}::conversation_status)`,
    );
  }
  const found = `found as (select m.id, m.conversation_id, m.search from message m where ${messageWhere.join(' and ')})`;

  // Title hits, unless the filter asks for a role (a title has none). The rank is read before the
  // conditions, as the statement's text has them.
  const titleRank = `ts_rank(${title()}, ${tsquery()})::float8`;
  const titleWhere = [`c.user_id = ${param(params, userId)}`, 'c.title is not null'];
  if (filter.role) titleWhere.push('false');
  titleWhere.push(`${title()} @@ ${tsquery()}`);
  if (filter.conversationId) titleWhere.push(`c.id = ${param(params, filter.conversationId)}::uuid`);
  if (filter.createdAfter) titleWhere.push(`c.created_at >= ${param(params, filter.createdAfter)}`);
  if (filter.createdBefore) titleWhere.push(`c.created_at < ${param(params, filter.createdBefore)}`);
  if (filter.status) titleWhere.push(`c.status = ${param(params, filter.status)}::conversation_status`);
  const titled = `titled as (select c.id, ${titleRank} as rank from conversation c where ${titleWhere.join(' and ')})`;

  const hits =
    `hits as (select f.id as key, f.id as message_id, f.conversation_id, ts_rank(f.search, ${tsquery()})::float8 as rank from found f ` +
    `union all select t.id, null::uuid, t.id, t.rank from titled t)`;

  let after = '';
  if (page.cursor) {
    const { rank, id } = page.cursor;
    after = `where rank < ${param(params, rank)}::float8 or (rank = ${param(params, rank)}::float8 and key < ${param(params, id)}::uuid) `;
  }
  const ranked = `ranked as (select * from hits ${after}order by rank desc, key desc limit ${param(params, page.limit + 1)})`;

  // Snippets for the page's rows only: `ts_headline` reads the whole text again. It marks the words
  // found with two private-use characters, taken out of the text first, so that the text can be
  // escaped and the markers put in afterwards (`snippetOf`).
  const options = `StartSel="${MARK_START}", StopSel="${MARK_STOP}", MaxWords=30, MinWords=10, MaxFragments=2`;
  params.push(text.language);
  const snippet =
    `ts_headline(?::regconfig, translate(coalesce(m.content, c.title, ''), ${param(params, MARK_START + MARK_STOP)}, ''), ` +
    `${tsquery()}, ${param(params, options)}) as snippet`;
  const sql =
    `with ${found}, ${titled}, ${hits}, ${ranked} ` +
    `select r.key as hit_key, r.rank as hit_rank, r.conversation_id as hit_conversation_id, ` +
    `${MESSAGE_COLUMNS.map((column) => `m.${column}`).join(', ')}, ${snippet} from ranked r ` +
    `left join message m on m.id = r.message_id and m.user_id = ${param(params, userId)} ` +
    `left join conversation c on r.message_id is null and c.id = r.conversation_id and c.user_id = ${param(params, userId)} ` +
    'order by r.rank desc, r.key desc';
  const rows = await em.execute<Record<string, unknown>[]>(sql, params);
  const date = dateOf(em);
  return rows.map((row) => ({
    id: row.hit_key as string,
    rank: Number(row.hit_rank),
    conversationId: row.hit_conversation_id as string,
    message: row.id == null ? null : messageView(row, date),
    snippet: snippetOf(row.snippet as string, highlight),
  }));
}

// Private: the markers `ts_headline` is given (Unicode private use: no text means anything by them).
const MARK_START = '\ue000';
const MARK_STOP = '\ue001';
const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

// Private: a snippet as clients get it: the text HTML-escaped (a message may hold markup from
// anywhere: a tool's result, a web page), the words found between the configured markers.
function snippetOf(marked: string, highlight: Highlight): string {
  return marked
    .replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char)
    .replaceAll(MARK_START, highlight.start)
    .replaceAll(MARK_STOP, highlight.stop);
}

/**
 * The condition `conversations(filter: { search })` adds to its listing: the conversation's title
 * matches, or one of its messages does (their conversation ids are read once, as a hashed set).
 */
export function conversationMatches(userId: string, text: SearchText): [sql: string, params: unknown[]] {
  return [
    `(id in (select m.conversation_id from message m where m.user_id = ? and m.search @@ websearch_to_tsquery(?::regconfig, ?)) ` +
      `or to_tsvector(?::regconfig, coalesce(title, '')) @@ websearch_to_tsquery(?::regconfig, ?))`,
    [userId, text.language, text.query, text.language, text.language, text.query],
  ];
}

/** True when PostgreSQL has the text search configuration `name` (SEARCH_LANGUAGE is checked with it at start). */
export async function hasSearchConfig(em: EntityManager, name: string): Promise<boolean> {
  const rows = await em.execute<{ found: boolean }[]>('select exists (select 1 from pg_ts_config where cfgname = ?) as found', [name]);
  return rows[0]?.found === true;
}

// Private: adds `value` to `params` and returns its placeholder, so that a condition reads in the
// order of its parameters.
function param(params: unknown[], value: unknown): string {
  params.push(value);
  return '?';
}
