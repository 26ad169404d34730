/**
 * Fault run a: one clientMessageId, sent 50 times at once across three instances while its turn
 * is slow, then 50 times more once it has finished. Exactly one turn runs (one model call); every
 * other request is answered with that turn's payload (`replayed: true`) or, while it runs, with
 * CONVERSATION_BUSY. Once in a conversation that exists, once as the first message of a new one
 * (no conversationId): a retried first message must never make a second conversation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at } from '../test/support/defined.js';
import { countBy, type Outcome, outcomeText, type SendInput, sendMessage, startConversation, tokenFor } from './support/client.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { audit, printTable } from './support/tally.js';

const WAVE = 50;
const SLOW_MS = 2_500;

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ TURN_LEASE: '10000' });
});

afterAll(async () => {
  await cluster?.close();
});

/** Sends `input` WAVE times at once, round robin over the instances. */
async function wave(token: string, input: SendInput): Promise<Outcome[]> {
  return Promise.all(Array.from({ length: WAVE }, (_, i) => sendMessage(at(cluster.instances, i % 3, 'the instances'), token, input)));
}

async function run(label: string, user: string, conversationId: string | undefined) {
  const token = await tokenFor(user);
  const message = `${label}: one key, many sends #delay:${SLOW_MS}`;
  const key = `${label}-key`;
  const input: SendInput = { message, clientMessageId: key, ...(conversationId ? { conversationId } : {}) };

  const first = await wave(token, input);
  const second = await wave(token, input);
  const outcomes = [...first, ...second];
  const result = await audit(cluster, [user], [{ key, message, outcomes }]);

  const originals = outcomes.filter((o) => o.kind === 'ack' && !o.payload.replayed);
  const replays = outcomes.filter((o) => o.kind === 'ack' && o.payload.replayed);
  const busy = outcomes.filter((o) => o.kind === 'error' && o.code === 'CONVERSATION_BUSY');
  const others = outcomes.filter((o) => !(o.kind === 'ack' || (o.kind === 'error' && o.code === 'CONVERSATION_BUSY')));
  const secondNotReplayed = second.filter((o) => !(o.kind === 'ack' && o.payload.replayed));
  const modelCalls = cluster.model.requestsFor(message).length;
  const conversations = await cluster.sql<{ n: number }>('select count(*)::int as n from conversation where user_id = $1', [user]);
  const expectedConversations = 1;

  printTable(
    `scenario ${label}: ${WAVE} concurrent sends of one clientMessageId ${conversationId ? 'in an existing conversation' : 'as the first message (no conversationId)'}, then ${WAVE} more`,
    result.table,
    [
      `model calls for the message: ${modelCalls} (expected 1); turns run (replayed: false): ${originals.length} (expected 1)`,
      `first wave: ${JSON.stringify(countBy(first, kindOf))}; second wave: ${JSON.stringify(countBy(second, kindOf))}`,
      `conversations of the user: ${at(conversations, 0, 'the count of conversations').n} (expected ${expectedConversations})`,
      ...others.slice(0, 5).map((o) => `unexpected answer from instance ${o.instance}: ${outcomeText(o)}`),
      ...result.lostDetails.map((line) => `lost: ${line}`),
      ...result.duplicateDetails.map((line) => `duplicated: ${line}`),
    ],
  );

  expect(result.table.lost, 'lost').toBe(0);
  expect(result.table.duplicated, 'duplicated').toBe(0);
  expect(modelCalls, 'model calls for the one key').toBe(1);
  expect(originals.length, 'requests that ran the turn').toBe(1);
  expect(others.map(outcomeText), 'every other request is a replay or CONVERSATION_BUSY').toEqual([]);
  expect(
    busy.every((o) => o.kind === 'error' && typeof o.extensions.retryAfterMs === 'number'),
    'CONVERSATION_BUSY carries retryAfterMs',
  ).toBe(true);
  expect(secondNotReplayed.map(outcomeText), 'after the turn finished, every send is a replay').toEqual([]);
  expect(replays.length + busy.length + originals.length).toBe(2 * WAVE);
  expect(at(conversations, 0, 'the count of conversations').n, 'conversations of the user').toBe(expectedConversations);
  expect(result.table.stored).toBe(1);
}

const kindOf = (o: Outcome) => (o.kind === 'ack' ? (o.payload.replayed ? 'replayed' : 'ran') : o.kind === 'error' ? o.code : 'unknown');

describe('a. one clientMessageId, 50 + 50 sends over three instances', () => {
  it('a1: in an existing conversation, one turn and one model call; the rest replayed or CONVERSATION_BUSY', async () => {
    const token = await tokenFor('a1');
    await run('a1', 'a1', await startConversation(at(cluster.instances, 0, 'the instances'), token, { message: 'a1: hello' }));
  });

  it('a2: as the first message of a conversation, one conversation, one turn and one model call', async () => {
    await run('a2', 'a2', undefined);
  });
});
