/**
 * The ceiling: the least SQL a turn can issue, sent straight through `pg`, one connection per
 * client (as `pgbench -c N` would), with no HTTP, GraphQL or ORM in the way. What the database
 * allows at that concurrency on this machine; no server can beat it.
 *
 * `minimalTurn` is also what the reference server (`reference.ts`) runs behind its endpoint.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { at } from '../test/support/defined.js';
import { type Measured, measuredLoop } from './load.js';

/** The turn's context: the last messages read (the server's `HISTORY_LIMIT` default). */
const HISTORY = 50;
const LEASE = "interval '60 seconds'";

export type MinimalTurn = {
  userId: string;
  conversationId: string;
  content: string;
  /** Also what one `list_tasks` tool call costs: read the tasks, store the tool call. */
  tool: boolean;
};

/**
 * One turn, minimal: (1) lock the conversation, insert the user message and the reply in
 * progress, bump `next_seq`, `message_count` and the lease; (2) read the last 50 messages by
 * keyset on `(conversation_id, seq)`; (3) complete the reply and free the conversation. Returns
 * the reply's id and seq and how many messages the context held.
 */
export async function minimalTurn(db: pg.ClientBase, turn: MinimalTurn): Promise<{ id: string; seq: number; context: number }> {
  const { userId, conversationId, content } = turn;
  const userMessage = randomUUID();
  const reply = randomUUID();
  await db.query('begin');
  let seq: number;
  try {
    const locked = await db.query('select next_seq from conversation where id = $1 and user_id = $2 for update', [conversationId, userId]);
    if (locked.rowCount !== 1) throw new Error(`conversation ${conversationId} of ${userId} not found`);
    seq = locked.rows[0].next_seq as number;
    await db.query(
      `insert into message (id, conversation_id, user_id, seq, role, content, status, created_at)
       values ($1, $3, $4, $5, 'user', $6, 'complete', now()), ($2, $3, $4, $5 + 1, 'assistant', '', 'in_progress', now())`,
      [userMessage, reply, conversationId, userId, seq, content],
    );
    await db.query(
      `update conversation set next_seq = next_seq + 2, message_count = message_count + 2, turn_id = $2,
       lease_expires_at = now() + ${LEASE}, updated_at = now(), last_message_at = now() where id = $1`,
      [conversationId, randomUUID()],
    );
    await db.query('commit');
  } catch (error) {
    await db.query('rollback');
    throw error;
  }

  const context = await db.query(
    `select id, seq, role, content, status from message where conversation_id = $1 and seq <= $2 order by seq desc limit ${HISTORY}`,
    [conversationId, seq + 1],
  );
  const tasks = turn.tool
    ? await db.query('select id, title, completed from task where user_id = $1 order by id limit 100', [userId])
    : null;

  await db.query('begin');
  try {
    if (tasks) {
      await db.query(
        `insert into tool_call (id, message_id, conversation_id, user_id, call_id, server, name, arguments, result, is_error, started_at, duration_ms)
         values ($1, $2, $3, $4, $5, 'todo', 'list_tasks', '{}', $6, false, now(), 0)`,
        [randomUUID(), reply, conversationId, userId, `call_${seq}`, JSON.stringify({ tasks: tasks.rows })],
      );
    }
    await db.query(`update message set content = $2, status = 'complete', created_at = now() where id = $1`, [reply, 'Hello!']);
    await db.query(
      'update conversation set turn_id = null, lease_expires_at = null, updated_at = now(), last_message_at = now() where id = $1',
      [conversationId],
    );
    await db.query('commit');
  } catch (error) {
    await db.query('rollback');
    throw error;
  }
  return { id: reply, seq: seq + 1, context: context.rowCount ?? 0 };
}

/**
 * Runs minimal turns in a closed loop, client `i` on `conversations[i]` over its own connection.
 * `conversations` must hold at least `clients` ids of `userId`.
 */
export async function runCeiling(
  url: string,
  options: { userId: string; conversations: string[]; tool: boolean; warmupMs: number; durationMs: number },
): Promise<Measured> {
  const clients = options.conversations.length;
  const connections = await Promise.all(
    options.conversations.map(async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  try {
    return await measuredLoop({
      clients,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      request: async (i) => {
        await minimalTurn(at(connections, i, 'the ceiling connections'), {
          userId: options.userId,
          conversationId: at(options.conversations, i, 'the ceiling conversations'),
          content: 'hello',
          tool: options.tool,
        });
      },
    });
  } finally {
    await Promise.all(connections.map((client) => client.end()));
  }
}
