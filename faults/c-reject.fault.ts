/**
 * Fault run c: `ifBusy: REJECT` (the default). While a slow turn runs, a second message reaches
 * each of the three instances: each answers CONVERSATION_BUSY with `retryAfterMs`, nothing of it
 * is stored (no message, no seq, no model call), and its key stays free: once the slow turn is
 * done, the same message with the same key runs as a new turn at the next seq.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at, first } from '../test/support/defined.js';
import { outcomeText, sendMessage, startConversation, tokenFor } from './support/client.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { replyTo } from './support/model.js';
import { audit, orderViolations, printTable, type Sent } from './support/tally.js';

const SLOW_MS = 3_000;
const TURN_LEASE_MS = 10_000;
const USER = 'c';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ TURN_LEASE: String(TURN_LEASE_MS) });
});

afterAll(async () => {
  await cluster?.close();
});

describe('c. REJECT: a second message during a slow turn', () => {
  it('answers CONVERSATION_BUSY with retryAfterMs on every instance and stores nothing for it', async () => {
    const token = await tokenFor(USER);
    const conversationId = await startConversation(at(cluster.instances, 0, 'the instances'), token, {
      message: 'c: hello',
      clientMessageId: 'c-setup',
    });

    const slow: Sent = { key: 'c-slow', message: `c: a slow turn #delay:${SLOW_MS}`, outcomes: [] };
    const slowDone = sendMessage(at(cluster.instances, 0, 'the instances'), token, {
      conversationId,
      message: slow.message,
      clientMessageId: slow.key,
    }).then((o) => {
      slow.outcomes.push(o);
    });
    // The slow turn holds the conversation once its model call has begun.
    await cluster.model.waitFor((request) => request.message === slow.message, 10_000);

    const conversationRow = () =>
      cluster.sql<{ next_seq: number; message_count: number; max_seq: number }>(
        'select next_seq, message_count, (select max(seq) from message where conversation_id = $1) as max_seq from conversation where id = $1',
        [conversationId],
      );
    const [before] = await conversationRow();

    const second: Sent = { key: 'c-second', message: 'c: the second message', outcomes: [] };
    for (const instance of cluster.instances) {
      second.outcomes.push(
        await sendMessage(instance, token, { conversationId, message: second.message, clientMessageId: second.key, ifBusy: 'REJECT' }),
      );
    }
    const rejectedWhileRunning = slow.outcomes.length === 0;
    const rowsWhileRunning = await cluster.sql<{ n: number }>(
      'select count(*)::int as n from message where conversation_id = $1 and (client_message_id = $2 or content = $3)',
      [conversationId, second.key, second.message],
    );
    const [whileRunning] = await conversationRow();
    await slowDone;

    // The key was not taken: the same message now runs as a new turn.
    second.outcomes.push(
      await sendMessage(at(cluster.instances, 1, 'the instances'), token, {
        conversationId,
        message: second.message,
        clientMessageId: second.key,
      }),
    );

    const result = await audit(cluster, [USER], [slow, second]);
    const messages = result.conversations.get(conversationId) ?? [];
    const rejected = second.outcomes.slice(0, 3);
    const retryAfter = rejected.map((o) => (o.kind === 'error' ? o.extensions.retryAfterMs : undefined));
    const after = at(second.outcomes, 3, 'the outcomes of the second message');

    printTable('scenario c: REJECT, a second message to each instance during a slow turn, then again after it', result.table, [
      `while the slow turn ran: ${rejected.map((o) => `instance ${o.instance}: ${outcomeText(o)}`).join('; ')}`,
      `retryAfterMs: ${JSON.stringify(retryAfter)}; rejected before the slow turn ended: ${rejectedWhileRunning}`,
      `rows of the second message while rejected: ${first(rowsWhileRunning, 'the rows of the second message').n}; conversation before: ${JSON.stringify(before)}, after: ${JSON.stringify(whileRunning)}`,
      `model calls for the second message: ${cluster.model.requestsFor(second.message).length} (expected 1, after the slow turn)`,
      `after the slow turn: ${outcomeText(after)}; conversation: ${messages.map((row) => `${row.seq}:${row.role}/${row.status}`).join(' ')}`,
      ...result.lostDetails.map((line) => `lost: ${line}`),
      ...result.duplicateDetails.map((line) => `duplicated: ${line}`),
    ]);

    expect(result.table.lost, 'lost').toBe(0);
    expect(result.table.duplicated, 'duplicated').toBe(0);
    expect(rejectedWhileRunning, 'the rejections came while the slow turn ran').toBe(true);
    expect(rejected.map((o) => (o.kind === 'error' ? o.code : outcomeText(o)))).toEqual([
      'CONVERSATION_BUSY',
      'CONVERSATION_BUSY',
      'CONVERSATION_BUSY',
    ]);
    for (const ms of retryAfter) {
      expect(ms, 'retryAfterMs').toBeTypeOf('number');
      expect(ms as number).toBeGreaterThan(0);
      expect(ms as number).toBeLessThanOrEqual(TURN_LEASE_MS);
    }
    expect(first(rowsWhileRunning, 'the rows of the second message').n, 'nothing stored for a rejected message').toBe(0);
    expect(whileRunning, 'a rejected message takes no seq and changes no counter').toEqual(before);
    expect(slow.outcomes[0]?.kind, outcomeText(first(slow.outcomes, 'the outcomes of the slow message'))).toBe('ack');
    expect(after.kind === 'ack' && !after.payload.replayed && after.payload.userMessage.seq === 5, outcomeText(after)).toBe(true);
    expect(orderViolations(messages)).toEqual([]);
    expect(messages.map((row) => row.content)).toEqual([
      'c: hello',
      replyTo('c: hello'),
      slow.message,
      replyTo(slow.message),
      second.message,
      replyTo(second.message),
    ]);
  });
});
