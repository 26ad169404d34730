/**
 * Fault run g: a rolling restart under load. Three instances behind a round-robin proxy that
 * health-checks `/readyz` every 200 ms and sends a request again elsewhere only when its connection
 * was refused (`support/balancer.ts`, what a real load balancer does). Under a steady load of turns
 * (16 clients, each its own user and conversation, a message after another with a clientMessageId,
 * sent again with the same key after a network error) and browses (4 clients reading
 * `conversations`), the instances are restarted one by one: SIGTERM, wait for the exit, start again
 * on the same port, wait until the proxy sees it ready, then the next. The drain window is the
 * production default.
 *
 * Then: no request failed (every turn answered with its payload, a replay counting as one; every
 * browse answered 200 without errors), and the database holds each clientMessageId's message
 * once, each followed by its complete reply (none lost, none twice).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { at } from '../test/support/defined.js';
import { type Balancer, startBalancer } from './support/balancer.js';
import { countBy, type Outcome, outcomeText, sendMessage, type Target, tokenFor } from './support/client.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { audit, orderViolations, printTable, type Sent } from './support/tally.js';

/** DRAIN_WINDOW as production has it by default. */
const DRAIN_WINDOW_MS = loadConfig({ NODE_ENV: 'production' }).drainWindowMs;
const HEALTH_EVERY_MS = 200;
const TURN_CLIENTS = 16;
const BROWSE_CLIENTS = 4;
const MODEL_MS = 200;
const BROWSE_PAUSE_MS = 50;
/** Load before the first restart and after the last. */
const STEADY_MS = 3_000;
/** The load stops after this, restarts done or not. */
const LOAD_MAX_MS = 60_000;
/** A message under way when the load stops keeps retrying until then (after a failure only). */
const RETRY_DEADLINE_MS = 90_000;
const RETRY_PAUSE_MS = 250;
const ATTEMPT_TIMEOUT_MS = 30_000;
const UP_WITHIN_MS = 30_000;

const BROWSE = /* GraphQL */ `
  query Browse {
    conversations(first: 10) { edges { node { id title messageCount lastMessage { seq content } } } pageInfo { hasNextPage } }
  }
`;

let cluster: Cluster;
let proxy: Balancer;

beforeAll(async () => {
  cluster = await startCluster({ DRAIN_WINDOW: String(DRAIN_WINDOW_MS) });
  proxy = await startBalancer(
    cluster.instances.map((instance) => instance.origin),
    { healthEveryMs: HEALTH_EVERY_MS },
  );
  await Promise.all(cluster.instances.map((instance) => proxy.until(instance.index, true, UP_WITHIN_MS)));
});

afterAll(async () => {
  await proxy?.close();
  await cluster?.close();
});

/** One browse through the proxy: null when answered 200 with data and no errors, else why not. */
async function browse(url: string, token: string): Promise<string | null> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: BROWSE }),
      signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
    });
    const text = await response.text();
    if (response.status !== 200) return `HTTP ${response.status}: ${text.slice(0, 120)}`;
    const body = JSON.parse(text) as { data?: { conversations?: unknown }; errors?: { message: string }[] };
    if (body.errors?.length) return `errors: ${body.errors.map((error) => error.message).join('; ')}`;
    return body.data?.conversations ? null : 'no data';
  } catch (error) {
    return `no answer: ${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name}`;
  }
}

describe('g. rolling restart of three instances behind a load balancer', () => {
  it('fails no request, and loses or duplicates no turn, while each instance in turn is stopped with SIGTERM and started again', async () => {
    const target: Target = { index: -1, url: `${proxy.origin}/graphql` };
    const turnUsers = Array.from({ length: TURN_CLIENTS }, (_, client) => `g-${client}`);
    const sent: Sent[] = [];
    const browses: (string | null)[] = [];
    const started = Date.now();
    let stopping = false;
    const stopAt = setTimeout(() => {
      stopping = true;
    }, LOAD_MAX_MS);

    const turns = Promise.all(
      turnUsers.map(async (user, client) => {
        const token = await tokenFor(user);
        let conversationId: string | undefined;
        for (let m = 0; !stopping; m++) {
          const record: Sent = { key: `g-${client}-${m}`, message: `g: client ${client} message ${m} #delay:${MODEL_MS}`, outcomes: [] };
          sent.push(record);
          while (Date.now() - started < RETRY_DEADLINE_MS) {
            const input = { message: record.message, clientMessageId: record.key, ...(conversationId ? { conversationId } : {}) };
            const outcome: Outcome = await sendMessage(target, token, input, ATTEMPT_TIMEOUT_MS);
            record.outcomes.push(outcome);
            if (outcome.kind === 'ack') {
              conversationId = outcome.payload.conversation.id;
              break;
            }
            await sleep(RETRY_PAUSE_MS);
          }
        }
      }),
    );
    const browsing = Promise.all(
      Array.from({ length: BROWSE_CLIENTS }, async (_, client) => {
        // Browses read the conversations of a turn client: pages that change under the reader.
        const token = await tokenFor(at(turnUsers, client, 'the turn users'));
        while (!stopping) {
          browses.push(await browse(target.url, token));
          await sleep(BROWSE_PAUSE_MS);
        }
      }),
    );

    // Steady load, then each instance in turn: SIGTERM, its exit, a new process on its port, ready again.
    const restarts: string[] = [];
    await sleep(STEADY_MS);
    for (const index of [0, 1, 2]) {
      const signalled = Date.now();
      const leaving = proxy.until(index, false, UP_WITHIN_MS);
      const { exit, exitedMs, startedMs } = await cluster.restart(index);
      const outMs = await leaving;
      await proxy.until(index, true, UP_WITHIN_MS);
      const backMs = Date.now() - signalled;
      expect(exit, `instance ${index} exits 0 after SIGTERM`).toEqual({ code: 0, signal: null });
      const out = proxy.transitions.find((t) => t.backend === index && !t.up && t.at >= signalled);
      expect(out?.why, `instance ${index} left the rotation by its readyz answer`).toBe('readyz 503');
      restarts.push(
        `instance ${index}: out of the proxy's rotation ${outMs} ms after SIGTERM, exited after ${exitedMs} ms, listening again after ${startedMs} ms, back in rotation after ${backMs} ms`,
      );
    }
    await sleep(STEADY_MS);
    stopping = true;
    clearTimeout(stopAt);
    await Promise.all([turns, browsing]);
    const loadMs = Date.now() - started;

    const result = await audit(cluster, turnUsers, sent);
    const outcomes = sent.flatMap((record) => record.outcomes);
    const failedTurns = outcomes.filter((outcome) => outcome.kind !== 'ack');
    const failedBrowses = browses.filter((why) => why !== null);
    const conversations = [...result.conversations.values()];
    const violations = conversations.flatMap((messages) => orderViolations(messages));
    const rows = conversations.flat();
    const byKey = Map.groupBy(
      rows.filter((row) => row.role === 'user'),
      (row) => row.client_message_id,
    );
    const bySeat = new Map(rows.map((row) => [`${row.conversation_id} ${row.seq}`, row]));
    const incomplete = sent.filter((record) => {
      const mine = byKey.get(record.key) ?? [];
      const reply = mine[0] && bySeat.get(`${mine[0].conversation_id} ${mine[0].seq + 1}`);
      return mine.length !== 1 || reply?.role !== 'assistant' || reply.status !== 'complete';
    });
    const requests = outcomes.length + browses.length;

    printTable(
      `scenario g: rolling restart (SIGTERM, exit, start on the same port; DRAIN_WINDOW ${DRAIN_WINDOW_MS} ms) of three instances behind a round-robin proxy checking /readyz every ${HEALTH_EVERY_MS} ms, under ${TURN_CLIENTS} turn clients and ${BROWSE_CLIENTS} browsing clients`,
      result.table,
      [
        `requests through the proxy: ${requests} in ${loadMs} ms (${outcomes.length} turns, ${browses.length} browses); failed: ${failedTurns.length + failedBrowses.length} (turns ${failedTurns.length}, browses ${failedBrowses.length}); replayed: ${outcomes.filter((o) => o.kind === 'ack' && o.payload.replayed).length}`,
        `messages: ${sent.length} keys, stored once with a complete reply: ${sent.length - incomplete.length}; lost ${result.table.lost}, duplicated ${result.table.duplicated}`,
        `forwarded per instance: ${proxy.forwarded.join(', ')}; sent again after a refused connection: ${proxy.retriedAfterRefusal}; answered by the proxy itself: ${proxy.proxyErrors.length}`,
        ...restarts,
        `health transitions: ${proxy.transitions.map((t) => `${t.backend} ${t.up ? 'up' : 'down'} (${t.why}) at +${t.at - started} ms`).join('; ')}`,
        ...failedTurns.slice(0, 5).map((o) => `failed turn: ${outcomeText(o)}`),
        ...[...new Set(failedBrowses)].slice(0, 5).map((why) => `failed browse: ${why}`),
        ...proxy.proxyErrors.slice(0, 5).map((e) => `proxy answered ${e.status}: ${e.reason}`),
        ...incomplete.slice(0, 5).map((record) => `not stored once with a complete reply: ${record.key}`),
        ...result.lostDetails.map((line) => `lost: ${line}`),
        ...result.duplicateDetails.map((line) => `duplicated: ${line}`),
        ...violations.slice(0, 5).map((line) => `order: ${line}`),
        ...cluster.instances.flatMap((instance) => instance.problems().map((line) => `instance ${instance.index}: ${line}`)).slice(0, 10),
      ],
    );

    expect(loadMs, 'the load is bounded').toBeLessThan(LOAD_MAX_MS + RETRY_DEADLINE_MS);
    expect(
      countBy(failedTurns, (o) => outcomeText(o)),
      'failed turn requests',
    ).toEqual({});
    expect(
      countBy(failedBrowses, (why) => why ?? ''),
      'failed browses',
    ).toEqual({});
    expect(proxy.proxyErrors, 'requests the proxy answered itself').toEqual([]);
    expect(result.table.lost, 'lost').toBe(0);
    expect(result.table.duplicated, 'duplicated').toBe(0);
    expect(
      incomplete.map((record) => record.key),
      'keys not stored once with a complete reply',
    ).toEqual([]);
    expect(violations).toEqual([]);
    expect(result.table.stored).toBe(sent.length);
  });
});
