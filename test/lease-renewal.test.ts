/**
 * The renewal of a running turn's lease when the instance stalls (`keepLease` in
 * `src/chat/lease.ts`): a renewal delayed past half the lease by a blocked event loop is counted
 * (`missedRenewals()`) with the timer's drift, and the turn keeps its conversation; a renewal that
 * finds the lease taken over counts it (`lostLeases()`) and stops renewing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineAgent } from '../src/agent/offline.js';
import type { Agent, AgentInput } from '../src/agent/types.js';
import { leaseHealth, lostLeases, missedRenewals } from '../src/chat/lease-health.js';
import { Gate } from './support/gate.js';
import { send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';
import { sleep, until } from './support/wait.js';

/** TURN_LEASE here: renewed every 200 ms, late past 300 ms. */
const LEASE_MS = 600;

/**
 * The offline agent, but a message with `stall:<ms>` blocks the event loop that long (a long
 * synchronous task: nothing else of the process runs meanwhile), and one with `hold` waits at the gate.
 */
class StallingAgent implements Agent {
  readonly name = 'stalling';
  readonly gate = new Gate();
  private readonly inner = new OfflineAgent();

  async run(input: AgentInput) {
    const last = input.messages.at(-1);
    const text = last?.role === 'user' ? last.content : '';
    const stall = /stall:(\d+)/.exec(text)?.[1];
    if (stall) {
      const until = Date.now() + Number(stall);
      while (Date.now() < until) {
        // Busy on purpose: the stall is the point.
      }
    }
    if (text.includes('hold')) await this.gate.hold();
    return this.inner.run(input);
  }
}

let server: TestServer;
const agent = new StallingAgent();

beforeAll(async () => {
  server = await startTestServer({ agent, env: { TURN_LEASE: String(LEASE_MS) } });
});

afterAll(async () => {
  agent.gate.release();
  await server?.close();
});

describe('the renewal of a turn lease', () => {
  it('counts a renewal that a stalled event loop delays past half the lease, with its drift, and the turn keeps its conversation', async () => {
    const client = await server.client('stalled-loop');
    const { conversation } = await send(client, 'hello');
    const missedBefore = missedRenewals();

    // The loop blocked 450 ms: the renewal due 200 ms after the lease was taken runs about 250 ms late.
    const turn = await send(client, 'hello again stall:450', conversation.id);

    expect(turn.assistantMessage.status).toBe('COMPLETE');
    expect(missedRenewals() - missedBefore, 'late renewals counted').toBeGreaterThanOrEqual(1);
    expect(leaseHealth().maxDriftMs, 'the worst drift of the renewal timer').toBeGreaterThanOrEqual(150);
    expect(lostLeases(), 'the lease was kept').toBe(0);
    const row = await server.db.query('select turn_id from conversation where id = $1', [conversation.id]);
    expect(row.rows[0].turn_id, 'the conversation is free after the turn').toBeNull();
  });

  it('counts a lease found lost once another turn took the conversation over, and stops renewing it', async () => {
    const client = await server.client('taken-over');
    const { conversation } = await send(client, 'hello');
    const held = agent.gate.held;
    const slow = send(client, 'hello hold', conversation.id);
    await agent.gate.untilHeld(held + 1);
    // What another instance does once this one stopped renewing and the lease ran out: its own turn takes it.
    const other = await server.db.query<{ turn_id: string }>(
      `update conversation set turn_id = gen_random_uuid(), lease_expires_at = now() + interval '1 minute' where id = $1 returning turn_id`,
      [conversation.id],
    );

    await until(() => lostLeases() >= 1, 'the renewal of the held turn to find its lease lost');
    // Three renewal periods more: the lost turn renews nothing, the other turn's lease is untouched.
    await sleep(3 * (LEASE_MS / 3));
    expect(lostLeases(), 'counted once: renewing stopped').toBe(1);
    const after = await server.db.query('select turn_id from conversation where id = $1', [conversation.id]);
    expect(after.rows[0].turn_id).toBe(other.rows[0]?.turn_id);

    agent.gate.release();
    expect((await slow).assistantMessage.seq, 'the late turn still lands in its own slot').toBe(4);
  });
});
