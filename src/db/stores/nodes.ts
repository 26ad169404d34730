/**
 * The node store: which of the user's tables holds each of a set of ids, for Relay's
 * `node(id:)`. Ids are UUIDv7 made by one generator (`entities/ids.ts`), so an id names one row of
 * one table, and the type is found by looking, in one statement over the four tables, each branch
 * filtered by `user_id`: another user's id, like an unknown one, is simply not there.
 */
import type { EntityManager } from '@mikro-orm/postgresql';

/** The tables whose rows are Relay nodes, by the name of their GraphQL type. */
export const NODE_TABLES = { Conversation: 'conversation', Message: 'message', ToolCall: 'tool_call', Task: 'task' } as const;

export type NodeTypeName = keyof typeof NODE_TABLES;

/**
 * The type of each of the user's rows among `ids`, in one statement (a `union all` of one
 * primary-key lookup per table). Unknown ids and other users' are left out; any order.
 */
export async function findNodeTypes(
  em: EntityManager,
  userId: string,
  ids: readonly string[],
): Promise<{ id: string; type: NodeTypeName }[]> {
  const branches = Object.entries(NODE_TABLES).map(
    ([type, table]) => `select '${type}' as type, id from ${table} where id = any(?::uuid[]) and user_id = ?`,
  );
  // The ORM expands array parameters into lists; a PostgreSQL array literal keeps one parameter.
  const params = branches.flatMap(() => [`{${ids.join(',')}}`, userId]);
  return em.execute<{ id: string; type: NodeTypeName }[]>(branches.join(' union all '), params);
}
