/**
 * `stateless-chat export`, run as a real child process as an operator runs it, and the GraphQL
 * field `exportConversation`: an export imported into a fresh database gives back every column
 * of every row, and exporting that database gives the same bytes; JSON and Markdown; `.gz`;
 * the filters; an existing output file; the owner's export and another user's NOT_FOUND.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversationDocument } from '../src/archive/export.js';
import { FORMAT_VERSION } from '../src/archive/format.js';
import { cliEnv, migratedDatabase, scratchDir, seedOddities, storedRows } from './support/archive.js';
import { gqlError, send } from './support/graphql.js';
import { runCli } from './support/process.js';
import { startTestServer, type TestServer } from './support/server.js';
import { uniqueUser } from './support/users.js';

let server: TestServer;
let dir: string;
const alice = uniqueUser('export-alice');
const bob = uniqueUser('export-bob');
/** Alice's conversation made by turns (with tool calls), and her odd ones seeded in SQL. */
let turns: string;
let odd: string[];

beforeAll(async () => {
  server = await startTestServer();
  dir = await scratchDir();
  const client = await server.client(alice);
  turns = (await send(client, 'add a task to buy milk')).conversation.id;
  await send(client, 'add a task to call mom', turns);
  await send(client, 'show my tasks', turns);
  await send(await server.client(bob), 'add a task to water the plants');
  odd = await seedOddities(server.db, alice);
});

afterAll(async () => {
  await server?.close();
});

const exportCli = (args: string[]) => runCli(['export', ...args], cliEnv(server.database.url), 60_000);
const lines = (text: string) => text.split('\n').filter(Boolean);

describe('export, then import into a fresh database', () => {
  it('gives back every column of every conversation, message and tool call, and exports again to the same bytes', async () => {
    const file = path.join(dir, 'all.jsonl');
    const exported = await exportCli(['--out', file]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toBe('');
    const text = await readFile(file, 'utf8');
    const records = lines(text).map((line) => JSON.parse(line));
    expect(records).toHaveLength(5);
    const stored = await storedRows(server.db);
    expect(exported.stderr).toMatch(
      new RegExp(
        `^exported 5 conversations, ${stored.message.length} messages, ${stored.tool_call.length} tool calls, ` +
          `${Buffer.byteLength(text).toLocaleString('en-US')} bytes to ${file} in [\\d.]+ s, peak memory \\d+ MB\\n$`,
      ),
    );
    for (const record of records) expect(record).toMatchObject({ format: 'stateless-chat.conversation', version: FORMAT_VERSION });
    // Messages in seq order, each conversation's whole.
    const byTurns = records.find((record) => record.conversation.id === turns);
    expect(byTurns.messages.map((m: { seq: number }) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(byTurns.messages[1].toolCalls[0]).toMatchObject({ server: 'todo', name: 'add_task', isError: false });
    // Microseconds kept, as text.
    const first = records.find((record) => record.conversation.id === odd[0]);
    expect(first.messages[0].createdAt).toBe('2026-01-02T03:04:05.123456Z');
    expect(first.conversation.updatedAt).toBe('2026-01-03T04:05:06.654321Z');

    const fresh = await migratedDatabase();
    try {
      const imported = await runCli(['import', file], cliEnv(fresh.url), 60_000);
      expect(imported.code, imported.stderr).toBe(0);
      expect(imported.stdout.trim()).toBe('imported 5, unchanged 0, replaced 0, skipped 0 (conflicts)');
      expect(await storedRows(fresh.db)).toEqual(stored);

      const again = await runCli(['export'], cliEnv(fresh.url), 60_000);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toBe(text.trimEnd());
      expect(again.stderr).toMatch(/^exported 5 conversations, .* bytes in /);
    } finally {
      await fresh.drop();
    }
  });

  it('to a .gz file compresses it, and import reads it back', async () => {
    const file = path.join(dir, 'alice.jsonl.gz');
    const exported = await exportCli(['--user', alice, '--out', file]);
    expect(exported.code, exported.stderr).toBe(0);
    const plain = await exportCli(['--user', alice]);
    const compressed = await readFile(file);
    expect(compressed.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(gunzipSync(compressed).toString('utf8')).toBe(`${plain.stdout}\n`);
    expect(exported.stderr).toContain(`${compressed.length.toLocaleString('en-US')} bytes to ${file}`);

    const fresh = await migratedDatabase();
    try {
      const imported = await runCli(['import', file], cliEnv(fresh.url));
      expect(imported.code, imported.stderr).toBe(0);
      expect(imported.stdout.trim()).toBe('imported 4, unchanged 0, replaced 0, skipped 0 (conflicts)');
      expect(await storedRows(fresh.db)).toEqual(await storedRows(server.db, [alice]));
    } finally {
      await fresh.drop();
    }
  });
});

describe('export filters and formats', () => {
  it('takes the conversations of --user, --conversation (repeated or comma-separated), --status and the updated window', async () => {
    const ids = async (args: string[]) => {
      const run = await exportCli(args);
      expect(run.code, run.stderr).toBe(0);
      return lines(run.stdout)
        .map((line) => JSON.parse(line).conversation.id as string)
        .sort();
    };
    expect(await ids(['--user', bob])).toHaveLength(1);
    expect(await ids(['--user', alice])).toEqual([turns, ...odd].sort());
    expect(await ids(['--conversation', `${odd[0]},${odd[1]}`, '--conversation', turns])).toEqual([turns, odd[0], odd[1]].sort());
    expect(await ids(['--user', alice, '--status', 'archived'])).toEqual([odd[0]]);
    expect(await ids(['--user', alice, '--updated-before', '2026-01-02'])).toEqual([odd[1]]);
    expect(await ids(['--user', alice, '--updated-after', '2026-01-01T00:00:00Z', '--updated-before', '2026-01-03T04:05:07Z'])).toEqual(
      [odd[0], odd[1]].sort(),
    );
    const none = await exportCli(['--user', 'nobody-at-all']);
    expect([none.code, none.stdout]).toEqual([0, '']);
    expect(none.stderr).toMatch(/^exported 0 conversations, 0 messages, 0 tool calls, 0 bytes in /);
  });

  it('--format json writes one JSON array of the same records', async () => {
    const jsonl = await exportCli(['--user', alice]);
    const json = await exportCli(['--user', alice, '--format', 'json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(lines(jsonl.stdout).map((line) => JSON.parse(line)));
    const empty = await exportCli(['--user', 'nobody-at-all', '--format', 'json']);
    expect(JSON.parse(empty.stdout)).toEqual([]);
  });

  it('--format markdown writes a readable transcript: the title, every message, a <details> block per tool call', async () => {
    const run = await exportCli(['--conversation', turns, '--format', 'markdown']);
    expect(run.code, run.stderr).toBe(0);
    const md = run.stdout;
    const stored = await server.db.query('select title from conversation where id = $1', [turns]);
    expect(md.startsWith(`# ${stored.rows[0].title}\n`)).toBe(true);
    expect(md).toContain(`- id: \`${turns}\``);
    for (const content of ['add a task to buy milk', 'add a task to call mom', 'show my tasks']) expect(md).toContain(content);
    const calls = await server.db.query('select name from tool_call where conversation_id = $1 and user_id = $2', [turns, alice]);
    expect(md.match(/<details><summary>/g)).toHaveLength(calls.rowCount ?? 0);
    expect(md).toContain('🔧 todo.add_task');
    expect(md).toMatch(/## 2\. assistant · \d{4}-/);
    expect(md).toContain('```json\n{\n  "title": "buy milk"');
  });

  it('refuses to overwrite an existing --out file without --force (exit 1, the file as it was), and overwrites it with --force', async () => {
    const file = path.join(dir, 'kept.jsonl');
    await writeFile(file, 'precious\n');
    const refused = await exportCli(['--user', bob, '--out', file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`${file} exists: give --force to overwrite it\n`);
    expect(await readFile(file, 'utf8')).toBe('precious\n');
    const forced = await exportCli(['--user', bob, '--out', file, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(await readFile(file, 'utf8')).conversation.userId).toBe(bob);
  });
});

describe('exportConversation (GraphQL)', () => {
  const EXPORT = 'query ($id: ID!, $format: ExportFormat) { exportConversation(id: $id, format: $format) }';

  it('gives the owner the record the CLI writes (JSONL, the default) or the Markdown transcript', async () => {
    const client = await server.client(alice);
    const { exportConversation } = await client.request<{ exportConversation: string }>(EXPORT, { id: turns });
    const cli = await exportCli(['--conversation', turns]);
    expect(exportConversation).toBe(`${cli.stdout}\n`);
    expect(JSON.parse(exportConversation).conversation).toMatchObject({ id: turns, userId: alice, messageCount: 6 });
    const markdown = await client.request<{ exportConversation: string }>(EXPORT, { id: turns, format: 'MARKDOWN' });
    // (runCli's stdout is the output without its last newline.)
    expect(markdown.exportConversation).toBe(`${(await exportCli(['--conversation', turns, '--format', 'markdown'])).stdout}\n`);
  });

  it("answers NOT_FOUND for another user's conversation and an unknown id, BAD_USER_INPUT for a malformed one", async () => {
    const client = await server.client(bob);
    expect((await gqlError(client, EXPORT, { id: turns })).code).toBe('NOT_FOUND');
    expect((await gqlError(client, EXPORT, { id: crypto.randomUUID() })).code).toBe('NOT_FOUND');
    expect((await gqlError(client, EXPORT, { id: 'nope' })).code).toBe('BAD_USER_INPUT');
  });

  it('refuses a document past its cap with EXPORT_TOO_LARGE, saying to use the CLI', async () => {
    const tooLarge = conversationDocument(server.app.orm.em.fork(), alice, turns, 'jsonl', 1_000);
    await expect(tooLarge).rejects.toMatchObject({
      code: 'EXPORT_TOO_LARGE',
      message: `The conversation's export is larger than 1000 bytes; export it with the command line: stateless-chat export --conversation ${turns}`,
    });
    expect(await conversationDocument(server.app.orm.em.fork(), alice, turns, 'jsonl', 100_000)).toMatch(/^\{"format"/);
  });
});
