/**
 * `stateless-chat import`, run as a real child process: idempotent (a second import changes
 * nothing), a changed conversation reported and skipped, then replaced with --replace; a
 * malformed line stops the import naming its line, with the conversations before it imported and
 * nothing of its own; a conversation the database refuses halfway is not written at all; a newer
 * format version, a missing file; gzip recognised by its bytes.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cliEnv, migratedDatabase, scratchDir, seedOddities, storedRows } from './support/archive.js';
import { send } from './support/graphql.js';
import { runCli } from './support/process.js';
import { rowsChecksum } from './support/security.js';
import { startTestServer, type TestServer } from './support/server.js';
import { uniqueUser } from './support/users.js';

let source: TestServer;
let target: Awaited<ReturnType<typeof migratedDatabase>>;
let dir: string;
/** The source's archive: one line per conversation, four of carol's (one by turns), then one of dave's. */
let records: string[];
/** The line of carol's conversation made by turns (four messages, tool calls). */
let full: string;
const carol = uniqueUser('import-carol');
const dave = uniqueUser('import-dave');

beforeAll(async () => {
  source = await startTestServer();
  target = await migratedDatabase();
  dir = await scratchDir();
  const client = await source.client(carol);
  const id = (await send(client, 'add a task to buy milk')).conversation.id;
  await send(client, 'show my tasks', id);
  await seedOddities(source.db, carol);
  await send(await source.client(dave), 'add a task to water the plants');
  const run = await runCli(['export'], cliEnv(source.database.url));
  expect(run.code, run.stderr).toBe(0);
  records = run.stdout.split('\n');
  expect(records).toHaveLength(5);
  full = records.find((line) => JSON.parse(line).conversation.id === id) as string;
});

afterAll(async () => {
  await target?.drop();
  await source?.close();
});

beforeEach(async () => {
  await target.db.query('delete from conversation');
});

const importCli = (args: string[]) => runCli(['import', ...args], cliEnv(target.url), 60_000);
const archive = async (name: string, lines: string[] | Buffer) => {
  const file = path.join(dir, name);
  await writeFile(file, Array.isArray(lines) ? `${lines.join('\n')}\n` : lines);
  return file;
};
const idOf = (line: string) => JSON.parse(line).conversation.id as string;
const storedIds = async () => (await target.db.query('select id from conversation order by id')).rows.map((row) => row.id as string);
const checksums = async () => ({ carol: await rowsChecksum(target.db, carol), dave: await rowsChecksum(target.db, dave) });

describe('import', () => {
  it('twice: the second run finds every conversation unchanged and writes nothing', async () => {
    const file = await archive('twice.jsonl', records);
    const first = await importCli([file]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe('imported 5, unchanged 0, replaced 0, skipped 0 (conflicts)');
    const before = await checksums();
    const xmin = await target.db.query('select max(xmin::text::bigint) as x from conversation');

    const second = await importCli([file]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe('imported 0, unchanged 5, replaced 0, skipped 0 (conflicts)');
    expect(second.stderr).toBe('');
    expect(await checksums()).toEqual(before);
    // Not even rewritten with the same values.
    expect((await target.db.query('select max(xmin::text::bigint) as x from conversation')).rows).toEqual(xmin.rows);
    expect(await storedRows(target.db)).toEqual(await storedRows(source.db));
  });

  it('reports a stored conversation that differs and skips it (exit 0); --replace replaces it, in full', async () => {
    const original = full;
    const id = idOf(original);
    await importCli([await archive('original.jsonl', [original])]);
    const changed = JSON.parse(original);
    changed.conversation.title = 'renamed in the archive';
    changed.messages.pop();
    changed.conversation.messageCount -= 1;
    const file = await archive('changed.jsonl', [JSON.stringify(changed), records[4] as string]);

    const skipped = await importCli([file]);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr).toBe(
      `line 1: conversation ${id} of user ${JSON.stringify(changed.conversation.userId)} differs from the stored one: skipped (--replace replaces it)\n`,
    );
    expect(skipped.stdout).toBe('imported 1, unchanged 0, replaced 0, skipped 1 (conflicts)');
    const kept = await target.db.query('select title, message_count from conversation where id = $1', [id]);
    expect(kept.rows[0].title).not.toBe('renamed in the archive');

    const replaced = await importCli([file, '--replace']);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.stdout).toBe('imported 0, unchanged 1, replaced 1, skipped 0 (conflicts)');
    const now = await target.db.query('select title, message_count from conversation where id = $1', [id]);
    expect(now.rows[0]).toEqual({ title: 'renamed in the archive', message_count: changed.conversation.messageCount });
    const messages = await target.db.query('select count(*)::int as n from message where conversation_id = $1', [id]);
    expect(messages.rows[0].n).toBe(changed.messages.length);
  });

  it('stops at a malformed line, naming it and the field: the conversations before it are imported, nothing of it or after it', async () => {
    const bad = JSON.parse(full);
    bad.messages[0].role = 'robot';
    const [a, b, c] = records.filter((line) => line !== full) as [string, string, string];
    const file = await archive('malformed.jsonl', [a, b, JSON.stringify(bad), c]);
    const run = await importCli([file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('line 3: messages.0.role: Invalid option: expected one of "user"|"assistant"|"system"|"tool"\n');
    expect(await storedIds()).toEqual([idOf(a), idOf(b)].sort());

    for (const [line, problem] of [
      ['{"format":"stateless-chat.conversation"', /^line 1: not JSON \(/],
      ['[]', /^line 1: Invalid input: expected object, received array\n$/],
      [records[0]?.replace('"version":1', '"version":"1"'), /^line 1: version: Invalid input: expected 1\n$/],
      [
        records[0]?.replace(/"createdAt":"[^"]+"/, '"createdAt":"yesterday"'),
        /^line 1: conversation\.createdAt: must be an ISO 8601 UTC timestamp/,
      ],
      [records[0]?.replace('"messages":[', '"extra":1,"messages":['), /^line 1: Unrecognized key: "extra"\n$/],
    ] as const) {
      const one = await importCli([await archive('bad-one.jsonl', [line as string])]);
      expect(one.code, line).toBe(1);
      expect(one.stderr).toMatch(problem);
    }
  });

  it('writes nothing of a conversation the database refuses halfway (each conversation is one transaction)', async () => {
    const record = JSON.parse(full);
    // Its conversation and first messages insert; the last message's text search configuration does not exist.
    record.messages[record.messages.length - 1].searchConfig = 'klingon';
    const file = await archive('refused.jsonl', [records[4] as string, JSON.stringify(record)]);
    const run = await importCli([file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^line 2: conversation ${record.conversation.id} not imported: .*klingon`));
    expect(await storedIds()).toEqual([idOf(records[4] as string)]);
    expect(
      (await target.db.query('select count(*)::int as n from message where conversation_id = $1', [record.conversation.id])).rows[0].n,
    ).toBe(0);
  });

  it('refuses a file of a newer format version at its first line, writing nothing', async () => {
    const newer = records[0]?.replace('"version":1', '"version":2') as string;
    const run = await importCli([await archive('newer.jsonl', [newer, records[1] as string])]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('line 1: format version 2 is newer than this server reads (1)\n');
    expect(await storedIds()).toEqual([]);
  });

  it('exits 1 saying so for a missing file', async () => {
    const missing = path.join(dir, 'missing.jsonl');
    const run = await importCli([missing]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`cannot read ${missing}: ENOENT: no such file or directory, open '${missing}'\n`);
  });

  it('reads gzip by its first bytes, whatever the file is called, and passes over blank lines', async () => {
    const file = await archive('compressed.data', gzipSync(`${records.join('\n\n')}\n`));
    const run = await importCli([file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('imported 5, unchanged 0, replaced 0, skipped 0 (conflicts)');
    expect(await storedRows(target.db)).toEqual(await storedRows(source.db));
  });
});
