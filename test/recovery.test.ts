/**
 * Exactly-once and crash safety within one server: tool calls are stored the moment they
 * complete, a retry after an interruption hands the model what was already done, waiting
 * requests run in arrival order, concurrent first messages with one key make one conversation,
 * and shutdown frees the conversations of turns it cuts short.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent, AgentInput, AgentMessage } from '../src/agent/types.js';
import { isTransient } from '../src/db/retry.js';
import { at, defined } from './support/defined.js';
import { Gate } from './support/gate.js';
import { gqlError, SEND, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';
import { until } from './support/wait.js';

/**
 * A scripted agent: "hold <title>" adds the task, then waits until released; "run <title>" adds
 * it and answers at once. It keeps the messages it was given, for assertions on the context.
 */
class ScriptedAgent implements Agent {
  readonly name = 'scripted';
  seen: AgentMessage[][] = [];
  readonly gate = new Gate();

  async run({ messages, tools }: AgentInput) {
    this.seen.push(messages);
    const last = messages.at(-1);
    const text = last?.role === 'user' ? last.content : '';
    const [verb, ...words] = text.split(' ');
    const title = words.join(' ');
    const done = messages.some((m) => m.role === 'tool');
    if (!done) await tools.call('add_task', { title });
    if (verb === 'hold') await this.gate.hold();
    return { content: `did ${title}`, model: 'scripted', usage: null };
  }
}

let server: TestServer;
let db: pg.Client;
const agent = new ScriptedAgent();

beforeAll(async () => {
  server = await startTestServer({ agent, env: { TURN_LEASE: '400' } });
  db = server.db;
});

afterAll(async () => {
  agent.gate.release();
  await server?.close();
});

/** How many requests wait in the queue (`turn_waiter`) of `userId`'s conversations. */
const waiters = async (userId: string): Promise<number> =>
  (await db.query('select count(*)::int as n from turn_waiter where user_id = $1', [userId])).rows[0].n;

const messageRows = async (conversationId: string) =>
  (await db.query('select seq, role, status from message where conversation_id = $1 order by seq', [conversationId])).rows.map(
    (r) => `${r.seq}:${r.role}:${r.status}`,
  );

describe('while a turn runs', () => {
  it('its reply is stored in progress and each tool call is stored the moment it completes', async () => {
    const client = await server.client('live');
    const holding = agent.gate.held;
    const turn = send(client, 'hold water plants');
    await agent.gate.untilHeld(holding + 1);

    const reply = await db.query(`select m.id, m.seq, m.status from message m where m.user_id = 'live' and m.role = 'assistant'`);
    expect(reply.rows).toEqual([{ id: expect.any(String), seq: 2, status: 'in_progress' }]);
    // The call is written as it completes, beside the turn (not awaited by the agent): on a busy
    // machine the row may land a moment after the agent moved on — but while the turn still runs.
    const callRows = () => db.query('select message_id, name, arguments from tool_call where user_id = $1', ['live']);
    await until(async () => (await callRows()).rows.length > 0, 'the tool call row of the running turn');
    const calls = await callRows();
    expect(calls.rows).toEqual([{ message_id: reply.rows[0].id, name: 'add_task', arguments: { title: 'water plants' } }]);

    agent.gate.release();
    const done = await turn;
    expect(done.assistantMessage).toMatchObject({ id: reply.rows[0].id, status: 'COMPLETE', content: 'did water plants' });
    expect(done.toolCalls.map((c) => c.name)).toEqual(['add_task']);
  });
});

describe('a turn whose instance died', () => {
  it('is completed once by a retry with the same key, and the model is given the tool calls it already made', async () => {
    const client = await server.client('crashed');
    const { conversation } = await send(client, 'run first');
    // What an instance leaves behind when it dies after a tool call, before its reply.
    const userId = 'crashed';
    const { rows } = await db.query(
      `insert into message (id, conversation_id, user_id, seq, role, content, status, client_message_id, created_at)
       values (gen_random_uuid(), $1, $2, 3, 'user', 'run buy milk', 'complete', 'key-crash', now()),
              (gen_random_uuid(), $1, $2, 4, 'assistant', '', 'in_progress', null, now()) returning id, role`,
      [conversation.id, userId],
    );
    const replyId = rows.find((r) => r.role === 'assistant').id;
    await db.query(
      `insert into task (id, user_id, title, completed, created_at, updated_at) values (gen_random_uuid(), $1, 'buy milk', false, now(), now())`,
      [userId],
    );
    await db.query(
      `insert into tool_call (id, message_id, conversation_id, user_id, call_id, server, name, arguments, result, is_error, started_at, duration_ms)
       values (gen_random_uuid(), $1, $2, $3, 'call_before_crash', 'todo', 'add_task', '{"title":"buy milk"}', '{"status":"created","title":"buy milk"}', false, now(), 3)`,
      [replyId, conversation.id, userId],
    );
    await db.query(
      `update conversation set next_seq = 5, message_count = 4, turn_id = gen_random_uuid(), lease_expires_at = now() + interval '300 milliseconds' where id = $1`,
      [conversation.id],
    );

    // While the dead lease still runs, the retry is told to wait; once it expired, the retry runs.
    const early = await gqlError(client, SEND, {
      input: { conversationId: conversation.id, message: 'run buy milk', clientMessageId: 'key-crash' },
    });
    expect(early.code).toBe('CONVERSATION_BUSY');
    await until(
      async () =>
        (await db.query('select lease_expires_at < now() as expired from conversation where id = $1', [conversation.id])).rows[0].expired,
      'the dead lease to run out',
    );
    const seenBefore = agent.seen.length;
    const retry = await send(client, 'run buy milk', conversation.id, { clientMessageId: 'key-crash' });

    expect([retry.userMessage.seq, retry.assistantMessage.seq, retry.assistantMessage.id, retry.replayed]).toEqual([3, 4, replyId, false]);
    const context = at(agent.seen, seenBefore, 'the contexts the agent saw');
    expect(context.slice(-3)).toEqual([
      { role: 'user', content: 'run buy milk' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_before_crash', name: 'add_task', arguments: '{"title":"buy milk"}' }] },
      { role: 'tool', callId: 'call_before_crash', content: expect.any(String) },
    ]);
    expect(JSON.parse((context.at(-1) as { content: string }).content)).toEqual({ status: 'created', title: 'buy milk' });
    const tasks = await db.query('select title from task where user_id = $1', [userId]);
    expect(tasks.rows).toEqual([{ title: 'first' }, { title: 'buy milk' }]);
    expect(await messageRows(conversation.id)).toEqual([
      '1:user:complete',
      '2:assistant:complete',
      '3:user:complete',
      '4:assistant:complete',
    ]);

    const again = await send(client, 'run buy milk', conversation.id, { clientMessageId: 'key-crash' });
    expect([again.replayed, again.assistantMessage.id]).toEqual([true, replyId]);
  });
});

describe('ifBusy: ENQUEUE', () => {
  it('runs waiting messages after the running turn, in the order they arrived', async () => {
    const client = await server.client('queue');
    const { conversation } = await send(client, 'run first');
    const holding = agent.gate.held;
    const running = send(client, 'hold slow', conversation.id);
    await agent.gate.untilHeld(holding + 1);

    const queued: Promise<Awaited<ReturnType<typeof send>>>[] = [];
    for (const name of ['a', 'b', 'c', 'd']) {
      queued.push(send(client, `run ${name}`, conversation.id, { ifBusy: 'ENQUEUE' }));
      // Each one is in the queue before the next is sent.
      await until(async () => (await waiters('queue')) === queued.length, `${queued.length} waiter(s) in the queue`);
    }
    agent.gate.release();
    const [slow, ...rest] = await Promise.all([running, ...queued]);
    expect(defined(slow, 'the slow turn').assistantMessage.seq).toBe(4);
    expect(rest.map((turn) => [turn.userMessage.content, turn.userMessage.seq])).toEqual([
      ['run a', 5],
      ['run b', 7],
      ['run c', 9],
      ['run d', 11],
    ]);
    expect(await waiters('queue')).toBe(0);
  });

  it('makes a retry of a running turn wait for it, then replay it', async () => {
    const client = await server.client('queue-retry');
    const holding = agent.gate.held;
    const original = send(client, 'hold patience', undefined, { clientMessageId: 'retry-while-running' });
    await agent.gate.untilHeld(holding + 1);
    const retry = send(client, 'hold patience', undefined, { clientMessageId: 'retry-while-running', ifBusy: 'ENQUEUE' });
    await until(async () => (await waiters('queue-retry')) === 1, 'the retry waiting in the queue');
    agent.gate.release();
    const [first, second] = await Promise.all([original, retry]);
    expect([first.replayed, second.replayed]).toEqual([false, true]);
    expect(second.assistantMessage.id).toBe(first.assistantMessage.id);
    expect((await db.query(`select count(*)::int as n from task where user_id = 'queue-retry'`)).rows[0].n).toBe(1);
  });

  it('lets a plain REJECT message not jump the queue', async () => {
    const client = await server.client('queue-jump');
    const { conversation } = await send(client, 'run first');
    const holding = agent.gate.held;
    const running = send(client, 'hold slow', conversation.id);
    await agent.gate.untilHeld(holding + 1);
    const waiting = send(client, 'run patient', conversation.id, { ifBusy: 'ENQUEUE' });
    await until(async () => (await waiters('queue-jump')) === 1, 'the patient message waiting in the queue');

    agent.gate.release();
    await running;
    // The lease is free now, but the waiter arrived first: the plain message is told the
    // conversation is busy (the waiter is still queued or running), or it runs after the waiter.
    const jumper = await send(client, 'run impatient', conversation.id).catch((error: Error) => error);
    const patient = await waiting;
    expect(patient.userMessage.seq).toBe(5);
    const jumped =
      jumper instanceof Error
        ? jumper.message.includes('CONVERSATION_BUSY')
          ? 'busy'
          : jumper.message
        : `ran at seq ${jumper.userMessage.seq}`;
    expect(['busy', 'ran at seq 7']).toContain(jumped);
    expect(await messageRows(conversation.id)).toEqual(
      jumped === 'busy'
        ? ['1:user:complete', '2:assistant:complete', '3:user:complete', '4:assistant:complete', '5:user:complete', '6:assistant:complete']
        : [
            '1:user:complete',
            '2:assistant:complete',
            '3:user:complete',
            '4:assistant:complete',
            '5:user:complete',
            '6:assistant:complete',
            '7:user:complete',
            '8:assistant:complete',
          ],
    );
  });
});

describe('one clientMessageId sent many times at once', () => {
  it('makes one conversation and one turn; every other send replays it or is told the turn is running', async () => {
    const client = await server.client('burst');
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, () => send(client, 'run once only', undefined, { clientMessageId: 'burst-key' })),
    );
    const ok = results
      .filter((r) => r.status === 'fulfilled')
      .map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof send>>>).value);
    const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    expect(ok.filter((t) => !t.replayed)).toHaveLength(1);
    expect(failed.filter((reason) => !reason.includes('CONVERSATION_BUSY'))).toEqual([]);
    expect(new Set(ok.map((t) => t.conversation.id)).size).toBe(1);
    expect((await db.query(`select count(*)::int as n from conversation where user_id = 'burst'`)).rows[0].n).toBe(1);
    expect((await db.query(`select count(*)::int as n from task where user_id = 'burst'`)).rows[0].n).toBe(1);
    expect((await db.query(`select count(*)::int as n from message where user_id = 'burst'`)).rows[0].n).toBe(2);
  });
});

describe('transient database errors', () => {
  it.each([
    ['a serialization failure', Object.assign(new Error('could not serialize access'), { code: '40001' }), true],
    ['a deadlock', Object.assign(new Error('deadlock detected'), { code: '40P01' }), true],
    ['the server restarting', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), true],
    ['a lost connection', new Error('Connection terminated unexpectedly'), true],
    ['a unique violation', Object.assign(new Error('duplicate key value'), { code: '23505' }), false],
    ['a syntax error', Object.assign(new Error('syntax error at or near'), { code: '42601' }), false],
  ])('%s → retried: %s', (_name, error, transient) => {
    expect(isTransient(error)).toBe(transient);
  });
});

describe('shutdown', () => {
  it("frees the conversation of a turn it cuts short and marks that turn's reply failed", async () => {
    const own = new ScriptedAgent();
    const doomed = await startTestServer({ agent: own });
    const watcher = new pg.Client({ connectionString: doomed.database.url });
    await watcher.connect();
    try {
      const client = await doomed.client('shutdown');
      const turn = send(client, 'hold forever').catch((error: Error) => error);
      await own.gate.untilHeld(1);
      await doomed.app.close();
      const conversation = await watcher.query(`select turn_id, lease_expires_at from conversation where user_id = 'shutdown'`);
      expect(conversation.rows).toEqual([{ turn_id: null, lease_expires_at: null }]);
      const reply = await watcher.query(`select status from message where user_id = 'shutdown' and role = 'assistant'`);
      expect(reply.rows).toEqual([{ status: 'failed' }]);
      own.gate.release();
      await turn;
    } finally {
      await watcher.end();
      // The app is closed already; this closes the HTTP server and drops the database.
      await doomed.close().catch(() => doomed.database.drop());
    }
  });
});
