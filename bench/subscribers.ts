/**
 * `npm run bench:subscribers` (issue 12): the memory of many concurrent subscribers of one
 * conversation on one instance.
 *
 * The server runs as a child process (`node dist/src/main.js`, offline agent) on one PostgreSQL
 * (`BENCH_DATABASE_URL`, or an embedded one in a temporary directory).
 *
 * 1. One user opens 200 subscriptions over Server-Sent Events (graphql-sse) to one conversation,
 *    each `after:` its start (none can miss an event); then 100 turns run one after another
 *    ("add a task to buy milk N", every fifth "show my tasks"). Every subscriber must receive
 *    every event the database holds, in order, each turn ending with TURN_COMPLETED.
 * 2. Another user, with 250 tasks, opens 20 subscriptions that never read their response and one
 *    that reads (resuming with `after:` if it is ended with SLOW_CONSUMER, as clients are told
 *    to); 120 "show my tasks" turns (about 50 KB of events each) follow. What a slow subscriber
 *    leaves unread first fills the kernel's socket buffers (about 4 MB on loopback), then the
 *    server's response buffer, which ends it with SLOW_CONSUMER past `STREAM_BACKLOG_MAX`
 *    (65,536 bytes unless `--backlog-max`). Once the turns are done the slow subscribers read
 *    what was kept for them, to see how their streams ended; then a reader joins late, `after:`
 *    the start, and the SLOW_CONSUMER endings of its catch-up are counted.
 *
 * The server's VmRSS and VmHWM are read at rest, with the subscribers open, every quarter of the
 * turns, after the slow subscribers' turns, and once every subscriber is closed. The exit code is
 * 1 only when the run broke: a failed request or subscription, an event missing, a reading
 * stream ended otherwise than by SLOW_CONSUMER.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createAuthenticator } from '../src/auth/authenticator.js';
import { loadConfig, RATE_LIMITS_OFF } from '../src/config.js';
import { migrate, openOrm } from '../src/db/orm.js';
import { encodeCursor } from '../src/graphql/pagination.js';
import { createLogger } from '../src/log.js';
import { defined } from '../test/support/defined.js';
import { readEventStream } from '../test/support/event-stream.js';
import { type Child, type Memory, startChild } from './child.js';
import { benchDatabase } from './database.js';
import { graphqlClient } from './load.js';

const SECRET = 'bench-secret-bench-secret-bench-secret';
const USER = 'bench-subscribers';
const SLOW_USER = 'bench-subscribers-slow';
const START = encodeCursor('event', [0]);
/** `dist/`, where this file runs from (`dist/bench/subscribers.js`). */
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** How long the subscribers may take to catch up with the last turn. */
const CATCH_UP_MS = 60_000;
/** Settling time before a memory reading once a phase is over. */
const SETTLE_MS = 1_000;

const USAGE = `npm run bench:subscribers -- [options]
  --subscribers N   subscribers that read every event (default 200)
  --slow N          subscribers that never read their response (default 20)
  --turns N         turns run one after another, every fifth "show my tasks" (default 100)
  --tasks N         tasks on the slow subscribers' user's list (default 250)
  --slow-turns N    "show my tasks" turns on the slow subscribers' conversation (default 120)
  --backlog-max N   the server's STREAM_BACKLOG_MAX, bytes (default 65536; the server's own default is 1048576)`;

/** What a client of a chat front end asks for: every event with its payload. */
const EVENTS = /* GraphQL */ `
  subscription Events($id: ID!, $after: String) {
    conversationEvents(conversationId: $id, after: $after) {
      cursor type position turnId messageId
      ... on TextDeltaEvent { text }
      ... on ToolCallStartedEvent { callId name arguments }
      ... on ToolCallFinishedEvent { toolCall { id name arguments result isError } }
      ... on TurnCompletedEvent { message { id content status } }
      ... on TurnFailedEvent { code error }
    }
  }
`;
const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { response } }`;

type Event = { cursor: string; type: string; position: number; turnId: string };
type Reader = { events: Event[]; errors: string[]; bytes: number; ended: boolean; done: Promise<void>; close(): void };
type Drained = { bytes: number; ended: boolean; slowConsumer: boolean; events: number };
type Slow = { status: number; close(): void; drain(waitMs: number): Promise<Drained> };
type Row = { phase: string; memory: Memory; subscribers: number; delivered: number };

async function main(): Promise<number> {
  const settings = parseSettings();
  const { url, embedded, stop: stopDatabase } = await benchDatabase();
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stateless-chat-bench-subscribers-'));
  const failures: string[] = [];
  const rows: Row[] = [];
  let server: Child | undefined;
  const readers: Reader[] = [];
  /** The one reader of the slow subscribers' conversation. */
  const witness: Reader[] = [];
  const slow: Slow[] = [];
  try {
    const cpus = os.cpus();
    const version = (await db.query('show server_version')).rows[0].server_version as string;
    console.log(
      `stateless-chat bench:subscribers: ${cpus[0]?.model.trim() ?? 'unknown'} (${cpus.length} cores), node ${process.version}, ` +
        `PostgreSQL ${version} (${embedded ? 'embedded' : 'external'})\n`,
    );
    await migrateDatabase(url);
    const auth = await createAuthenticator(loadConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET }));
    const sign = defined(auth.sign?.bind(auth), 'a signer (the bench sets JWT_SECRET)');
    const token = await sign(USER);

    server = await startChild(
      path.join(DIST, 'src', 'main.js'),
      {
        NODE_ENV: 'test',
        DATABASE_URL: url,
        DATA_DIR: dataDir,
        JWT_SECRET: SECRET,
        AGENT: 'offline',
        TITLE_MODEL: 'off',
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'warn',
        ...RATE_LIMITS_OFF,
        SUBSCRIPTIONS_PER_USER: '1000',
        STREAM_BACKLOG_MAX: String(settings.backlogMax),
        // The long list of the slow subscribers' conversation, whole in its tool result.
        TOOL_RESULT_MAX_BYTES: String(4 * 2 ** 20),
      },
      /^GraphQL: (\S+)$/m,
    );
    const child = server;
    const graphql = graphqlClient(child.url, 4);
    const delivered = () => readers.reduce((sum, reader) => sum + reader.events.length, 0);
    let slowOpen = 0;
    const open = () => [...readers, ...witness].filter((reader) => !reader.ended).length + slowOpen;
    const record = async (phase: string) => {
      await sleep(SETTLE_MS);
      rows.push({ phase, memory: child.memory(), subscribers: open(), delivered: delivered() });
    };

    try {
      const conversationId = await newConversation(graphql, token);
      // A turn first: the server's code paths warm, so that "at rest" is a server that has served.
      await graphql.request(token, SEND, { input: { conversationId, message: 'hello' } });
      await record('at rest (1 turn served)');

      progress(`opening ${settings.subscribers} subscribers`);
      const opened = await Promise.allSettled(
        Array.from({ length: settings.subscribers }, () => subscribe(child.url, token, conversationId, START)),
      );
      for (const result of opened) {
        if (result.status === 'fulfilled') readers.push(result.value);
        else failures.push(`a subscription failed: ${String(result.reason)}`);
      }
      await record(`${readers.length} subscribers open`);

      progress(`${settings.turns} turns, every subscriber reading`);
      const quarter = Math.max(1, Math.floor(settings.turns / 4));
      const startedAt = performance.now();
      let half: Row | undefined;
      for (let turn = 1; turn <= settings.turns; turn++) {
        const message = turn % 5 === 0 ? 'show my tasks' : `add a task to buy milk ${turn}`;
        try {
          await graphql.request(token, SEND, { input: { conversationId, message } });
        } catch (error) {
          failures.push(`turn ${turn} failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        if (turn % quarter === 0 && turn < settings.turns) {
          await caughtUp(db, conversationId, readers);
          await record(`after ${turn} turns`);
          if (turn === 2 * quarter) half = rows.at(-1);
        }
      }
      const total = await caughtUp(db, conversationId, readers);
      const turnsSeconds = (performance.now() - startedAt) / 1000;
      await record(`after ${settings.turns} turns`);
      const afterTurns = defined(rows.at(-1), 'a row');
      failures.push(...check(await storedEvents(db, conversationId), readers));

      // The slow subscribers, on another user's conversation whose "show my tasks" replies are long:
      // what they leave unread must pass the kernel's socket buffers before the server sees a backlog.
      progress(
        `${settings.slow} slow subscribers (never read) and 1 reader; ${settings.slowTurns} "show my tasks" of ${settings.tasks} tasks`,
      );
      const slowToken = await sign(SLOW_USER);
      await db.query(
        `insert into task (id, user_id, title, description, completed, created_at, updated_at)
         select gen_random_uuid(), $1, 'seeded task number ' || i, null, false, now() - (($2 - i) || ' seconds')::interval, now()
         from generate_series(1, $2::int) as i`,
        [SLOW_USER, settings.tasks],
      );
      const slowConversationId = await newConversation(graphql, slowToken);
      const openedSlow = await Promise.allSettled(
        Array.from({ length: settings.slow }, () => subscribeSlow(child.url, slowToken, slowConversationId, START)),
      );
      for (const result of openedSlow) {
        if (result.status === 'fulfilled') slow.push(result.value);
        else failures.push(`a slow subscription failed: ${String(result.reason)}`);
      }
      for (const s of slow) if (s.status !== 200) failures.push(`a slow subscription answered ${s.status}`);
      slowOpen = slow.length;
      const resuming = await subscribeResuming(child.url, slowToken, slowConversationId);
      witness.push(resuming);
      await record(`${slow.length} slow + 1 reader open (2nd conversation)`);
      for (let turn = 1; turn <= settings.slowTurns; turn++) {
        try {
          await graphql.request(slowToken, SEND, { input: { conversationId: slowConversationId, message: 'show my tasks' } });
        } catch (error) {
          failures.push(`long turn ${turn} failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      await caughtUp(db, slowConversationId, witness);
      await record(`after ${settings.slowTurns} long turns`);
      failures.push(...check(await storedEvents(db, slowConversationId), witness).map((line) => `2nd conversation: ${line}`));
      // Now the slow subscribers read what was kept for them, to see how their streams ended.
      const drained = await Promise.all(slow.map((s) => s.drain(3_000)));
      const slowEnded = drained.filter((d) => d.ended && d.slowConsumer).length;
      const otherwise = drained.filter((d) => d.ended && !d.slowConsumer).length;
      if (otherwise > 0) failures.push(`${otherwise} slow subscriber(s) ended without SLOW_CONSUMER`);
      const maxBytes = Math.max(0, ...drained.map((d) => d.bytes));
      const maxEvents = Math.max(0, ...drained.map((d) => d.events));
      const slowTotal = await lastPosition(db, slowConversationId);
      const witnessBytes = witness[0]?.bytes ?? 0;
      // A reader joining late, after: the start: its catch-up is read from the database in pages and
      // written in bursts, the backlog check seeing each burst as a slow client's.
      const late = await subscribeResuming(child.url, slowToken, slowConversationId);
      witness.push(late);
      await caughtUp(db, slowConversationId, [late]);
      failures.push(...check(await storedEvents(db, slowConversationId), [late]).map((line) => `2nd conversation, late reader: ${line}`));

      for (const reader of [...readers, ...witness]) reader.close();
      for (const s of slow) s.close();
      slowOpen = 0;
      await sleep(2_000);
      await record('all closed');

      console.log(`\n${table(rows)}\n`);
      const at = (index: number) => defined(rows[index], 'a row');
      const perSubscriber = ((at(1).memory.rssMb - at(0).memory.rssMb) * 1024) / Math.max(1, readers.length);
      const first = half ?? afterTurns;
      const growth = afterTurns.memory.rssMb - first.memory.rssMb;
      const growthEvents = afterTurns.delivered - first.delivered;
      const mb = (bytes: number) => (bytes < 2 ** 20 ? `${(bytes / 1024).toFixed(0)} KB` : `${(bytes / 2 ** 20).toFixed(1)} MB`);
      console.log(
        `1st conversation: ${total} events, each delivered to ${readers.length} subscribers (${(total * readers.length).toLocaleString('en-US')}); ` +
          `${mb(Math.max(0, ...readers.map((reader) => reader.bytes)))} of results per subscriber`,
      );
      console.log(
        `${settings.turns} turns in ${turnsSeconds.toFixed(1)} s (${(settings.turns / turnsSeconds).toFixed(1)} turns/s, subscribers reading)`,
      );
      console.log(`RSS per open subscriber: ${perSubscriber.toFixed(0)} KB ((open − at rest) ÷ ${readers.length})`);
      console.log(
        `RSS from "${first.phase}" to "${afterTurns.phase}": ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MB over ` +
          `${growthEvents.toLocaleString('en-US')} events delivered (${((growth * 2 ** 20) / Math.max(1, growthEvents)).toFixed(0)} bytes each)`,
      );
      console.log(
        `2nd conversation: ${slowTotal} events, ${mb(witnessBytes)} of results for its reader (ended with SLOW_CONSUMER ${resuming.resumed} time(s), ` +
          'resumed with after: each time); ' +
          `slow subscribers ended by the server (SLOW_CONSUMER): ${slowEnded} of ${slow.length}`,
      );
      console.log(
        `what a slow subscriber read once it read (what the kernel's socket buffers and the server held): ` +
          `at most ${mb(maxBytes)}, ${maxEvents} results`,
      );
      console.log(
        `a reader joining the 2nd conversation after its turns, after: the start: ended with SLOW_CONSUMER ${late.resumed} time(s) ` +
          'before it had every event (resumed with after: each time)',
      );
      if (slowEnded < slow.length)
        console.log(
          `note: ${slow.length - slowEnded} slow subscriber(s) not ended: what they left unread fit in the kernel's socket buffers`,
        );
      const stderr = child.stderrTail().trim();
      if (stderr) console.log(`server stderr (LOG_LEVEL=warn), last lines:\n${indent(stderr.split('\n').slice(-5).join('\n'))}`);
    } finally {
      for (const reader of [...readers, ...witness]) reader.close();
      for (const s of slow) s.close();
      graphql.close();
    }
  } catch (error) {
    failures.unshift(`the run stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    if (server) {
      try {
        server.memory();
      } catch {
        failures.push(`the server (pid ${server.pid}) died during the run; stderr:\n${server.stderrTail()}`);
      }
      await server.stop();
    }
    await db.end();
    await rm(dataDir, { recursive: true, force: true });
    await stopDatabase();
  }
  if (failures.length > 0) {
    console.log(
      `\nbench:subscribers: the run broke (${failures.length} failure(s)); exit code 1:\n  ${failures.slice(0, 20).join('\n  ')}`,
    );
    return 1;
  }
  console.log('\nbench:subscribers: every subscriber received every event; exit code 0');
  return 0;
}

/** A subscriber that reads every event (graphql-sse, distinct connections: one request each). */
async function subscribe(url: string, token: string, conversationId: string, after: string, events: Event[] = []): Promise<Reader> {
  const gone = new AbortController();
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: EVENTS, variables: { id: conversationId, after } }),
    signal: gone.signal,
  });
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`);
  const reader: Reader = { events, errors: [], bytes: 0, ended: false, done: Promise.resolve(), close: () => gone.abort() };
  reader.done = readEventStream(response, ({ event, data }) => {
    if (event !== 'next') return;
    const payload = data as { data?: { conversationEvents: Event | null }; errors?: unknown[] };
    if (payload.errors) reader.errors.push(JSON.stringify(payload.errors).slice(0, 300));
    const got = payload.data?.conversationEvents;
    reader.bytes += JSON.stringify(data).length;
    if (got) reader.events.push({ cursor: got.cursor, type: got.type, position: got.position, turnId: got.turnId });
  })
    .catch((error: unknown) => {
      if (!gone.signal.aborted) reader.errors.push(String(error));
    })
    .finally(() => {
      // A stream the server ended before we closed it is a failure (checked once the turns are done).
      if (!gone.signal.aborted) reader.errors.push('the server ended the stream');
      reader.ended = true;
    });
  return reader;
}

/**
 * A subscriber that reads every event and, ended with SLOW_CONSUMER, subscribes again `after:` the
 * cursor of its last event, as the README tells clients to: together its streams must hold every
 * event once. `resumed` counts the SLOW_CONSUMER endings.
 */
async function subscribeResuming(url: string, token: string, conversationId: string): Promise<Reader & { resumed: number }> {
  const events: Event[] = [];
  let current = await subscribe(url, token, conversationId, START, events);
  let closed = false;
  let pastBytes = 0;
  const out = {
    events,
    errors: [] as string[],
    get bytes() {
      return pastBytes + current.bytes;
    },
    ended: false,
    resumed: 0,
    done: Promise.resolve(),
    close() {
      closed = true;
      current.close();
    },
  };
  out.done = (async () => {
    for (;;) {
      await current.done;
      const slowConsumer = current.errors.some((error) => error.includes('SLOW_CONSUMER'));
      if (closed) break;
      if (!slowConsumer) {
        out.errors.push(...current.errors);
        break;
      }
      out.resumed++;
      pastBytes += current.bytes;
      current = await subscribe(url, token, conversationId, events.at(-1)?.cursor ?? START, events);
    }
    out.ended = true;
  })();
  return out;
}

/**
 * A subscriber that never reads its response until `drain()`: the status is read, the body not
 * (`node:http` leaves a response without a 'data' listener paused, so the socket stops being
 * read and what the server writes piles up in the kernel's buffers, then in the server's).
 * `drain()` then reads what the server kept for it, to see how its stream ended.
 */
function subscribeSlow(url: string, token: string, conversationId: string, after: string): Promise<Slow> {
  const body = Buffer.from(JSON.stringify({ query: EVENTS, variables: { id: conversationId, after } }));
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
        'content-length': body.length,
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      req.off('error', reject);
      req.on('error', () => {});
      res.on('error', () => {});
      resolve({
        status: res.statusCode ?? 0,
        close: () => req.destroy(),
        drain: (waitMs) =>
          new Promise((done) => {
            let text = '';
            let bytes = 0;
            const finish = (ended: boolean) => {
              clearTimeout(timer);
              done({ bytes, ended, slowConsumer: text.includes('SLOW_CONSUMER'), events: (text.match(/^event: next$/gm) ?? []).length });
            };
            // Still open after `waitMs`: the server had not ended it (it is live, caught up).
            const timer = setTimeout(() => finish(false), waitMs);
            res.on('data', (chunk: Buffer) => {
              bytes += chunk.length;
              text += chunk.toString('utf8');
            });
            res.once('end', () => finish(true));
            res.once('close', () => finish(res.complete));
          }),
      });
    });
    req.end(body);
  });
}

async function newConversation(graphql: ReturnType<typeof graphqlClient>, token: string): Promise<string> {
  const created = await graphql.request(token, 'mutation { createConversation(input: {}) { id } }', {});
  return (created.createConversation as { id: string }).id;
}

/** Waits until every open reader has every event the database holds; returns that count. */
async function caughtUp(db: pg.Client, conversationId: string, readers: Reader[]): Promise<number> {
  const total = await lastPosition(db, conversationId);
  const deadline = performance.now() + CATCH_UP_MS;
  while (readers.some((reader) => !reader.ended && reader.events.length < total) && performance.now() < deadline) await sleep(50);
  return total;
}

async function lastPosition(db: pg.Client, conversationId: string): Promise<number> {
  const { rows } = await db.query('select coalesce(max(position), 0)::int as last from conversation_event where conversation_id = $1', [
    conversationId,
  ]);
  return rows[0].last as number;
}

async function storedEvents(db: pg.Client, conversationId: string): Promise<{ position: number; turnId: string }[]> {
  const { rows } = await db.query(
    'select position, turn_id as "turnId" from conversation_event where conversation_id = $1 order by position',
    [conversationId],
  );
  return rows as { position: number; turnId: string }[];
}

/** What each reader missed or got wrong against the stored events: one line per kind of fault. */
function check(stored: { position: number; turnId: string }[], readers: Reader[]): string[] {
  const failures: string[] = [];
  const turns = new Set(stored.map((event) => event.turnId)).size;
  const faults = new Map<string, number>();
  const fault = (what: string) => faults.set(what, (faults.get(what) ?? 0) + 1);
  for (const reader of readers) {
    if (reader.errors.length > 0) fault(`errors (first: ${reader.errors[0]})`);
    if (reader.events.length !== stored.length) fault(`${reader.events.length} events instead of ${stored.length}`);
    if (reader.events.some((event, i) => event.position !== i + 1)) fault('events out of order, missing or twice');
    // Every turn's last event is its TURN_COMPLETED.
    const lastOfTurn = new Map<string, string>();
    for (const event of reader.events) lastOfTurn.set(event.turnId, event.type);
    const completed = [...lastOfTurn.values()].filter((type) => type === 'TURN_COMPLETED').length;
    if (completed !== turns) fault(`${completed} of ${turns} turns ending with TURN_COMPLETED`);
  }
  for (const [what, count] of faults) failures.push(`${count} subscriber(s): ${what}`);
  return failures;
}

function table(rows: Row[]): string {
  const header = ['phase', 'RSS MB', 'HWM MB', 'subscribers', 'events delivered'];
  const body = rows.map((row) => [
    row.phase,
    row.memory.rssMb.toFixed(0),
    row.memory.hwmMb.toFixed(0),
    String(row.subscribers),
    row.delivered.toLocaleString('en-US'),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...body.map((cells) => (cells[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...body.map(line)].join('\n');
}

function parseSettings(): { subscribers: number; slow: number; turns: number; tasks: number; slowTurns: number; backlogMax: number } {
  const { values } = parseArgs({
    options: {
      subscribers: { type: 'string', default: '200' },
      slow: { type: 'string', default: '20' },
      turns: { type: 'string', default: '100' },
      tasks: { type: 'string', default: '250' },
      'slow-turns': { type: 'string', default: '120' },
      'backlog-max': { type: 'string', default: '65536' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const count = (name: string, value: string, min: number) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min)
      throw new Error(`--${name} must be a whole number of at least ${min}, got ${value}\n${USAGE}`);
    return parsed;
  };
  return {
    subscribers: count('subscribers', values.subscribers, 1),
    slow: count('slow', values.slow, 0),
    turns: count('turns', values.turns, 4),
    tasks: count('tasks', values.tasks, 0),
    slowTurns: count('slow-turns', values['slow-turns'], 1),
    backlogMax: count('backlog-max', values['backlog-max'], 1),
  };
}

// Private: the schema, before the server starts.
async function migrateDatabase(url: string): Promise<void> {
  const orm = await openOrm({ clientUrl: url, log: createLogger('silent') });
  try {
    await migrate(orm);
  } finally {
    await orm.close();
  }
}

function progress(what: string): void {
  process.stderr.write(`bench:subscribers: ${what}…\n`);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    console.error('bench:subscribers: the run broke; exit code 1');
    process.exit(1);
  },
);
