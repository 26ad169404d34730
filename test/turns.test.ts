/**
 * Turns under contention and failure: one turn at a time per conversation (CONVERSATION_BUSY, or
 * waiting with ifBusy: ENQUEUE); a failed agent leaves the user message stored and a retry with
 * the same clientMessageId completes it; an interrupted turn is closed by the next message.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatedAgent } from './support/gate.js';
import { gqlError, SEND, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';
import { sleep, until } from './support/wait.js';

let server: TestServer;
let db: pg.Client;
const agent = new GatedAgent();

beforeAll(async () => {
  server = await startTestServer({ agent });
  db = server.db;
});

afterAll(async () => {
  agent.gate.release();
  await server?.close();
});

/** Resolves once the request waits in the queue of `conversationId` (it joins on its first busy answer). */
const untilQueued = (conversationId: string, count: number) =>
  until(
    async () =>
      (await db.query('select count(*)::int as n from turn_waiter where conversation_id = $1', [conversationId])).rows[0].n === count,
    `${count} waiter(s) in the queue of ${conversationId}`,
  );

/** A conversation of `user` whose second turn ("add slow thing") the gate holds: its client, the conversation and that turn. */
async function heldTurn(user: string) {
  const client = await server.client(user);
  const { conversation } = await send(client, 'add first');
  const before = agent.gate.held;
  const slow = send(client, 'add slow thing', conversation.id);
  await agent.gate.untilHeld(before + 1);
  return { client, conversation, slow };
}

describe('a conversation with a running turn', () => {
  it('rejects a second message with CONVERSATION_BUSY and retryAfterMs, storing nothing', async () => {
    const { client, conversation, slow } = await heldTurn('busy-reject');

    const error = await gqlError(client, SEND, { input: { conversationId: conversation.id, message: 'add second' } });
    expect(error.code).toBe('CONVERSATION_BUSY');
    expect(error.extensions.retryAfterMs).toEqual(expect.any(Number));
    expect(error.extensions.retryAfterMs as number).toBeGreaterThan(0);
    const stored = await db.query('select content from message where conversation_id = $1 and role = $2 order by seq', [
      conversation.id,
      'user',
    ]);
    expect(stored.rows.map((r) => r.content)).toEqual(['add first', 'add slow thing']);

    agent.gate.release();
    expect((await slow).assistantMessage.seq).toBe(4);
  });

  it('with ifBusy: ENQUEUE waits for the running turn, then runs after it', async () => {
    const { client, conversation, slow } = await heldTurn('busy-enqueue');

    const queued = send(client, 'add second', conversation.id, { ifBusy: 'ENQUEUE' });
    await untilQueued(conversation.id, 1);
    agent.gate.release();
    const [a, b] = await Promise.all([slow, queued]);
    expect([a.userMessage.seq, a.assistantMessage.seq, b.userMessage.seq, b.assistantMessage.seq]).toEqual([3, 4, 5, 6]);
    const stored = await db.query('select seq, role, content from message where conversation_id = $1 order by seq', [conversation.id]);
    expect(stored.rows.map((r) => `${r.seq}:${r.role}`)).toEqual([
      '1:user',
      '2:assistant',
      '3:user',
      '4:assistant',
      '5:user',
      '6:assistant',
    ]);
  });
});

describe('the queue of a conversation', () => {
  it('serves the request that reached its instance first, passes over a waiter that stopped showing it is alive, and mends its count', async () => {
    const { client, conversation, slow } = await heldTurn('queue-order');

    const queued = send(client, 'add queued', conversation.id, { ifBusy: 'ENQUEUE' });
    await untilQueued(conversation.id, 1);
    // A request of another instance that arrived 100 ms before this one but joined after it (its
    // way to the queue was slow), and whose process then dies: alive for 3 s more, then passed over.
    await db.query(
      `with w as (insert into turn_waiter (conversation_id, user_id, arrived_at, expires_at)
         select conversation_id, user_id, arrived_at - interval '100 milliseconds', now() + interval '3 seconds'
         from turn_waiter where conversation_id = $1 returning conversation_id)
       update conversation set waiting = waiting + 1 where id = (select conversation_id from w)`,
      [conversation.id],
    );
    agent.gate.release();
    await slow;
    // The conversation is free, but the earlier arrival heads the queue while it is alive.
    await sleep(300);
    const waiting = async () =>
      (
        await db.query(
          'select waiting, (select count(*)::int from turn_waiter where conversation_id = $1) as rows from conversation where id = $1',
          [conversation.id],
        )
      ).rows[0];
    const early = await db.query(`select count(*)::int as n from message where conversation_id = $1 and content = 'add queued'`, [
      conversation.id,
    ]);
    expect(early.rows[0].n).toBe(0);
    expect(await waiting()).toEqual({ waiting: 2, rows: 2 });

    const late = await queued;
    expect(late.userMessage.seq).toBe(5);
    // The dead waiter's row is still counted; the next turn sweeps it and sets the count back to 0.
    expect(await waiting()).toEqual({ waiting: 1, rows: 1 });
    await send(client, 'add after', conversation.id);
    expect(await waiting()).toEqual({ waiting: 0, rows: 0 });
  });
});

describe('a turn that fails or is interrupted', () => {
  it('keeps the user message and a failed reply; a retry with the same clientMessageId completes it in place', async () => {
    const client = await server.client('failing');
    const { conversation } = await send(client, 'add first');
    const input = { conversationId: conversation.id, message: 'add explode test', clientMessageId: 'retry-1' };

    const failure = await gqlError(client, SEND, { input });
    expect(failure.code).toBe('UPSTREAM_ERROR');
    const afterFailure = await db.query('select seq, role, status from message where conversation_id = $1 order by seq', [conversation.id]);
    expect(afterFailure.rows.map((r) => `${r.seq}:${r.role}:${r.status}`)).toEqual([
      '1:user:complete',
      '2:assistant:complete',
      '3:user:complete',
      '4:assistant:failed',
    ]);

    const retry = await send(client, input.message, conversation.id, { clientMessageId: 'retry-1' });
    expect(retry.replayed).toBe(false);
    expect([retry.userMessage.seq, retry.assistantMessage.seq, retry.assistantMessage.status]).toEqual([3, 4, 'COMPLETE']);
    expect(retry.toolCalls.map((c) => c.name)).toEqual(['add_task']);
    const afterRetry = await db.query('select seq, role, status from message where conversation_id = $1 order by seq', [conversation.id]);
    expect(afterRetry.rows.map((r) => `${r.seq}:${r.role}:${r.status}`)).toEqual([
      '1:user:complete',
      '2:assistant:complete',
      '3:user:complete',
      '4:assistant:complete',
    ]);
    const counters = await db.query('select message_count, next_seq, turn_id from conversation where id = $1', [conversation.id]);
    expect(counters.rows[0]).toEqual({ message_count: 4, next_seq: 5, turn_id: null });

    const replay = await send(client, input.message, conversation.id, { clientMessageId: 'retry-1' });
    expect(replay.replayed).toBe(true);
    expect(replay.assistantMessage.id).toBe(retry.assistantMessage.id);
  });

  it('closes a turn whose instance died (lease expired, reply in progress) as failed when the next message comes', async () => {
    const client = await server.client('interrupted');
    const { conversation } = await send(client, 'add first');
    // What an instance leaves behind when it dies in the middle of a turn: the user message, its
    // reply in progress, and a lease that is no longer renewed.
    await db.query(
      `insert into message (id, conversation_id, user_id, seq, role, content, status, created_at)
       values (gen_random_uuid(), $1, 'interrupted', 3, 'user', 'add lost', 'complete', now()),
              (gen_random_uuid(), $1, 'interrupted', 4, 'assistant', '', 'in_progress', now())`,
      [conversation.id],
    );
    await db.query(
      `update conversation set next_seq = 5, message_count = 4, turn_id = gen_random_uuid(),
       lease_expires_at = now() - interval '1 second' where id = $1`,
      [conversation.id],
    );

    const next = await send(client, 'add next', conversation.id);
    expect([next.userMessage.seq, next.assistantMessage.seq]).toEqual([5, 6]);
    const rows = await db.query('select seq, role, status from message where conversation_id = $1 order by seq', [conversation.id]);
    expect(rows.rows.map((r) => `${r.seq}:${r.role}:${r.status}`)).toEqual([
      '1:user:complete',
      '2:assistant:complete',
      '3:user:complete',
      '4:assistant:failed',
      '5:user:complete',
      '6:assistant:complete',
    ]);
    const counters = await db.query('select message_count, turn_id from conversation where id = $1', [conversation.id]);
    expect(counters.rows[0]).toEqual({ message_count: 6, turn_id: null });
  });
});

describe('a turn that loses its lease (its instance stalled past TURN_LEASE)', () => {
  it('is closed as failed by the next message, and still lands its reply in its own slot when it wakes', async () => {
    const client = await server.client('stalled');
    const { conversation } = await send(client, 'add first');
    const before = agent.gate.held;
    const stalled = send(client, 'add slow stalled', conversation.id);
    await agent.gate.untilHeld(before + 1);
    // What another instance sees once the stalled instance stopped renewing: an expired lease.
    await db.query(`update conversation set lease_expires_at = now() - interval '1 second' where id = $1`, [conversation.id]);

    const next = await send(client, 'add next', conversation.id);
    expect([next.userMessage.seq, next.assistantMessage.seq]).toEqual([5, 6]);
    agent.gate.release();
    const late = await stalled;
    expect([late.userMessage.seq, late.assistantMessage.seq, late.assistantMessage.status]).toEqual([3, 4, 'COMPLETE']);

    const rows = await db.query('select seq, role, status from message where conversation_id = $1 order by seq', [conversation.id]);
    expect(rows.rows.map((r) => `${r.seq}:${r.role}:${r.status}`)).toEqual([
      '1:user:complete',
      '2:assistant:complete',
      '3:user:complete',
      '4:assistant:complete',
      '5:user:complete',
      '6:assistant:complete',
    ]);
    const counters = await db.query('select message_count, next_seq, turn_id from conversation where id = $1', [conversation.id]);
    expect(counters.rows[0]).toEqual({ message_count: 6, next_seq: 7, turn_id: null });
  });
});

describe('the turn lease and the turn deadline', () => {
  let shortLease: TestServer;
  const held = new GatedAgent();

  beforeAll(async () => {
    shortLease = await startTestServer({ agent: held, env: { TURN_LEASE: '300', TURN_DEADLINE: '3000' } });
  });

  afterAll(async () => {
    held.gate.release();
    await shortLease?.close();
  });

  it('is renewed while the turn runs, so a live turn longer than TURN_LEASE keeps its conversation', async () => {
    const client = await shortLease.client('long-turn');
    const { conversation } = await send(client, 'add first');
    const slow = send(client, 'add slow thing', conversation.id);
    await held.gate.untilHeld(1);

    // Time itself is the point here: the turn runs three leases long (TURN_LEASE is 300 ms), and
    // only its renewals keep the conversation from being taken over.
    await sleep(900);
    const error = await gqlError(client, SEND, { input: { conversationId: conversation.id, message: 'add intruder' } });
    expect(error.code).toBe('CONVERSATION_BUSY');

    held.gate.release();
    expect((await slow).assistantMessage.seq).toBe(4);
    expect((await send(client, 'add after', conversation.id)).userMessage.seq).toBe(5);
  });

  it('ends a turn that outlives TURN_DEADLINE with UPSTREAM_ERROR, keeping the user message and freeing the conversation', async () => {
    const client = await shortLease.client('deadline');
    const { conversation } = await send(client, 'add first');
    const started = Date.now();
    const error = await gqlError(client, SEND, { input: { conversationId: conversation.id, message: 'add slow forever' } });
    expect(error.code).toBe('UPSTREAM_ERROR');
    // A lower bound only (a slow machine makes it longer, never shorter): the turn ran until TURN_DEADLINE (3 s).
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
    const next = await send(client, 'add after', conversation.id);
    expect([next.userMessage.seq, next.assistantMessage.seq]).toEqual([5, 6]);
  });
});

describe('a migration while the server runs', () => {
  it('adding a column to conversation does not break the statements each connection keeps prepared', async () => {
    const client = await server.client('migrating');
    const conversations = await Promise.all(Array.from({ length: 7 }, async (_, i) => (await send(client, `add first ${i}`)).conversation));
    // Turns in existing conversations, seven at once, twice (28 turns in all: within the 30 a minute of a test user): the pooled connections prepare the hot statements.
    const turns = async (round: string) =>
      Promise.all(conversations.map(async (conversation, i) => send(client, `add ${round} ${i}`, conversation.id)));
    await turns('warm');
    await turns('warmer');
    await db.query('alter table conversation add column added_by_a_migration integer');
    try {
      const after = await turns('after');
      expect(after.map((turn) => `${turn.userMessage.seq}:${turn.assistantMessage.status}`)).toEqual(conversations.map(() => '7:COMPLETE'));
    } finally {
      await db.query('alter table conversation drop column added_by_a_migration');
    }
  });
});
