/**
 * The DataLoaders of one request, made by `createLoaders(em, viewer)` in the context function.
 *
 * Each loader batches one field level into one SQL statement of a store (`db/stores/`), whatever
 * the number of parents: pages of messages or tool calls of many conversations are read with a
 * LATERAL join (one indexed keyset range per parent). Every statement filters by the viewer's
 * `user_id`. Loaders return in key order, one entry per key.
 *
 * `node` answers Relay's `node(id:)`: one statement finds which table holds each id, then each
 * type's own loader reads its rows, so any number of ids costs at most five statements.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import DataLoader from 'dataloader';
import type { Viewer } from '../auth/viewer.js';
import { findConversations } from '../db/stores/conversations.js';
import { findMessages, type MessageView, messagePages } from '../db/stores/messages.js';
import { findNodeTypes } from '../db/stores/nodes.js';
import { taskStore } from '../db/stores/tasks.js';
import { findToolCalls, type ToolCallFilter, type ToolCallView, toolCallPages, toolCallViewsOfMessages } from '../db/stores/tool-calls.js';
import type { Conversation, Message, Task, ToolCall } from '../entities/index.js';
import { type Connection, cursors, type Page, type PageArgs, parsePage, toConnection } from './pagination.js';

export type Loaders = ReturnType<typeof createLoaders>;

/** What `node(id:)` answers: an entity of one of the four node types (`types.ts` tells them apart). */
export type NodeValue = Conversation | Message | ToolCall | Task;

type PageKey<A> = { parentId: string; args: A };

/** Creates the loaders of one request of `viewer`, reading through the request's `em`. */
export function createLoaders(em: EntityManager, viewer: Viewer) {
  const { userId } = viewer;

  const conversation = new DataLoader<string, Conversation | null>(async (ids) => {
    const rows = await findConversations(em, userId, ids);
    return inKeyOrder(ids, rows, (row) => row.id);
  });

  const message = new DataLoader<string, Message | null>(async (ids) => {
    const rows = await findMessages(em, userId, ids);
    return inKeyOrder(ids, rows, (row) => row.id);
  });

  const toolCall = new DataLoader<string, ToolCall | null>(async (ids) => {
    const rows = await findToolCalls(em, userId, ids);
    return inKeyOrder(ids, rows, (row) => row.id);
  });

  const task = new DataLoader<string, Task | null>(async (ids) => {
    const rows = await taskStore(em).find(userId, ids);
    return inKeyOrder(ids, rows, (row) => row.id);
  });

  // One statement for the types of all the ids; then the loads below, made in the same tick, are
  // one batch per type present: a node's row is read, and cached, by the loader of its type.
  const byType = { Conversation: conversation, Message: message, ToolCall: toolCall, Task: task };
  const node = new DataLoader<string, NodeValue | null>(async (ids) => {
    const types = new Map((await findNodeTypes(em, userId, ids)).map((row) => [row.id, row.type]));
    return Promise.all(
      ids.map((id) => {
        const type = types.get(id);
        return type === undefined ? null : byType[type].load(id);
      }),
    );
  });

  const toolCallsOfMessage = new DataLoader<string, ToolCallView[]>(async (ids) => {
    const rows = await toolCallViewsOfMessages(em, userId, ids);
    const byMessage = Map.groupBy(rows, (row) => row.message.id);
    return ids.map((id) => byMessage.get(id) ?? []);
  });

  // With `withToolCalls` (the query asks for them), each page's messages come with their tool calls,
  // read for all of them at once, which the `toolCalls` field then answers without a promise each.
  const messages = pageLoader<PageArgs & { withToolCalls?: boolean }, MessageView>(async (parentIds, args) => {
    const page = parsePage(args, cursors.message.decode);
    const rows = await messagePages(em, userId, parentIds, page);
    if (args.withToolCalls && rows.length > 0) {
      const calls = Map.groupBy(
        await toolCallViewsOfMessages(
          em,
          userId,
          rows.map((row) => row.id),
        ),
        (call) => call.message.id,
      );
      for (const row of rows) row.toolCalls = calls.get(row.id) ?? [];
    }
    return groupPages(parentIds, rows, (m) => m.conversation.id, page, cursors.message.encode);
  });

  const toolCalls = pageLoader<PageArgs & ToolCallFilter, ToolCallView>(async (parentIds, args) => {
    const page = parsePage(args, cursors.toolCall.decode);
    const rows = await toolCallPages(em, userId, parentIds, page, args);
    return groupPages(parentIds, rows, (c) => c.conversation.id, page, cursors.toolCall.encode);
  });

  return { conversation, message, toolCall, task, node, toolCallsOfMessage, messages, toolCalls };
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
