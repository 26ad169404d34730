/**
 * `npm run bench`: measures the budgets of DESIGN.md on a real PostgreSQL and prints them.
 *
 * - SQL statements of one turn, by history length (must be constant);
 * - turn latency without a model (offline agent), by history length (must stay flat);
 * - SQL statements and latency of one nested GraphQL browse, by page size (statements constant).
 *
 * Uses BENCH_DATABASE_URL (a database it may fill) or an embedded PostgreSQL in a temporary
 * directory. Exits non-zero when a statement budget is broken; latencies are printed, not judged
 * by a hard threshold, except a turn at 10,000 messages taking over 3x the turn at 10.
 */
import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createApp } from '../src/app.js';
import { loadConfig, RATE_LIMITS_OFF } from '../src/config.js';
import { startPostgresServer } from '../src/db/embedded.js';
import { createLogger } from '../src/log.js';
import { at, defined, first } from '../test/support/defined.js';
import { seed } from './seed.js';

const HISTORY_LENGTHS = [10, 100, 1_000, 10_000];
const TURNS_PER_LENGTH = 40;
const PAGE_SIZES = [5, 50, 100];
const BROWSES_PER_SIZE = 20;

async function main(): Promise<void> {
  const { url, stop } = await database();
  let failed = false;
  const queries: string[] = [];
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: url,
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret',
    LOG_LEVEL: 'silent',
    // The bench sends 40 turns per user as fast as it can: per-user limits off.
    ...RATE_LIMITS_OFF,
  });
  const app = await createApp(config, { log: createLogger('silent'), onQuery: (sql) => queries.push(sql) });
  const sign = defined(app.auth.sign?.bind(app.auth), 'app.auth.sign (the bench config sets JWT_SECRET)');
  const server = createServer(app.serverOptions, app.express);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  const db = new pg.Client({ connectionString: url });
  await db.connect();

  try {
    console.log(
      `stateless-chat bench: node ${process.version}, ${(await db.query('show server_version')).rows[0].server_version} PostgreSQL\n`,
    );

    console.log('Turn (sendMessage, offline agent, "show my tasks") by history length');
    console.log('history    statements/turn   median ms   p95 ms');
    const turnStats: { length: number; statements: Set<number>; median: number }[] = [];
    for (const length of HISTORY_LENGTHS) {
      const userId = `bench-turn-${length}`;
      const token = await sign(userId);
      const [conversationId] = await seed(db, userId, 1, length);
      await graphql(endpoint, token, SEND, { input: { conversationId, message: 'show my tasks' } }); // warm-up
      const statements = new Set<number>();
      const times: number[] = [];
      for (let i = 0; i < TURNS_PER_LENGTH; i++) {
        queries.length = 0;
        const started = performance.now();
        await graphql(endpoint, token, SEND, { input: { conversationId, message: 'show my tasks' } });
        times.push(performance.now() - started);
        statements.add(queries.length);
      }
      const { median, p95 } = percentiles(times);
      turnStats.push({ length, statements, median });
      console.log(
        `${String(length).padStart(7)}    ${[...statements].join('/').padStart(15)}   ${median.toFixed(2).padStart(9)}   ${p95.toFixed(2).padStart(6)}`,
      );
    }
    const turnCounts = new Set(turnStats.flatMap((s) => [...s.statements]));
    if (turnCounts.size !== 1) {
      failed = true;
      console.log(`FAIL: statements per turn vary with history: ${[...turnCounts].join(', ')}`);
    }
    const ratio = at(turnStats, -1, 'the turn stats').median / first(turnStats, 'the turn stats').median;
    console.log(`latency ratio 10,000 vs 10 messages: ${ratio.toFixed(2)}x`);
    if (ratio > 3) {
      failed = true;
      console.log('FAIL: turn latency grows with history length');
    }

    console.log('\nBrowse: conversations(first: N) { messageCount lastMessage messages(last: 20) { toolCalls } }');
    console.log('N      statements   median ms   p95 ms');
    const userId = 'bench-browse';
    const token = await sign(userId);
    await seed(db, userId, 100, 40);
    const browseCounts = new Set<number>();
    for (const n of PAGE_SIZES) {
      await graphql(endpoint, token, BROWSE, { n });
      const times: number[] = [];
      const statements = new Set<number>();
      for (let i = 0; i < BROWSES_PER_SIZE; i++) {
        queries.length = 0;
        const started = performance.now();
        await graphql(endpoint, token, BROWSE, { n });
        times.push(performance.now() - started);
        statements.add(queries.length);
        browseCounts.add(queries.length);
      }
      const { median, p95 } = percentiles(times);
      console.log(
        `${String(n).padStart(3)}    ${[...statements].join('/').padStart(10)}   ${median.toFixed(2).padStart(9)}   ${p95.toFixed(2).padStart(6)}`,
      );
    }
    if (browseCounts.size !== 1) {
      failed = true;
      console.log(`FAIL: statements per browse vary with page size: ${[...browseCounts].join(', ')}`);
    }
    console.log(failed ? '\nbench: budgets broken' : '\nbench: all budgets hold');
  } finally {
    await db.end();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await app.close();
    await stop();
  }
  process.exit(failed ? 1 : 0);
}

const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { response toolCalls { name } } }`;
const BROWSE = `query ($n: Int!) { conversations(first: $n) { edges { node { messageCount lastMessage { content }
  messages(last: 20) { edges { node { content toolCalls { name } } } } } } } }`;

async function graphql(endpoint: string, token: string, query: string, variables: Record<string, unknown>): Promise<unknown> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: unknown[] };
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

function percentiles(times: number[]): { median: number; p95: number } {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    median: at(sorted, Math.floor(sorted.length / 2), 'the sorted times'),
    p95: at(sorted, Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95)), 'the sorted times'),
  };
}

async function database(): Promise<{ url: string; stop(): Promise<void> }> {
  const given = process.env.BENCH_DATABASE_URL;
  if (given) return { url: given, stop: async () => {} };
  const dir = await mkdtemp(path.join(tmpdir(), 'stateless-chat-bench-'));
  const { port, stop } = await startPostgresServer({ clusterDir: path.join(dir, 'pg'), password: 'bench', persistent: false });
  return {
    url: `postgresql://postgres:bench@127.0.0.1:${port}/postgres`,
    async stop() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
