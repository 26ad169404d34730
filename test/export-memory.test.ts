/**
 * Export streams: 200,000 messages of one user (one conversation of 120,000, one of 80,000, a
 * tool call on every tenth message), seeded in SQL, exported by the CLI as a child process whose
 * peak resident memory (its own `maxRSS`, printed in its summary line) stays under a fixed bound,
 * far below what the file holds, while the file has every message in order.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliEnv, migratedDatabase, scratchDir } from './support/archive.js';
import { runCli } from './support/process.js';

/** The bound on the exporting process's peak RSS. */
const PEAK_RSS_MB = 200;
const SIZES = [120_000, 80_000];
const user = 'memory-export-user';

let database: Awaited<ReturnType<typeof migratedDatabase>>;

beforeAll(async () => {
  database = await migratedDatabase();
  const ids = SIZES.map(() => crypto.randomUUID());
  const { db } = database;
  await db.query(
    `insert into conversation (id, user_id, title, created_at, updated_at, last_message_at, message_count, next_seq)
     select c.id, $1, 'long ' || c.n, now(), now(), now(), c.n, c.n + 1 from unnest($2::uuid[], $3::int[]) as c(id, n)`,
    [user, ids, SIZES],
  );
  await db.query(
    `insert into message (id, conversation_id, user_id, seq, role, content, status, prompt_tokens, completion_tokens, total_tokens, created_at)
     select gen_random_uuid(), c.id, $1, s, (case when s % 2 = 1 then 'user' else 'assistant' end)::message_role,
            'message ' || s || ' of a long conversation, with some words to index and a little more text to carry', 'complete',
            s % 100, s % 50, s % 100 + s % 50, now() + s * interval '1 microsecond'
     from unnest($2::uuid[], $3::int[]) as c(id, n), generate_series(1, c.n) as s`,
    [user, ids, SIZES],
  );
  await db.query(
    `insert into tool_call (id, message_id, conversation_id, user_id, call_id, server, name, arguments, result, is_error, started_at, duration_ms)
     select gen_random_uuid(), m.id, m.conversation_id, m.user_id, 'call_' || m.seq, 'todo', 'list_tasks', '{"filter": "all"}',
            '{"tasks": [{"title": "one"}, {"title": "two"}]}', false, m.created_at, 3
     from message m where m.user_id = $1 and m.seq % 10 = 0`,
    [user],
  );
  await db.query('analyze');
}, 180_000);

afterAll(async () => {
  await database?.drop();
});

it(`exports 200,000 messages with a peak RSS under ${PEAK_RSS_MB} MB, every message in seq order`, async () => {
  const file = path.join(await scratchDir(), 'big.jsonl');
  const run = await runCli(['export', '--user', user, '--out', file], cliEnv(database.url), 180_000);
  expect(run.code, run.stderr).toBe(0);
  const summary =
    /^exported 2 conversations, 200,000 messages, 20,000 tool calls, ([\d,]+) bytes to .* in ([\d.]+) s, peak memory (\d+) MB\n$/.exec(
      run.stderr,
    );
  expect(summary, run.stderr).not.toBeNull();
  const [, bytes, seconds, peak] = summary as RegExpExecArray;
  const size = (await stat(file)).size;
  expect(Number(bytes?.replaceAll(',', ''))).toBe(size);
  console.info(`export of 200,000 messages: ${size} bytes in ${seconds} s, peak RSS ${peak} MB`);
  expect(Number(peak)).toBeLessThan(PEAK_RSS_MB);
  // The output is of the order of the bound: held in memory (as strings and objects, several times its size) it would pass it.
  expect(size).toBeGreaterThan(PEAK_RSS_MB * 1024 * 1024 * 0.25);

  const counts: number[] = [];
  for await (const line of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY })) {
    const record = JSON.parse(line) as { messages: { seq: number; toolCalls: unknown[] }[] };
    record.messages.forEach((message, index) => {
      if (message.seq !== index + 1) throw new Error(`message ${index} has seq ${message.seq}`);
      if (message.toolCalls.length !== (message.seq % 10 === 0 ? 1 : 0)) throw new Error(`message ${message.seq}: tool calls`);
    });
    counts.push(record.messages.length);
  }
  expect(counts.sort((a, b) => a - b)).toEqual([...SIZES].sort((a, b) => a - b));
}, 300_000);
