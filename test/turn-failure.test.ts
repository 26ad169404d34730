/**
 * A turn that fails for a reason it does not expect, between its two transactions: here the
 * database refuses to store the reply (a check constraint the turn knows nothing of). The client
 * gets INTERNAL_SERVER_ERROR, and the turn is ended at once: its reply marked failed and its
 * conversation freed, so the next message runs without waiting for TURN_LEASE.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineAgent } from '../src/agent/offline.js';
import type { Agent, AgentInput } from '../src/agent/types.js';
import { failTurn } from '../src/chat/lease.js';
import { gqlError, SEND, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

/** The reply the test database refuses to store. */
const REFUSED = 'A reply the database refuses to store.';

/** The offline agent, answering REFUSED once to each message that contains "refuse". */
class RefusedReplyAgent implements Agent {
  readonly name = 'refused-reply';
  private readonly inner = new OfflineAgent();
  private answered = new Set<string>();

  async run(input: AgentInput) {
    const last = input.messages.at(-1);
    if (last?.role === 'user' && last.content.includes('refuse') && !this.answered.has(last.content)) {
      this.answered.add(last.content);
      return { content: REFUSED, model: this.name, usage: null };
    }
    return this.inner.run(input);
  }
}

let server: TestServer;
let db: pg.Client;

beforeAll(async () => {
  // A long lease: if the conversation were only freed by its expiry, the next message would be busy.
  server = await startTestServer({ agent: new RefusedReplyAgent(), env: { TURN_LEASE: '60000' } });
  db = server.db;
  await db.query(`alter table message add constraint test_refused_reply check (content <> '${REFUSED}')`);
});

afterAll(async () => {
  await server?.close();
});

const rows = async (conversationId: string) =>
  (await db.query('select seq, role, status, content from message where conversation_id = $1 order by seq', [conversationId])).rows;
const lease = async (conversationId: string) =>
  (await db.query('select turn_id, lease_expires_at from conversation where id = $1', [conversationId])).rows[0];
const conversationOf = async (userId: string) =>
  (await db.query('select id from conversation where user_id = $1 order by created_at desc limit 1', [userId])).rows[0].id as string;

describe('a turn whose reply cannot be stored (an error between its two transactions)', () => {
  it('answers INTERNAL_SERVER_ERROR, marks the reply failed, frees the conversation at once, and the next message runs', async () => {
    const client = await server.client('refused');
    const error = await gqlError(client, SEND, { input: { message: 'please refuse this' } });
    expect(error.code).toBe('INTERNAL_SERVER_ERROR');
    expect(error.message).toBe('Internal server error');

    const conversationId = await conversationOf('refused');
    expect(await rows(conversationId)).toEqual([
      { seq: 1, role: 'user', status: 'complete', content: 'please refuse this' },
      { seq: 2, role: 'assistant', status: 'failed', content: 'The turn failed before the assistant answered.' },
    ]);
    expect(await lease(conversationId)).toEqual({ turn_id: null, lease_expires_at: null });

    const next = await send(client, 'add a task to buy milk', conversationId);
    expect([next.userMessage.seq, next.assistantMessage.seq, next.assistantMessage.status]).toEqual([3, 4, 'COMPLETE']);
    expect(next.toolCalls.map((call) => call.name)).toEqual(['add_task']);
  });

  it('is completed in place by a retry with the same clientMessageId', async () => {
    const client = await server.client('refused-retry');
    const input = { message: 'refuse, then add a task to call mom', clientMessageId: 'refused-key' };
    expect((await gqlError(client, SEND, { input })).code).toBe('INTERNAL_SERVER_ERROR');

    const retry = await send(client, input.message, undefined, { clientMessageId: input.clientMessageId });
    expect([retry.userMessage.seq, retry.assistantMessage.seq, retry.assistantMessage.status, retry.replayed]).toEqual([
      1,
      2,
      'COMPLETE',
      false,
    ]);
    expect(await rows(retry.conversation.id)).toEqual([
      expect.objectContaining({ seq: 1, status: 'complete' }),
      expect.objectContaining({ seq: 2, status: 'complete' }),
    ]);
  });
});

describe('failTurn (the store function of that failure path)', () => {
  it('touches nothing once another turn holds the conversation, nor for another user, and otherwise ends the turn', async () => {
    const client = await server.client('fail-store');
    const turn = await send(client, 'add a task to water the plants');
    const conversationId = turn.conversation.id;
    // Another turn has taken over the conversation and resumes this reply (a retry elsewhere).
    const other = crypto.randomUUID();
    await db.query(`update conversation set turn_id = $2, lease_expires_at = now() + interval '1 minute' where id = $1`, [
      conversationId,
      other,
    ]);
    await db.query(`update message set status = 'in_progress' where id = $1`, [turn.assistantMessage.id]);
    const em = server.app.orm.em.fork();
    const mine = { conversationId, userId: 'fail-store', replyId: turn.assistantMessage.id, turnId: crypto.randomUUID() };

    expect(await failTurn(em, mine)).toBe(false);
    expect(await failTurn(em, { ...mine, turnId: other, userId: 'someone-else' })).toBe(false);
    expect((await lease(conversationId)).turn_id).toBe(other);
    expect((await rows(conversationId))[1]).toMatchObject({ seq: 2, status: 'in_progress' });

    expect(await failTurn(em, { ...mine, turnId: other })).toBe(true);
    expect(await lease(conversationId)).toEqual({ turn_id: null, lease_expires_at: null });
    expect((await rows(conversationId))[1]).toMatchObject({
      seq: 2,
      status: 'failed',
      content: 'The turn failed before the assistant answered.',
    });
  });
});
