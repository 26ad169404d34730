/**
 * Fault run b: 20 clients × 25 messages into one conversation with `ifBusy: ENQUEUE`, each client
 * sending its messages one after another, all clients at once, every message to the next of the
 * three instances. Afterwards the conversation reads 1..N without a gap, every user message
 * directly followed by its own reply, each client's messages in the order it sent them, and the
 * waiting requests served in the order they arrived (issue 4, part 2).
 *
 * Arrival order is judged without guessing how long a request took to reach the server: a pair
 * counts as served out of order when one had certainly reached its instance before the other was
 * even sent (its response headers came back, less the time the server held it, `Server-Timing`,
 * before the other's send) yet got the later seq. A busy machine slows requests down; it cannot
 * make such a pair. Pairs sent more than ORDER_SLACK_MS apart but served the other way round
 * are reported too, for the record (on a loaded machine the way to the server can be that long).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at, first } from '../test/support/defined.js';
import { countBy, type Outcome, outcomeText, sendMessage, startConversation, tokenFor } from './support/client.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { audit, orderViolations, printTable, type Sent } from './support/tally.js';

const CLIENTS = 20;
const MESSAGES = 25;
const MODEL_MS = 20;
const ORDER_SLACK_MS = 250;
const USER = 'b';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ ENQUEUE_TIMEOUT: '120000', TURN_LEASE: '10000' });
});

afterAll(async () => {
  await cluster?.close();
});

describe('b. 20 clients × 25 messages into one conversation with ifBusy: ENQUEUE', () => {
  it('stores seq 1..N gapless, each user message followed by its reply, each client in its order, waiters in arrival order', async () => {
    const token = await tokenFor(USER);
    const conversationId = await startConversation(at(cluster.instances, 0, 'the instances'), token, {
      message: 'b: hello',
      clientMessageId: 'b-setup',
    });

    const sent: Sent[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        for (let m = 0; m < MESSAGES; m++) {
          const message = `b: client ${client} message ${m} #delay:${MODEL_MS}`;
          const record: Sent = { key: `b-${client}-${m}`, message, outcomes: [] };
          sent.push(record);
          const instance = at(cluster.instances, (client + m) % 3, 'the instances');
          record.outcomes.push(
            await sendMessage(instance, token, { conversationId, message, clientMessageId: record.key, ifBusy: 'ENQUEUE' }, 150_000),
          );
        }
      }),
    );
    const elapsed = Date.now() - started;

    const result = await audit(cluster, [USER], sent);
    const messages = result.conversations.get(conversationId) ?? [];
    const order = orderViolations(messages);
    const seqOf = new Map(messages.filter((row) => row.role === 'user').map((row) => [row.client_message_id, row.seq]));

    // Each client's messages must have growing seqs in the order it sent them.
    const clientOrder: string[] = [];
    for (let client = 0; client < CLIENTS; client++) {
      const seqs = Array.from({ length: MESSAGES }, (_, m) => seqOf.get(`b-${client}-${m}`)).filter((seq) => seq !== undefined);
      if (seqs.some((seq, i) => i > 0 && seq <= at(seqs, i - 1, `the seqs of client ${client}`)))
        clientOrder.push(`client ${client}: seqs ${seqs.join(',')}`);
    }

    // Pairs served against their arrival order (by more than the slack).
    const acked = sent
      .map((record) => ({ record, outcome: first(record.outcomes, `the outcomes of ${record.key}`) }))
      .filter((entry): entry is { record: Sent; outcome: Extract<Outcome, { kind: 'ack' }> } => entry.outcome.kind === 'ack');
    let inversions = 0;
    let worstInversionMs = 0;
    let sentApart = 0;
    // Pairs whose arrival order is certain: what the check rests on (a handful would prove little).
    let ordered = 0;
    for (const x of acked) {
      for (const y of acked) {
        if (x !== y && y.outcome.sentAt > (x.outcome.arrivedBy ?? Number.POSITIVE_INFINITY)) ordered++;
        if (x.outcome.payload.userMessage.seq < y.outcome.payload.userMessage.seq) continue;
        // x was served after y: was x there first?
        const certainlyFirstBy = y.outcome.sentAt - (x.outcome.arrivedBy ?? Number.POSITIVE_INFINITY);
        if (certainlyFirstBy > 0) {
          inversions++;
          worstInversionMs = Math.max(worstInversionMs, certainlyFirstBy);
        }
        if (y.outcome.sentAt - x.outcome.sentAt > ORDER_SLACK_MS) sentApart++;
      }
    }
    const waits = acked.map((entry) => entry.outcome.ms).sort((a, b) => a - b);
    const outcomes = sent.flatMap((record) => record.outcomes);

    printTable(
      `scenario b: ${CLIENTS} clients × ${MESSAGES} messages, one conversation, ifBusy ENQUEUE, model ${MODEL_MS} ms`,
      result.table,
      [
        `answers: ${JSON.stringify(countBy(outcomes, (o) => (o.kind === 'error' ? o.code : o.kind)))}; ${elapsed} ms in all`,
        `messages in the conversation: ${messages.length} (expected ${2 + 2 * CLIENTS * MESSAGES}); order violations: ${order.length}; clients out of their own order: ${clientOrder.length}`,
        `pairs whose arrival order is certain: ${ordered}; of them served against it: ${inversions}${inversions ? `, the worst there ${worstInversionMs} ms before the other was sent` : ''}; served the other way round though sent > ${ORDER_SLACK_MS} ms apart: ${sentApart}`,
        `request time (ms): median ${waits[Math.floor(waits.length / 2)] ?? '-'}, p99 ${waits[Math.floor(waits.length * 0.99)] ?? '-'}, max ${waits.at(-1) ?? '-'}`,
        ...outcomes
          .filter((o) => o.kind !== 'ack')
          .slice(0, 5)
          .map((o) => `not acknowledged (instance ${o.instance}): ${outcomeText(o)}`),
        ...order.slice(0, 10).map((line) => `order: ${line}`),
        ...clientOrder.slice(0, 5).map((line) => `client order: ${line}`),
        ...result.lostDetails.slice(0, 10).map((line) => `lost: ${line}`),
        ...result.duplicateDetails.slice(0, 10).map((line) => `duplicated: ${line}`),
      ],
    );

    expect(result.table.lost, 'lost').toBe(0);
    expect(result.table.duplicated, 'duplicated').toBe(0);
    expect(result.table.acknowledged, 'every ENQUEUE send is acknowledged').toBe(CLIENTS * MESSAGES);
    expect(order, 'seq 1..N gapless, each user message directly followed by its reply').toEqual([]);
    expect(messages.length).toBe(2 + 2 * CLIENTS * MESSAGES);
    expect(clientOrder, "each client's messages in its order").toEqual([]);
    expect(ordered, 'pairs whose arrival order is certain').toBeGreaterThan(1_000);
    expect(inversions, 'pairs served against arrival order (one had reached the server before the other was sent)').toBe(0);
  }, 300_000);
});
