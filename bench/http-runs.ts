/**
 * The runs over HTTP against a child process: the server (`dist/src/main.js`, GraphQL) and the
 * reference (`dist/bench/reference.js`). Each client works on its own conversation; the server's
 * CPU time is read from `/proc` around each measured window.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { RATE_LIMITS_OFF } from '../src/config.js';
import { at } from '../test/support/defined.js';
import { type Child, sampleMemory, startChild } from './child.js';
import { BROWSE, BROWSE_FOR_MEMORY, countObjects, NO_TOOL_MESSAGE, SEND, TOOL_MESSAGE } from './documents.js';
import { closedLoop, graphqlClient, jsonClient, type Measured, measuredLoop, percentiles } from './load.js';
import { seed } from './seed.js';

/** `dist/`, where this file runs from (`dist/bench/http-runs.js`). */
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Messages already in each conversation a throughput run uses. */
const HISTORY = 10;

export type Timing = { warmupMs: number; durationMs: number };
export type Signer = (userId: string) => Promise<string>;

/**
 * Starts the server as it is deployed (`node dist/src/main.js`) on database `url`: offline agent,
 * rate limits off, logs off, a free port. `NODE_ENV=test` makes it print `GraphQL: <url>`.
 */
export function startServer(url: string, secret: string, dataDir: string): Promise<Child> {
  return startChild(
    path.join(DIST, 'src', 'main.js'),
    {
      NODE_ENV: 'test',
      DATABASE_URL: url,
      DATA_DIR: dataDir,
      JWT_SECRET: secret,
      AGENT: 'offline',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
      ...RATE_LIMITS_OFF,
    },
    /^GraphQL: (\S+)$/m,
  );
}

/** Starts the reference (`reference.ts`) on database `url`. */
export function startReference(url: string): Promise<Child> {
  return startChild(path.join(DIST, 'bench', 'reference.js'), { DATABASE_URL: url }, /^Reference: (\S+)$/m);
}

/** Turns/s, latency and the server's CPU per turn with `clients` clients, each on its own new conversation. */
export async function serverTurns(
  server: Child,
  db: pg.Client,
  sign: Signer,
  options: Timing & { clients: number; tool: boolean },
): Promise<Measured> {
  const userId = `bench-server-${options.tool ? 'tool' : 'plain'}-${options.clients}`;
  const [token, conversations] = await Promise.all([sign(userId), seed(db, userId, options.clients, HISTORY)]);
  const graphql = graphqlClient(server.url, options.clients);
  const message = options.tool ? TOOL_MESSAGE : NO_TOOL_MESSAGE;
  try {
    return await measuredLoop(
      {
        ...options,
        request: async (client) => {
          const conversationId = at(conversations, client, 'the seeded conversations');
          await graphql.request(token, SEND, { input: { conversationId, message } });
        },
      },
      server.cpuMs,
    );
  } finally {
    graphql.close();
  }
}

/** The same as `serverTurns`, against the reference's `POST /turn`. */
export async function referenceTurns(
  reference: Child,
  db: pg.Client,
  options: Timing & { clients: number; tool: boolean },
): Promise<Measured> {
  const userId = `bench-reference-${options.tool ? 'tool' : 'plain'}-${options.clients}`;
  const conversations = await seed(db, userId, options.clients, HISTORY);
  const http = jsonClient(options.clients);
  try {
    return await measuredLoop(
      {
        ...options,
        request: async (client) => {
          const conversationId = at(conversations, client, 'the seeded conversations');
          await http.post(reference.url, { userId, conversationId, message: NO_TOOL_MESSAGE, tool: options.tool });
        },
      },
      reference.cpuMs,
    );
  } finally {
    http.close();
  }
}

export type HistoryLatency = { history: number; requests: number; p50: number; p95: number; p99: number };

/** Rounds the history latencies are taken in: each length gets a slice of every round. */
const HISTORY_ROUNDS = 5;

/**
 * Latency of turns without a tool call, one at a time, in conversations of each of `histories`
 * messages. The lengths take turns in short slices (`HISTORY_ROUNDS` rounds of
 * `durationMs / HISTORY_ROUNDS` each), so that a slower moment of a shared machine, or a
 * database growing through the run, does not fall on one length only.
 */
export async function historyLatency(
  server: Child,
  db: pg.Client,
  sign: Signer,
  histories: number[],
  timing: Timing,
): Promise<HistoryLatency[]> {
  const graphql = graphqlClient(server.url, 1);
  try {
    const runs = [];
    for (const history of histories) {
      const userId = `bench-history-${history}`;
      const [token, [conversationId]] = await Promise.all([sign(userId), seed(db, userId, 1, history)]);
      const send = () => graphql.request(token, SEND, { input: { conversationId, message: NO_TOOL_MESSAGE } });
      await send();
      runs.push({ history, send, times: [] as number[] });
    }
    const slice = timing.durationMs / HISTORY_ROUNDS;
    for (let round = 0; round < HISTORY_ROUNDS; round++) {
      for (const run of runs) {
        const ends = performance.now() + slice;
        while (performance.now() < ends) {
          const sent = performance.now();
          await run.send();
          run.times.push(performance.now() - sent);
        }
      }
    }
    return runs.map(({ history, times }) => ({ history, requests: times.length, ...percentiles(times) }));
  } finally {
    graphql.close();
  }
}

export type BrowsePoint = Measured & { n: number; objects: number; cpuUsPerObject: number };

/** Browses of `conversations(first: n)` by `clients` clients of user `userId` (seeded by the caller). */
export async function browse(
  server: Child,
  sign: Signer,
  userId: string,
  options: Timing & { n: number; clients: number },
): Promise<BrowsePoint> {
  const token = await sign(userId);
  const graphql = graphqlClient(server.url, options.clients);
  try {
    const objects = countObjects(await graphql.request(token, BROWSE, { n: options.n }));
    const result = await measuredLoop(
      { ...options, request: () => graphql.request(token, BROWSE, { n: options.n }).then(() => {}) },
      server.cpuMs,
    );
    return { ...result, n: options.n, objects, cpuUsPerObject: ((result.cpuMsPerRequest ?? Number.NaN) * 1000) / objects };
  } finally {
    graphql.close();
  }
}

export type BrowseMemory = {
  /** Browses asked for, and those sent before the time ran out. */
  requested: number;
  requests: number;
  clients: number;
  seconds: number;
  errors: number;
  firstError?: string;
  peakMb: number;
  objects: number;
};

/**
 * The server's peak resident memory while `requests` browses of `BROWSE_FOR_MEMORY` run,
 * `clients` at a time; no browse is sent after `maxSeconds`.
 */
export async function browseMemory(
  server: Child,
  sign: Signer,
  userId: string,
  options: { requests: number; clients: number; maxSeconds: number },
): Promise<BrowseMemory> {
  const token = await sign(userId);
  const graphql = graphqlClient(server.url, options.clients);
  const objects = countObjects(await graphql.request(token, BROWSE_FOR_MEMORY, {}));
  let left = options.requests;
  let errors = 0;
  let firstError: string | undefined;
  const sampler = sampleMemory(server);
  const started = performance.now();
  const deadline = started + options.maxSeconds * 1000;
  let peakMb = Number.NaN;
  try {
    await Promise.all(
      Array.from({ length: options.clients }, async () => {
        // Taken from `left` before it is sent, so that no client sends one more than asked.
        while (left > 0 && performance.now() < deadline) {
          left -= 1;
          await graphql.request(token, BROWSE_FOR_MEMORY, {}).catch((error: unknown) => {
            errors += 1;
            firstError ??= error instanceof Error ? error.message : String(error);
          });
        }
      }),
    );
  } finally {
    peakMb = sampler.stop().peakMb;
    graphql.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const requests = options.requests - left;
  return { requested: options.requests, requests, clients: options.clients, seconds, errors, firstError, objects, peakMb };
}

export type Soak = { seconds: number; clients: number; turns: number; errors: number; p50: number; p99: number; rss: [number, number][] };

/**
 * A steady load of `clients` clients alternating turns with and without a tool call for `seconds`,
 * the server's resident memory sampled every second.
 */
export async function soak(server: Child, db: pg.Client, sign: Signer, options: { seconds: number; clients: number }): Promise<Soak> {
  const userId = 'bench-soak';
  const [token, conversations] = await Promise.all([sign(userId), seed(db, userId, options.clients, HISTORY)]);
  const graphql = graphqlClient(server.url, options.clients);
  const sampler = sampleMemory(server, 1000);
  let sent = 0;
  let rss: [number, number][] = [];
  try {
    const result = await closedLoop({
      clients: options.clients,
      warmupMs: 0,
      durationMs: options.seconds * 1000,
      request: async (client) => {
        const conversationId = at(conversations, client, 'the seeded conversations');
        sent += 1;
        await graphql.request(token, SEND, { input: { conversationId, message: sent % 2 ? TOOL_MESSAGE : NO_TOOL_MESSAGE } });
      },
    });
    rss = sampler.stop().samples;
    return { ...options, turns: result.requests, errors: result.errors, p50: result.p50, p99: result.p99, rss };
  } finally {
    if (rss.length === 0) sampler.stop();
    graphql.close();
  }
}
