/**
 * The DataLoaders of one request, made by `createLoaders(em, viewer)` in the context function.
 *
 * Each loader batches one field level into one SQL statement, whatever the number of parents:
 * pages of messages or tool calls of many conversations are read with a LATERAL join (one
 * indexed keyset range per parent). Every statement filters by the viewer's `user_id`. Loaders
 * return in key order, one entry per key.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import DataLoader from 'dataloader';
import type { Viewer } from '../auth/viewer.js';
import { Conversation, Message, ToolCall } from '../entities/index.js';
import { badInput } from '../errors.js';
import { type Connection, decodeCursor, encodeCursor, type Page, type PageArgs, parsePage, toConnection } from './pagination.js';
import { parseId } from './resolvers/ids.js';

export type Loaders = ReturnType<typeof createLoaders>;

export type ToolCallFilter = { name?: string | null; isError?: boolean | null };

type PageKey<A> = { parentId: string; args: A };

export const messageCursor = (message: Message) => encodeCursor('message', [message.seq]);
export const toolCallCursor = (call: ToolCall) => encodeCursor('toolCall', [call.id]);
const decodeMessageCursor = (cursor: string, argument: string) => {
  const seq = decodeCursor('message', ['n'], cursor, argument)[0] as number;
  // `seq` is a PostgreSQL integer: a key outside its range is no cursor this server made.
  if (seq < 0 || seq > INT_MAX) throw badInput(`${argument} is not a valid cursor for this connection`, argument);
  return seq;
};
const decodeToolCallCursor = (cursor: string, argument: string) =>
  parseId(decodeCursor('toolCall', ['s'], cursor, argument)[0] as string, argument);
const INT_MAX = 2 ** 31 - 1;

/** Creates the loaders of one request of `viewer`, reading through the request's `em`. */
export function createLoaders(em: EntityManager, viewer: Viewer) {
  const { userId } = viewer;

  const conversation = new DataLoader<string, Conversation | null>(async (ids) => {
    const rows = await em.find(Conversation, { id: { $in: [...ids] }, userId });
    return inKeyOrder(ids, rows, (row) => row.id);
  });

  const message = new DataLoader<string, Message | null>(async (ids) => {
    const rows = await em.find(Message, { id: { $in: [...ids] }, userId });
    return inKeyOrder(ids, rows, (row) => row.id);
  });

  const toolCallsOfMessage = new DataLoader<string, ToolCall[]>(async (ids) => {
    const rows = await em.find(ToolCall, { message: { $in: [...ids] }, userId }, { orderBy: { id: 'asc' } });
    const byMessage = Map.groupBy(rows, (row) => row.message.id);
    return ids.map((id) => byMessage.get(id) ?? []);
  });

  const messages = pageLoader<PageArgs, Message>(async (parentIds, args) => {
    const page = parsePage(args, decodeMessageCursor);
    const rows = await lateralPage(em, {
      table: 'message',
      parentColumn: 'conversation_id',
      keyColumn: 'seq',
      keyType: 'int',
      parentIds,
      userId,
      page,
    });
    return groupPages(
      parentIds,
      rows.map((row) => em.map(Message, row)),
      (m) => m.conversation.id,
      page,
      messageCursor,
    );
  });

  const toolCalls = pageLoader<PageArgs & ToolCallFilter, ToolCall>(async (parentIds, args) => {
    const page = parsePage(args, decodeToolCallCursor);
    const rows = await lateralPage(em, {
      table: 'tool_call',
      parentColumn: 'conversation_id',
      keyColumn: 'id',
      keyType: 'uuid',
      parentIds,
      userId,
      page,
      where: [
        ...(args.name != null ? [{ sql: 'name = ?', value: args.name }] : []),
        ...(args.isError != null ? [{ sql: 'is_error = ?', value: args.isError }] : []),
      ],
    });
    return groupPages(
      parentIds,
      rows.map((row) => em.map(ToolCall, row)),
      (c) => c.conversation.id,
      page,
      toolCallCursor,
    );
  });

  return { conversation, message, toolCallsOfMessage, messages, toolCalls };
}

/**
 * A loader of one page per parent. Keys that ask for the same page arguments are answered by one
 * statement; a request usually asks for one shape, so one statement per field level.
 */
function pageLoader<A extends object, T>(load: (parentIds: string[], args: A) => Promise<Connection<T>[]>) {
  return new DataLoader<PageKey<A>, Connection<T>, string>(
    async (keys) => {
      const groups = Map.groupBy(keys, (key) => JSON.stringify(key.args));
      const results = new Map<PageKey<A>, Connection<T> | Error>();
      for (const group of groups.values()) {
        // Every key of a group has the same arguments; any one of them stands for the group.
        const args = group[0]?.args;
        if (args === undefined) continue;
        try {
          const pages = await load(
            group.map((key) => key.parentId),
            args,
          );
          for (const [i, key] of group.entries()) results.set(key, pages[i] ?? new Error(`no page was loaded for ${key.parentId}`));
        } catch (error) {
          for (const key of group) results.set(key, error instanceof Error ? error : new Error(String(error)));
        }
      }
      return keys.map((key) => results.get(key) ?? new Error(`no page was loaded for ${key.parentId}`));
    },
    { cacheKeyFn: (key) => `${key.parentId}:${JSON.stringify(key.args)}` },
  );
}

type LateralQuery = {
  table: 'message' | 'tool_call';
  parentColumn: string;
  keyColumn: 'seq' | 'id';
  keyType: 'int' | 'uuid';
  parentIds: string[];
  userId: string;
  page: Page<string | number>;
  where?: { sql: string; value: unknown }[];
};

// Private: one page (limit + 1 rows) of each parent, in page direction, in one statement.
async function lateralPage(em: EntityManager, q: LateralQuery): Promise<Record<string, unknown>[]> {
  const forward = q.page.direction === 'forward';
  const conditions = [`t.${q.parentColumn} = p.id`, 't.user_id = ?', ...(q.where ?? []).map((w) => `t.${w.sql}`)];
  // The ORM expands array parameters into lists; a PostgreSQL array literal keeps one parameter.
  const params: unknown[] = [`{${q.parentIds.join(',')}}`, q.userId, ...(q.where ?? []).map((w) => w.value)];
  if (q.page.cursor !== null) {
    conditions.push(`t.${q.keyColumn} ${forward ? '>' : '<'} ?::${q.keyType}`);
    params.push(q.page.cursor);
  }
  params.push(q.page.limit + 1);
  const sql =
    `select t.* from unnest(?::uuid[]) as p(id) cross join lateral (` +
    `select * from ${q.table} t where ${conditions.join(' and ')} ` +
    `order by t.${q.keyColumn} ${forward ? 'asc' : 'desc'} limit ?) t`;
  return em.execute(sql, params);
}

function groupPages<T>(
  parentIds: string[],
  rows: T[],
  parentOf: (row: T) => string,
  page: Page<unknown>,
  cursorOf: (row: T) => string,
): Connection<T>[] {
  const byParent = Map.groupBy(rows, parentOf);
  return parentIds.map((id) => toConnection(byParent.get(id) ?? [], page, cursorOf));
}

function inKeyOrder<K, V>(keys: readonly K[], rows: V[], keyOf: (row: V) => K): (V | null)[] {
  const byKey = new Map(rows.map((row) => [keyOf(row), row]));
  return keys.map((key) => byKey.get(key) ?? null);
}
