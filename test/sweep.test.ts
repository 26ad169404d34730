/**
 * The retention sweeper on real PostgreSQL: which conversations a sweep expires and archives, and
 * in how many statements; `0` = never; a turn running on another instance is never swept under
 * it; a row a turn's start holds is passed over, not waited for; two sweeps at once change each
 * conversation once; what clients see afterwards (CONVERSATION_CLOSED, reopen, `expiresAt`); the
 * CLI `sweep` and the in-process timer.
 */
import type { GraphQLClient } from 'graphql-request';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SweepCounts, sweep } from '../src/chat/sweeper.js';
import type { Retention } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase } from './support/database.js';
import { GatedAgent } from './support/gate.js';
import { gqlError, send } from './support/graphql.js';
import { runCli, serverEnv } from './support/process.js';
import { startTestServer, type TestServer } from './support/server.js';
import { until } from './support/wait.js';

const DAY = 86_400_000;
const agent = new GatedAgent();
const log = createLogger('silent');
/** The server the turns run on, and a second instance on the same database (as behind a load balancer). */
let server: TestServer;
let other: TestServer;
let db: pg.Client;

beforeAll(async () => {
  server = await startTestServer({ agent });
  other = await startTestServer({ database: server.database });
  db = server.db;
});

afterAll(async () => {
  agent.gate.release();
  await other?.close();
  await server?.close();
});

/** The defaults: expire after 30 days, archive after 90, batches of 500. */
const POLICY: Retention = { ttlMs: 30 * DAY, archiveAfterMs: 90 * DAY, sweepIntervalMs: 0, batchSize: 500 };
const sweepOn = (instance: TestServer, retention: Retention = POLICY, now?: Date): Promise<SweepCounts> =>
  sweep(instance.app.orm.em.fork(), retention, log, now);

/** Makes the conversation look inactive for `days`: its last message and last change that long ago. */
const age = (id: string, days: number) =>
  db.query(
    `update conversation set last_message_at = now() - $2 * interval '1 day', updated_at = now() - $2 * interval '1 day' where id = $1`,
    [id, days],
  );
const stored = async (id: string) =>
  (await db.query('select status, expires_at, archived_at, updated_at from conversation where id = $1', [id])).rows[0] as {
    status: string;
    expires_at: Date | null;
    archived_at: Date | null;
    updated_at: Date;
  };
const conversationOf = async (client: GraphQLClient) => (await send(client, 'add something')).conversation.id;
const EXPIRES_AT = 'query ($id: ID!) { conversation(id: $id) { status expiresAt updatedAt } }';
type Seen = { conversation: { status: string; expiresAt: string | null; updatedAt: string } };

describe('a sweep', () => {
  it('archives what is inactive for ARCHIVE_AFTER and expires what is inactive for CONVERSATION_TTL, each in one change; a second sweep changes nothing', async () => {
    const client = await server.client('sweep-states');
    const [recent, month, old, expiredOld] = [
      await conversationOf(client),
      await conversationOf(client),
      await conversationOf(client),
      await conversationOf(client),
    ];
    await age(recent, 29);
    await age(month, 40);
    await age(old, 100);
    await age(expiredOld, 100);
    const expiredAt = new Date(Date.now() - 50 * DAY);
    await db.query(`update conversation set status = 'expired', expires_at = $2 where id = $1`, [expiredOld, expiredAt]);

    const now = new Date();
    // One archive batch, one expire batch: each came back short.
    expect(await sweepOn(server, POLICY, now)).toEqual({ archived: 2, expired: 1, batches: 2 });
    expect(await stored(recent)).toMatchObject({ status: 'active', expires_at: null, archived_at: null });
    expect(await stored(month)).toMatchObject({ status: 'expired', expires_at: now, archived_at: null, updated_at: now });
    // Past both: archived directly, never expired on the way.
    expect(await stored(old)).toMatchObject({ status: 'archived', expires_at: null, archived_at: now, updated_at: now });
    // An expired one keeps when it expired.
    expect(await stored(expiredOld)).toMatchObject({ status: 'archived', expires_at: expiredAt, archived_at: now });

    expect(await sweepOn(server)).toEqual({ archived: 0, expired: 0, batches: 2 });
  });

  it('goes in batches of SWEEP_BATCH until one comes back short', async () => {
    const client = await server.client('sweep-batches');
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await conversationOf(client));
    for (const id of ids) await age(id, 40);
    // 2 + 2 + 1 expired; the archive phase found nothing in one batch.
    expect(await sweepOn(server, { ...POLICY, batchSize: 2 })).toEqual({ archived: 0, expired: 5, batches: 4 });
    const statuses = await db.query(`select distinct status from conversation where user_id = 'sweep-batches'`);
    expect(statuses.rows).toEqual([{ status: 'expired' }]);
  });

  it('with 0 for a setting, never does that: TTL 0 expires nothing, ARCHIVE_AFTER 0 archives nothing', async () => {
    const client = await server.client('sweep-never');
    const month = await conversationOf(client);
    const old = await conversationOf(client);
    await age(month, 40);
    await age(old, 400);
    expect(await sweepOn(server, { ...POLICY, ttlMs: 0, archiveAfterMs: 0 })).toEqual({ archived: 0, expired: 0, batches: 0 });
    expect((await stored(old)).status).toBe('active');
    // TTL 0 alone: nothing expires, the very old one is still archived.
    expect(await sweepOn(server, { ...POLICY, ttlMs: 0 })).toEqual({ archived: 1, expired: 0, batches: 1 });
    expect([(await stored(month)).status, (await stored(old)).status]).toEqual(['active', 'archived']);
    // ARCHIVE_AFTER 0 alone: the month-old one expires, and stays expired.
    expect(await sweepOn(server, { ...POLICY, archiveAfterMs: 0 })).toEqual({ archived: 0, expired: 1, batches: 1 });
    await age(month, 4000);
    expect(await sweepOn(server, { ...POLICY, archiveAfterMs: 0 })).toEqual({ archived: 0, expired: 0, batches: 1 });
    expect((await stored(month)).status).toBe('expired');
  });
});

describe('what a client sees of a swept conversation', () => {
  it('sendMessage answers CONVERSATION_CLOSED; expiresAt tells when; reopen makes it active for another TTL, and the next sweep leaves it', async () => {
    const client = await server.client('sweep-client');
    const id = await conversationOf(client);

    // Active: the TTL after its last message or change (the server's CONVERSATION_TTL: 30 days).
    const fresh = (await client.request<Seen>(EXPIRES_AT, { id })).conversation;
    expect(Date.parse(fresh.expiresAt ?? '') - Date.parse(fresh.updatedAt)).toBe(30 * DAY);

    await age(id, 40);
    const now = new Date();
    expect((await sweepOn(server, POLICY, now)).expired).toBe(1);
    expect((await client.request<Seen>(EXPIRES_AT, { id })).conversation).toMatchObject({
      status: 'EXPIRED',
      expiresAt: now.toISOString(),
    });
    const closed = await gqlError(client, 'mutation ($input: SendMessageInput!) { sendMessage(input: $input) { response } }', {
      input: { conversationId: id, message: 'add more' },
    });
    expect(closed.code).toBe('CONVERSATION_CLOSED');

    await client.request('mutation ($id: ID!) { reopenConversation(id: $id) { id } }', { id });
    const reopened = (await client.request<Seen>(EXPIRES_AT, { id })).conversation;
    expect(reopened.status).toBe('ACTIVE');
    // The reopen is the last change: the clock starts again from it, whatever the last message's age.
    expect(Date.parse(reopened.expiresAt ?? '') - Date.parse(reopened.updatedAt)).toBe(30 * DAY);
    expect((await sweepOn(server)).expired).toBe(0);
    expect((await stored(id)).status).toBe('active');
    expect((await send(client, 'add more', id)).userMessage.seq).toBe(3);
  });

  it('expiresAt is null with CONVERSATION_TTL=0', async () => {
    const never = await startTestServer({ database: server.database, env: { CONVERSATION_TTL: '0' } });
    try {
      const client = await never.client('sweep-ttl0');
      const id = await conversationOf(client);
      expect((await client.request<Seen>(EXPIRES_AT, { id })).conversation.expiresAt).toBeNull();
    } finally {
      await never.close();
    }
  });
});

describe('while a turn runs on another instance', () => {
  it('the sweep passes over its conversation, archive and delete answer CONVERSATION_BUSY, the turn completes whole; a later sweep takes it', async () => {
    const client = await server.client('sweep-busy');
    const id = await conversationOf(client);
    const before = agent.gate.held;
    const slow = send(client, 'add slow thing', id);
    await agent.gate.untilHeld(before + 1);
    // Inactive by its columns: only the live lease keeps it from the sweep.
    await age(id, 400);

    expect(await sweepOn(other)).toEqual({ archived: 0, expired: 0, batches: 2 });
    const elsewhere = await other.client('sweep-busy');
    for (const mutation of ['archiveConversation(id: $id) { id }', 'deleteConversation(id: $id) { deletedId }']) {
      expect((await gqlError(elsewhere, `mutation ($id: ID!) { ${mutation} }`, { id })).code, mutation).toBe('CONVERSATION_BUSY');
    }
    expect((await stored(id)).status).toBe('active');

    agent.gate.release();
    const done = await slow;
    expect(done.assistantMessage.status).toBe('COMPLETE');
    const rows = await db.query('select seq, status from message where conversation_id = $1 order by seq', [id]);
    expect(rows.rows.map((r) => `${r.seq}:${r.status}`)).toEqual(['1:complete', '2:complete', '3:complete', '4:complete']);
    expect((await stored(id)).status).toBe('active');

    // Its turn over, and inactive again: the next sweep takes it.
    await age(id, 400);
    expect(await sweepOn(other)).toEqual({ archived: 1, expired: 0, batches: 2 });
    expect((await stored(id)).status).toBe('archived');
  });

  it('a conversation row locked at that moment (a turn starting) is passed over at once, not waited for; the next sweep gets it', async () => {
    const client = await server.client('sweep-locked');
    const id = await conversationOf(client);
    await age(id, 40);
    const holder = new pg.Client({ connectionString: server.database.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select id from conversation where id = $1 for update', [id]);
      expect(await sweepOn(server)).toEqual({ archived: 0, expired: 0, batches: 2 });
      await holder.query('commit');
    } finally {
      await holder.end();
    }
    expect(await sweepOn(server)).toEqual({ archived: 0, expired: 1, batches: 2 });
  });
});

describe('two sweeps at once', () => {
  it('over the same 1,000 conversations, on two instances, change each one exactly once', async () => {
    // 500 a month old (to expire), 500 half a year old (to archive), of 10 users.
    await db.query(
      `insert into conversation (id, user_id, created_at, updated_at, last_message_at)
       select gen_random_uuid(), 'sweep-bulk-' || (g % 10), t, t, t
       from generate_series(1, 1000) g, lateral (select now() - (case when g % 2 = 0 then 40 else 180 end) * interval '1 day' - g * interval '1 second' as t) x`,
    );
    const policy = { ...POLICY, batchSize: 25 };
    // Each sweep stamps its own instant: the stored updated_at tells which one changed a row (last).
    const [atA, atB] = [new Date(), new Date(Date.now() + 1)];
    const [a, b] = await Promise.all([sweepOn(server, policy, atA), sweepOn(other, policy, atB)]);

    expect(a.expired + b.expired).toBe(500);
    expect(a.archived + b.archived).toBe(500);
    const byStamp = await db.query<{ status: string; at: Date; n: number }>(
      `select status, updated_at as at, count(*)::int as n from conversation where user_id like 'sweep-bulk-%' group by 1, 2 order by 1, 2`,
    );
    const count = (status: string, at: Date) =>
      byStamp.rows.find((row) => row.status === status && row.at.getTime() === at.getTime())?.n ?? 0;
    // Every row changed, each by the sweep that counted it: a row changed by both would be missing from the first one's count.
    expect(byStamp.rows.reduce((sum, row) => sum + row.n, 0)).toBe(1000);
    expect([count('expired', atA), count('archived', atA), count('expired', atB), count('archived', atB)]).toEqual([
      a.expired,
      a.archived,
      b.expired,
      b.archived,
    ]);
    expect(await sweepOn(server, policy)).toEqual({ archived: 0, expired: 0, batches: 2 });
  });
});

describe('npm run cli -- sweep', () => {
  const cliEnv = (settings: Record<string, string> = {}) =>
    serverEnv({ DATABASE_URL: server.database.url, DATA_DIR: '/nonexistent-sweep-data-dir', ...settings });

  it('sweeps by the settings, prints the counts and exits 0', async () => {
    const client = await server.client('sweep-cli');
    const id = await conversationOf(client);
    const policy = { ...POLICY, ttlMs: 7 * DAY, archiveAfterMs: 0 };
    await sweepOn(server, policy); // what earlier tests left for this policy: settled first
    await age(id, 10);
    const cli = await runCli(['sweep'], cliEnv({ CONVERSATION_TTL: '7d', ARCHIVE_AFTER: '0' }));
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout.trim()).toBe('expired 1, archived 0 in 1 batch');
    expect((await stored(id)).status).toBe('expired');
  });

  it('exits 1 naming the variable when a setting is bad', async () => {
    const cli = await runCli(['sweep'], cliEnv({ CONVERSATION_TTL: '-1d' }));
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('CONVERSATION_TTL: must be a whole number with a unit');
    expect(cli.stderr).toContain('(got "-1d")');
  });

  it('exits 1 saying what to do on a database not migrated yet, and changes nothing', async () => {
    const empty = await createTestDatabase();
    try {
      const cli = await runCli(['sweep'], { ...cliEnv({}), DATABASE_URL: empty.url });
      expect(cli.code).toBe(1);
      expect(cli.stderr).toContain('migration(s) to apply first: run `npm run migrate`');
      const check = new pg.Client({ connectionString: empty.url });
      await check.connect();
      try {
        expect((await check.query("select 1 from pg_tables where schemaname = 'public' and tablename = 'conversation'")).rowCount).toBe(0);
      } finally {
        await check.end();
      }
    } finally {
      await empty.drop();
    }
  });
});

describe('SWEEP_INTERVAL', () => {
  it('makes the server sweep by itself, without a call', async () => {
    const timed = await startTestServer({ database: server.database, env: { SWEEP_INTERVAL: '1s', CONVERSATION_TTL: '1d' } });
    try {
      const client = await timed.client('sweep-timer');
      const id = await conversationOf(client);
      await age(id, 2);
      await until(async () => (await stored(id)).status === 'expired', 'the timer to expire the conversation', { ms: 5_000, everyMs: 100 });
    } finally {
      await timed.close();
    }
  });
});
