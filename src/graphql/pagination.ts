/**
 * Relay cursor connections over keyset pagination (never OFFSET), and the cursors of every
 * connection of the schema (`cursors`), in one place.
 *
 * A cursor is opaque to clients: base64url of `[kind, ...key]`, where the key is the row's
 * unique sort key (`seq`, `(last_message_at, id)`, `(created_at, id)`, `id`, a search hit's `(rank, id)`). The kind keeps a cursor of one
 * connection from being used in another, and a key no stored row could have (a non-UUID id, a seq
 * outside PostgreSQL's integer, a date outside its range) is BAD_USER_INPUT before any SQL runs.
 * Pages hold 1..100 items, 20 by default.
 */
import type { ConversationKey } from '../db/stores/conversations.js';
import type { Page } from '../db/stores/pages.js';
import type { SearchKey } from '../db/stores/search.js';
import { badInput } from '../errors.js';
import { parseId } from './resolvers/ids.js';

export type { Page };

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

export type PageArgs = { first?: number | null; after?: string | null; last?: number | null; before?: string | null };

export type Edge<T> = { cursor: string; node: T };
export type PageInfo = { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
export type Connection<T> = {
  edges: Edge<T>[];
  pageInfo: PageInfo;
  /** Of the connections that have it: how many nodes there are in all, whatever the page (computed only when asked for). */
  totalCount?: number | Promise<number>;
};

export function encodeCursor(kind: string, key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify([kind, ...key])).toString('base64url');
}

/**
 * Decodes a cursor of `kind` whose key matches `shape` (`'n'` integer, `'s'` string), or throws
 * BAD_USER_INPUT naming the argument.
 */
export function decodeCursor(kind: string, shape: readonly ('n' | 's')[], cursor: string, argument: string): (string | number)[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const valid =
    Array.isArray(parsed) &&
    parsed.length === shape.length + 1 &&
    parsed[0] === kind &&
    shape.every((type, i) => (type === 'n' ? Number.isSafeInteger(parsed[i + 1]) : typeof parsed[i + 1] === 'string'));
  if (!valid) throw badInput(`${argument} is not a valid cursor for this connection`, argument);
  return (parsed as unknown[]).slice(1) as (string | number)[];
}

/** Validates `first/after/last/before` and decodes the cursor with `decode`. */
export function parsePage<K>(args: PageArgs, decode: (cursor: string, argument: string) => K): Page<K> {
  const { first, after, last, before } = args;
  if (first != null && last != null) throw badInput('Give either first or last, not both', 'first');
  if (after != null && before != null) throw badInput('Give either after or before, not both', 'after');
  if (last == null && before != null && first != null) throw badInput('before goes with last', 'before');
  if (first != null && !validSize(first)) throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}, got ${first}`, 'first');
  if (last != null && !validSize(last)) throw badInput(`last must be between 1 and ${MAX_PAGE_SIZE}, got ${last}`, 'last');
  if (last != null || before != null) {
    if (after != null) throw badInput('after goes with first', 'after');
    return { direction: 'backward', limit: last ?? DEFAULT_PAGE_SIZE, cursor: before != null ? decode(before, 'before') : null };
  }
  return { direction: 'forward', limit: first ?? DEFAULT_PAGE_SIZE, cursor: after != null ? decode(after, 'after') : null };
}

/**
 * Builds a connection from rows read in page direction, at most `limit + 1` of them (the extra
 * row only tells that there is more). Rows come back in the connection's natural order.
 */
export function toConnection<T>(rows: T[], page: Page<unknown>, cursorOf: (row: T) => string): Connection<T> {
  const more = rows.length > page.limit;
  const kept = more ? rows.slice(0, page.limit) : rows;
  const ordered = page.direction === 'forward' ? kept : kept.reverse();
  const edges = ordered.map((node) => new LazyEdge(node, cursorOf));
  const forward = page.direction === 'forward';
  return {
    edges,
    pageInfo: {
      // Relay allows `false` for the side one is not paging towards; a cursor given means a row exists there.
      hasNextPage: forward ? more : page.cursor !== null,
      hasPreviousPage: forward ? page.cursor !== null : more,
      get startCursor() {
        return edges[0]?.cursor ?? null;
      },
      get endCursor() {
        return edges.at(-1)?.cursor ?? null;
      },
    },
  };
}

// Private: an edge whose cursor is made only when the query asks for it (a browse of thousands
// of rows seldom does).
class LazyEdge<T> implements Edge<T> {
  constructor(
    readonly node: T,
    private readonly cursorOf: (row: T) => string,
  ) {}

  get cursor(): string {
    return this.cursorOf(this.node);
  }
}

/** How the rows of one connection are written as cursors, and read back (checked) as keys. */
export type Cursor<T, K> = { encode(row: T): string; decode(cursor: string, argument: string): K };

const INT_MAX = 2 ** 31 - 1;

/** The cursor of each connection of the schema. */
export const cursors = {
  /** The viewer's conversations by last activity (the default listing). */
  conversation: conversationCursor('conversation', (c: { id: string; lastMessageAt: Date }) => c.lastMessageAt),
  /** The viewer's conversations by creation (`orderBy: CREATED_AT`). */
  conversationByCreation: conversationCursor('conversationByCreation', (c: { id: string; createdAt: Date }) => c.createdAt),
  message: {
    encode: (m) => encodeCursor('message', [m.seq]),
    decode(cursor, argument) {
      const seq = decodeCursor('message', ['n'], cursor, argument)[0] as number;
      // `seq` is a PostgreSQL integer: a key outside its range is no cursor this server made.
      if (seq < 0 || seq > INT_MAX) throw badInput(`${argument} is not a valid cursor for this connection`, argument);
      return seq;
    },
  } satisfies Cursor<{ seq: number }, number>,
  toolCall: {
    encode: (c) => encodeCursor('toolCall', [c.id]),
    decode: (cursor, argument) => parseId(decodeCursor('toolCall', ['s'], cursor, argument)[0] as string, argument),
  } satisfies Cursor<{ id: string }, string>,
  task: {
    encode: (t) => encodeCursor('task', [t.id]),
    decode: (cursor, argument) => parseId(decodeCursor('task', ['s'], cursor, argument)[0] as string, argument),
  } satisfies Cursor<{ id: string }, string>,
  // The rank goes as the text of the float8 PostgreSQL gave (exact both ways), the key breaks ties.
  search: {
    encode: (h) => encodeCursor('search', [String(h.rank), h.id]),
    decode(cursor, argument) {
      const [text, id] = decodeCursor('search', ['s', 's'], cursor, argument) as [string, string];
      const rank = Number(text);
      if (text.trim() === '' || !Number.isFinite(rank) || rank < 0)
        throw badInput(`${argument} is not a valid cursor for this connection`, argument);
      return { rank, id: parseId(id, argument) };
    },
  } satisfies Cursor<SearchKey, SearchKey>,
};

// Private: the cursor of a conversation listing keyed on `(instant, id)`, the instant read by `at`.
// Each order has its own kind: a cursor of one order is no cursor of the other.
function conversationCursor<T extends { id: string }>(kind: string, at: (row: T) => Date): Cursor<T, ConversationKey> {
  return {
    encode: (row) => encodeCursor(kind, [at(row).toISOString(), row.id]),
    decode(cursor, argument) {
      const [instant, id] = decodeCursor(kind, ['s', 's'], cursor, argument) as [string, string];
      const date = new Date(instant);
      if (!storableDate(date)) throw badInput(`${argument} is not a valid cursor for this connection`, argument);
      return { at: date, id: parseId(id, argument) };
    },
  };
}

/** Checks the dates `keys` of a connection's `filter` (absent ones pass); BAD_USER_INPUT naming `filter.<key>` for one PostgreSQL cannot compare with. */
export function checkFilterDates<K extends string>(filter: Partial<Record<K, Date | null>> | null | undefined, keys: readonly K[]): void {
  for (const key of keys) {
    const value = filter?.[key];
    if (value != null && !storableDate(value)) throw badInput(`filter.${key} must be a date between the years 1 and 9999`, `filter.${key}`);
  }
}

/** A valid date PostgreSQL can compare with (JavaScript's range is wider than its own). */
export function storableDate(date: Date): boolean {
  const year = date.getUTCFullYear();
  return !Number.isNaN(date.getTime()) && year >= 1 && year <= 9999;
}

function validSize(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= MAX_PAGE_SIZE;
}
