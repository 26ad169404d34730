/**
 * Fault run f: no transaction stays open while the model thinks. 100 turns with a slow model
 * (300 ms a call), 10 conversations at once over the three instances, while a separate
 * connection samples `pg_stat_activity` every 100 ms: no session of the application database
 * may sit `idle in transaction` for more than 1 s. The longest open transaction seen is reported
 * too (a transaction open across a model call would last at least the model's 300 ms).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at } from '../test/support/defined.js';
import { countBy, outcomeText, sendMessage, tokenFor } from './support/client.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { audit, orderViolations, printTable, type Sent } from './support/tally.js';

const CONVERSATIONS = 10;
const TURNS_EACH = 10;
const MODEL_MS = 300;
const SAMPLE_EVERY_MS = 100;
const IDLE_IN_TRANSACTION_LIMIT_MS = 1_000;
const USER = 'f';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ TURN_LEASE: '10000' });
});

afterAll(async () => {
  await cluster?.close();
});

// `state` is null for a session still starting (and where activity is not tracked).
type Sample = { pid: number; state: string | null; state_ms: number; xact_ms: number | null; query: string };

describe('f. idle in transaction while the model is slow', () => {
  it('no session stays idle in transaction for more than 1 s during 100 slow turns', async () => {
    const sampler = new pg.Client({ connectionString: cluster.databaseUrl });
    sampler.on('error', () => {});
    await sampler.connect();
    let sampling = true;
    let samples = 0;
    const sessions = new Set<number>();
    let worstIdle: Sample | undefined;
    let worstTransaction: Sample | undefined;
    const sampled = (async () => {
      while (sampling) {
        const { rows } = await sampler.query<Sample>(
          `select pid, state,
                  (extract(epoch from clock_timestamp() - state_change) * 1000)::float8 as state_ms,
                  (extract(epoch from clock_timestamp() - xact_start) * 1000)::float8 as xact_ms,
                  left(query, 160) as query
             from pg_stat_activity
            where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`,
        );
        samples++;
        for (const row of rows) {
          sessions.add(row.pid);
          if (row.state?.startsWith('idle in transaction') && row.state_ms > (worstIdle?.state_ms ?? -1)) worstIdle = row;
          if (row.xact_ms !== null && row.xact_ms > (worstTransaction?.xact_ms ?? -1)) worstTransaction = row;
        }
        await sleep(SAMPLE_EVERY_MS);
      }
    })();

    const token = await tokenFor(USER);
    const sent: Sent[] = [];
    const started = Date.now();
    try {
      await Promise.all(
        Array.from({ length: CONVERSATIONS }, async (_, c) => {
          let conversationId: string | undefined;
          for (let t = 0; t < TURNS_EACH; t++) {
            const record: Sent = { key: `f-${c}-${t}`, message: `f: conversation ${c} turn ${t} #delay:${MODEL_MS}`, outcomes: [] };
            sent.push(record);
            const outcome = await sendMessage(at(cluster.instances, (c + t) % 3, 'the instances'), token, {
              message: record.message,
              clientMessageId: record.key,
              ...(conversationId ? { conversationId } : {}),
            });
            record.outcomes.push(outcome);
            if (outcome.kind === 'ack') conversationId ??= outcome.payload.conversation.id;
            else if (!conversationId) return; // without its first turn the conversation has nowhere to go
          }
        }),
      );
    } finally {
      sampling = false;
      await sampled.catch(() => {});
      await sampler.end().catch(() => {});
    }
    const elapsed = Date.now() - started;

    const result = await audit(cluster, [USER], sent);
    const order = [...result.conversations.values()].flatMap((rows) => orderViolations(rows));
    const outcomes = sent.flatMap((record) => record.outcomes);
    const describeSample = (sample: Sample | undefined, ms: number | null | undefined) =>
      sample ? `${Math.round(ms ?? 0)} ms (pid ${sample.pid}, ${sample.state}, ${JSON.stringify(sample.query)})` : 'none seen';

    printTable(
      `scenario f: ${CONVERSATIONS * TURNS_EACH} turns with a ${MODEL_MS} ms model, ${CONVERSATIONS} conversations at once, pg_stat_activity every ${SAMPLE_EVERY_MS} ms`,
      result.table,
      [
        `answers: ${JSON.stringify(countBy(outcomes, (o) => (o.kind === 'error' ? o.code : o.kind)))}; ${elapsed} ms in all; ${samples} samples, ${sessions.size} sessions seen`,
        `longest idle in transaction: ${describeSample(worstIdle, worstIdle?.state_ms)} (limit ${IDLE_IN_TRANSACTION_LIMIT_MS} ms)`,
        `longest open transaction: ${describeSample(worstTransaction, worstTransaction?.xact_ms)}`,
        ...outcomes
          .filter((o) => o.kind !== 'ack')
          .slice(0, 5)
          .map((o) => `not acknowledged (instance ${o.instance}): ${outcomeText(o)}`),
        ...order.slice(0, 5).map((line) => `order: ${line}`),
        ...result.lostDetails.slice(0, 5).map((line) => `lost: ${line}`),
        ...result.duplicateDetails.slice(0, 5).map((line) => `duplicated: ${line}`),
      ],
    );

    expect(result.table.lost, 'lost').toBe(0);
    expect(result.table.duplicated, 'duplicated').toBe(0);
    expect(result.table.acknowledged, 'every turn acknowledged').toBe(CONVERSATIONS * TURNS_EACH);
    expect(samples, 'pg_stat_activity samples taken').toBeGreaterThan(10);
    expect(worstIdle?.state_ms ?? 0, `longest idle in transaction: ${describeSample(worstIdle, worstIdle?.state_ms)}`).toBeLessThan(
      IDLE_IN_TRANSACTION_LIMIT_MS,
    );
    expect(order).toEqual([]);
  });
});
