/**
 * `stateless-chat archive` and `restore`, run as real child processes: archive --purge then
 * restore gives back every column of every row; the manifest lists each file with its size,
 * SHA-256 and counts, and the files are archives import reads; a hostile user id stays inside
 * the directory; a run killed at each of its steps leaves every conversation whole or purged into
 * a verified file, and a rerun finishes it; two archivers at once take each conversation once;
 * bad input exits 1 or 2 with nothing changed.
 */

import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, migratedDatabase, scratchDir, seedOddities } from './support/archive.js';
import { gqlError, send } from './support/graphql.js';
import { runCli, startCli } from './support/process.js';
import { startTestServer, type TestServer } from './support/server.js';
import { uniqueUser } from './support/users.js';

let server: TestServer;
const alice = uniqueUser('archive-alice');
const bob = uniqueUser('archive-bob');
/** A JWT `sub` may be any text: this one would climb out of the archive directory if used as a path. */
const hostile = `../../${'ü/'.repeat(140)}..\\..`;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

const cli = (db: { url: string }, args: string[], settings: Record<string, string> = {}) => runCli(args, cliEnv(db.url, settings), 60_000);

/** Every row of the users' conversations, messages and tool calls as PostgreSQL prints them, less `minus` of conversation. */
async function rowsOf(db: pg.Client, users: string[], minus: string[] = []) {
  const drop = ['turn_id', 'lease_expires_at', 'waiting', ...minus].map((column) => ` - '${column}'`).join('');
  const rows = async (table: string, less = '') =>
    (await db.query(`select (to_jsonb(t)${less})::text as row from ${table} t where user_id = any($1) order by id`, [users])).rows.map(
      (r) => r.row as string,
    );
  return { conversation: await rows('conversation', drop), message: await rows('message'), tool_call: await rows('tool_call') };
}

/** Seeds `count` conversations inactive for 200 days over `users` users named `prefix<n>`, each with `messages` messages and a tool call on every 2nd. */
async function seedBulk(db: pg.Client, prefix: string, users: number, count: number, messages: number): Promise<void> {
  await db.query(
    `insert into conversation (id, user_id, title, status, created_at, updated_at, last_message_at, message_count, next_seq,
       prompt_tokens, completion_tokens, total_tokens)
     select gen_random_uuid(), $1 || (g % $2), 'bulk ' || g, 'active', now() - interval '200 days', now() - interval '200 days',
       now() - interval '200 days', $3, $3 + 1, g, 2 * g, 3 * g from generate_series(1, $4) g`,
    [prefix, users, messages, count],
  );
  await db.query(
    `insert into message (id, conversation_id, user_id, seq, role, content, status, created_at, search_config)
     select gen_random_uuid(), c.id, c.user_id, s, (case when s % 2 = 1 then 'user' else 'assistant' end)::message_role,
       repeat('words of the message ', 20) || s, 'complete', c.created_at + s * interval '1.000001 second', 'simple'
     from conversation c, generate_series(1, $2) s where c.user_id like $1 || '%'`,
    [prefix, messages],
  );
  await db.query(
    `insert into tool_call (id, message_id, conversation_id, user_id, call_id, server, name, arguments, result, is_error, started_at, duration_ms)
     select gen_random_uuid(), m.id, m.conversation_id, m.user_id, 'call_' || m.seq, 'todo', 'add_task', '{"title": "x"}',
       '{"ok": true}', false, m.created_at, 5 from message m where m.user_id like $1 || '%' and m.seq % 2 = 0`,
    [prefix],
  );
}

type ManifestJson = {
  format: string;
  version: number;
  runId: string;
  files: { path: string; userId: string; bytes: number; sha256: string; conversations: string[]; messages: number; toolCalls: number }[];
};

async function manifests(dir: string): Promise<ManifestJson[]> {
  const names = await readdir(path.join(dir, 'manifests')).catch(() => [] as string[]);
  return Promise.all(
    names
      .filter((name) => name.endsWith('.json'))
      .map(async (name) => JSON.parse(await readFile(path.join(dir, 'manifests', name), 'utf8'))),
  );
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('archive --purge, then restore', () => {
  it('purges the old conversations (GraphQL: purgedAt, no messages; closed; unarchive refused), and restore gives back every row', async () => {
    const client = await server.client(alice);
    const turns = (await send(client, 'add a task to buy milk')).conversation.id;
    await send(client, 'show my tasks', turns);
    const odd = await seedOddities(server.db, alice);
    await send(await server.client(bob), 'add a task to water the plants');
    // Inactive for long: every conversation but alice's newest seeded one.
    await server.db.query(
      `update conversation set last_message_at = last_message_at - interval '400 days', updated_at = updated_at - interval '400 days'
       where user_id = any($1) and id <> $2`,
      [[alice, bob], odd[2]],
    );
    const before = await rowsOf(server.db, [alice, bob]);
    const dir = await scratchDir();

    const archived = await cli(server.database, ['archive', '--older-than', '90d', '--out', dir, '--purge']);
    expect(archived.code, archived.stderr).toBe(0);
    expect(archived.stderr).toMatch(
      /^archived 4 conversations \(\d+ messages, \d+ tool calls\) into 2 files, [\d,]+ bytes; purged 4; manifest .*manifests\/.*\.json in [\d.]+ s\n$/,
    );
    const purged = await server.db.query(
      `select id, status, purged_at is not null as purged, archive_location from conversation where user_id = any($1) order by id`,
      [[alice, bob]],
    );
    for (const row of purged.rows) {
      if (row.id === odd[2]) expect(row).toMatchObject({ status: 'active', purged: false, archive_location: null });
      else
        expect(row).toMatchObject({ status: 'archived', purged: true, archive_location: { file: expect.stringMatching(/\.jsonl\.gz$/) } });
    }
    const left = await server.db.query('select count(*)::int as n from message where user_id = any($1) and conversation_id <> $2', [
      [alice, bob],
      odd[2],
    ]);
    expect(left.rows[0].n).toBe(0);

    const shown = await client.request<{ conversation: { status: string; purgedAt: string | null; messages: { edges: unknown[] } } }>(
      'query ($id: ID!) { conversation(id: $id) { status purgedAt messages(first: 5) { edges { cursor } } } }',
      { id: turns },
    );
    expect(shown.conversation).toMatchObject({ status: 'ARCHIVED', purgedAt: expect.any(String), messages: { edges: [] } });
    expect(
      (
        await gqlError(client, 'mutation ($input: SendMessageInput!) { sendMessage(input: $input) { response } }', {
          input: { message: 'more', conversationId: turns },
        })
      ).code,
    ).toBe('CONVERSATION_CLOSED');
    const unarchive = 'mutation ($id: ID!) { unarchiveConversation(id: $id) { id status } }';
    expect((await gqlError(client, unarchive, { id: turns })).message).toContain('restore');

    const exported = await cli(server.database, ['export', '--conversation', turns]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toMatch(/^warning: 1 of the conversations are purged: exported without their messages/);
    expect(JSON.parse(exported.stdout).messages).toEqual([]);

    const restored = await cli(server.database, ['restore', '--user', alice, '--from', dir]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toMatch(/^restored 3 conversations, \d+ messages, \d+ tool calls from 1 file; skipped 0 in /);
    const byManifest = (await manifests(dir))[0];
    const manifestFile = path.join(dir, 'manifests', `${byManifest?.runId}.json`);
    const rest = await cli(server.database, ['restore', '--manifest', manifestFile]);
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stderr).toContain('restored 1 conversation,');

    // Every column as it was, but the status and archived_at of those that were not archived yet.
    const minus = ['status', 'archived_at'];
    const after = await rowsOf(server.db, [alice, bob], minus);
    const strip = (rows: string[]) =>
      rows.map((row) => {
        const { status: _s, archived_at: _a, purged_at: _p, archive_location: _l, ...rest } = JSON.parse(row);
        return rest;
      });
    expect(strip(after.conversation)).toEqual(strip(before.conversation));
    expect(after.message).toEqual(before.message);
    expect(after.tool_call).toEqual(before.tool_call);
    const full = await rowsOf(server.db, [alice], []);
    // The one archived before keeps every column; purged_at and archive_location are cleared.
    const oddBefore = before.conversation.find((row) => row.includes(odd[0] as string));
    expect(full.conversation.find((row) => row.includes(odd[0] as string))).toBe(oddBefore);

    const reopened = await client.request<{ unarchiveConversation: { status: string } }>(unarchive, { id: turns });
    expect(reopened.unarchiveConversation.status).toBe('ACTIVE');

    const again = await cli(server.database, ['restore', '--conversation', turns, '--from', dir]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`conversation ${turns} is not purged: skipped\n`);
  });
});

describe('the archive directory', () => {
  it('holds gzip JSONL files that import reads, listed in the manifest with their size, SHA-256 and counts; a hostile user id stays inside', async () => {
    const db = await migratedDatabase();
    try {
      await seedBulk(db.db, 'dir-user-', 3, 12, 4);
      // One statement: the foreign keys, which hold the user, are checked at its end.
      await db.db.query(
        `with c as (update conversation set user_id = $1 where id = (select id from conversation where user_id = 'dir-user-0' limit 1) returning id), ` +
          `m as (update message set user_id = $1 where conversation_id in (select id from c)), ` +
          `t as (update tool_call set user_id = $1 where conversation_id in (select id from c)) select 1`,
        [hostile],
      );
      const dir = await scratchDir();
      const dry = await cli(db, ['archive', '--older-than', '30d', '--out', dir, '--dry-run']);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stderr).toBe('dry run: would archive 12 conversations (48 messages); nothing written\n');
      expect(await readdir(dir)).toEqual([]);

      const run = await cli(db, ['archive', '--older-than', '30d', '--out', dir, '--batch-size', '5']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/^archived 12 conversations \(48 messages, 24 tool calls\) into \d+ files, [\d,]+ bytes; purged 0;/);
      const [manifest, ...others] = await manifests(dir);
      expect(others).toEqual([]);
      expect(manifest).toMatchObject({ format: 'stateless-chat.archive-manifest', version: 1 });
      const listed = manifest?.files.flatMap((file) => file.conversations).sort();
      const stored = (await db.db.query('select id from conversation order by id')).rows.map((row) => row.id);
      expect(listed).toEqual(stored);
      const fresh = await migratedDatabase();
      try {
        for (const file of manifest?.files ?? []) {
          const where = path.resolve(dir, file.path);
          expect(where.startsWith(`${path.resolve(dir)}${path.sep}`)).toBe(true);
          expect(file.path).toMatch(/^\d{4}-\d{2}-\d{2}\/[A-Za-z0-9_-]+-[0-9a-f]{16}\/[0-9TZ]+-[0-9a-f]{8}-\d{4}\.jsonl\.gz$/);
          const bytes = await readFile(where);
          expect([bytes.length, sha256(bytes)]).toEqual([file.bytes, file.sha256]);
          const records = gunzipSync(bytes)
            .toString('utf8')
            .trimEnd()
            .split('\n')
            .map((line) => JSON.parse(line));
          expect(records.map((record) => record.conversation.id)).toEqual(file.conversations);
          expect(records.every((record) => record.conversation.userId === file.userId)).toBe(true);
          expect(records.reduce((sum, record) => sum + record.messages.length, 0)).toBe(file.messages);
          const imported = await cli(fresh, ['import', where]);
          expect(imported.code, imported.stderr).toBe(0);
        }
        expect(manifest?.files.some((file) => file.userId === hostile)).toBe(true);
        // Archived without --purge: nothing changed, and the files hold it all.
        expect(await rowsOf(fresh.db, [hostile, 'dir-user-0', 'dir-user-1', 'dir-user-2'])).toEqual(
          await rowsOf(db.db, [hostile, 'dir-user-0', 'dir-user-1', 'dir-user-2']),
        );
      } finally {
        await fresh.drop();
      }
    } finally {
      await db.drop();
    }
  });
});

/** The conversations of `db` and the number of their messages stored, with their purge state. */
async function states(db: pg.Client) {
  const { rows } = await db.query(
    `select c.id, c.user_id as "userId", c.message_count as "messageCount", c.purged_at is not null as purged, c.archive_location as location,
       (select count(*)::int from message m where m.user_id = c.user_id and m.conversation_id = c.id) as stored
     from conversation c order by c.id`,
  );
  return rows as {
    id: string;
    userId: string;
    messageCount: number;
    purged: boolean;
    location: { file: string; sha256: string; manifest: string } | null;
    stored: number;
  }[];
}

/**
 * The invariant of part 4: every conversation has all its messages stored, or is purged with an
 * archive file that exists, has the SHA-256 its location and its manifest name, and holds its
 * complete record (the messages `original` had).
 */
async function expectWholeOrArchived(db: pg.Client, dir: string, original: Map<string, string[]>) {
  for (const c of await states(db)) {
    if (!c.purged) {
      expect(c.stored, `conversation ${c.id} not purged keeps its messages`).toBe(c.messageCount);
      continue;
    }
    expect(c.stored).toBe(0);
    const location = c.location as NonNullable<typeof c.location>;
    const bytes = await readFile(path.join(dir, location.file));
    expect(sha256(bytes)).toBe(location.sha256);
    const manifest: ManifestJson = JSON.parse(await readFile(path.join(dir, location.manifest), 'utf8'));
    expect(manifest.files.find((file) => file.path === location.file)).toMatchObject({ sha256: location.sha256, bytes: bytes.length });
    const record = gunzipSync(bytes)
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
      .find((r) => r.conversation.id === c.id);
    expect(record.messages.map((m: { id: string }) => m.id)).toEqual(original.get(c.id));
  }
}

const STEPS = [
  'archive batch claimed',
  'archive files written',
  'archive manifest written',
  'archive batch verified',
  'archive batch committed',
];

describe('archive --purge killed midway', () => {
  it('leaves every conversation whole or purged into a verified file at every step, and a rerun finishes it; restore gives back every row', async () => {
    const db = await migratedDatabase();
    try {
      await seedBulk(db.db, 'kill-user-', 10, 300, 20);
      const users = Array.from({ length: 10 }, (_, n) => `kill-user-${n}`);
      const before = await rowsOf(db.db, users, ['status', 'archived_at']);
      const original = new Map<string, string[]>();
      for (const row of (await db.db.query('select conversation_id, array_agg(id order by seq) as ids from message group by 1')).rows) {
        original.set(row.conversation_id, row.ids);
      }
      const dir = await scratchDir();
      const args = ['archive', '--older-than', '90d', '--out', dir, '--purge', '--batch-size', '25'];
      const env = cliEnv(db.url, { LOG_LEVEL: 'debug' });
      for (const [index, step] of STEPS.entries()) {
        const run = startCli(args, env);
        // The step of the run's second batch (the first one, of a run after a kill, may be the only one).
        await run
          .waitForLine((line) => {
            const log = line.startsWith('{') ? JSON.parse(line) : null;
            return log?.msg === step && log.batch === 2;
          }, step)
          .finally(() => run.kill());
        await expectWholeOrArchived(db.db, dir, original);
        const purged = (await states(db.db)).filter((c) => c.purged).length;
        expect(purged, `purged after a kill at "${step}" (run ${index + 1})`).toBeLessThan(300);
      }
      const rerun = await cli(db, args);
      expect(rerun.code, rerun.stderr).toBe(0);
      await expectWholeOrArchived(db.db, dir, original);
      expect((await states(db.db)).every((c) => c.purged)).toBe(true);

      const restored = await cli(db, ['restore', '--conversation', [...original.keys()].join(','), '--from', dir]);
      expect(restored.code, restored.stderr).toBe(0);
      expect(restored.stderr).toMatch(/^restored 300 conversations, 6,000 messages, 3,000 tool calls from \d+ files; skipped 0 in /);
      const after = await rowsOf(db.db, users, ['status', 'archived_at']);
      expect(after.message).toEqual(before.message);
      expect(after.tool_call).toEqual(before.tool_call);
      expect(after.conversation).toEqual(before.conversation);
    } finally {
      await db.drop();
    }
  });
});

describe('two archivers at once', () => {
  it('archive and purge each conversation once: in one file of one manifest', async () => {
    const db = await migratedDatabase();
    try {
      await seedBulk(db.db, 'twin-user-', 7, 300, 4);
      const dir = await scratchDir();
      const args = ['archive', '--older-than', '90d', '--out', dir, '--purge', '--batch-size', '20'];
      const started = performance.now();
      const [a, b] = [startCli(args, cliEnv(db.url)), startCli(args, cliEnv(db.url))];
      const [ra, rb] = await Promise.all([a.finish(60_000), b.finish(60_000)]);
      const seconds = (performance.now() - started) / 1000;
      expect(ra.code, ra.stderr).toBe(0);
      expect(rb.code, rb.stderr).toBe(0);
      const purgedBy = (stderr: string) => Number(/purged (\d+)/.exec(stderr)?.[1]);
      expect(purgedBy(ra.stderr) + purgedBy(rb.stderr), `${ra.stderr}${rb.stderr} in ${seconds} s`).toBe(300);
      const listed = (await manifests(dir)).flatMap((manifest) => manifest.files.flatMap((file) => file.conversations));
      expect(listed).toHaveLength(300);
      expect(new Set(listed).size).toBe(300);
      const all = await states(db.db);
      expect(all.every((c) => c.purged && c.stored === 0)).toBe(true);
    } finally {
      await db.drop();
    }
  });
});

describe('bad input', () => {
  it.each([
    [
      ['archive', '--older-than', '90x', '--out', '/tmp/x'],
      /--older-than <duration>' argument '90x' is invalid\. must be a positive duration/,
    ],
    [['archive', '--older-than', '0', '--out', '/tmp/x'], /must be a positive duration/],
    [['archive', '--older-than', '90d'], /required option '--out <dir>' not specified/],
    [['archive', '--out', '/tmp/x'], /required option '--older-than <duration>' not specified/],
    [['archive', '--older-than', '9d', '--out', '/tmp/x', '--batch-size', '0'], /must be a whole number from 1 to 10000/],
    [['restore', '--from', '/tmp/x'], /say what to restore/],
    [['restore', '--user', 'someone'], /--from <dir> is required unless --manifest/],
  ])('%j exits 2 with a clear message, before any database is opened', async (args, message) => {
    const env = cliEnv('postgresql://nobody:nothing@127.0.0.1:1/none');
    const run = await runCli(args, env);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
  });

  it('restore of a missing file, a tampered file, a file of a newer format version or a newer manifest exits 1 saying which, the conversations still purged', async () => {
    const db = await migratedDatabase();
    try {
      await seedBulk(db.db, 'bad-user-', 2, 4, 3);
      const dir = await scratchDir();
      const run = await cli(db, ['archive', '--older-than', '90d', '--out', dir, '--purge']);
      expect(run.code, run.stderr).toBe(0);
      const [manifest] = await manifests(dir);
      const [first, second] = manifest?.files ?? [];
      if (!first || !second) throw new Error('expected two files');
      const purged = await states(db.db);
      const firstFile = path.join(dir, first.path);
      const secondFile = path.join(dir, second.path);

      // Missing: the first file moved away.
      const kept = await readFile(firstFile);
      const { rename } = await import('node:fs/promises');
      await rename(firstFile, `${firstFile}.away`);
      const missing = await cli(db, ['restore', '--manifest', path.join(dir, 'manifests', `${manifest?.runId}.json`)]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toBe(`archive file missing: ${path.resolve(firstFile)}\n`);
      expect(await states(db.db)).toEqual(purged);
      await rename(`${firstFile}.away`, firstFile);

      // Tampered: the second file's content changed (a valid gzip of other text).
      const { gzipSync } = await import('node:zlib');
      const secondKept = await readFile(secondFile);
      await writeFile(secondFile, gzipSync('{}\n'));
      const tampered = await cli(db, ['restore', '--user', second.userId, '--from', dir]);
      expect(tampered.code).toBe(1);
      expect(tampered.stderr).toMatch(
        new RegExp(
          `^checksum mismatch: ${path.resolve(secondFile)} has SHA-256 [0-9a-f]{64}, its conversations were archived with ${second.sha256}\\n$`,
        ),
      );
      const all = await cli(db, ['restore', '--manifest', path.join(dir, 'manifests', `${manifest?.runId}.json`)]);
      expect(all.code).toBe(1);
      expect(all.stderr).toContain('checksum mismatch');
      // Nothing restored, the good file's conversations neither.
      expect(await states(db.db)).toEqual(purged);

      // A file of a newer format version, its checksums made to agree (the manifest's and the rows').
      const newerText = gunzipSync(secondKept).toString('utf8').replaceAll('"version":1,', '"version":2,');
      const newerBytes = gzipSync(newerText);
      await writeFile(secondFile, newerBytes);
      const manifestFile = path.join(dir, 'manifests', `${manifest?.runId}.json`);
      const edited = JSON.parse(await readFile(manifestFile, 'utf8')) as ManifestJson;
      for (const file of edited.files) {
        if (file.path === second.path) Object.assign(file, { sha256: sha256(newerBytes), bytes: newerBytes.length });
      }
      await writeFile(manifestFile, JSON.stringify(edited));
      await db.db.query(
        `update conversation set archive_location = jsonb_set(archive_location, '{sha256}', to_jsonb($1::text)) where user_id = $2`,
        [sha256(newerBytes), second.userId],
      );
      const relocated = await states(db.db);
      const newerFormat = await cli(db, ['restore', '--manifest', manifestFile]);
      expect(newerFormat.code).toBe(1);
      expect(newerFormat.stderr).toBe(`${path.resolve(secondFile)}: line 1: format version 2 is newer than this server reads (1)\n`);
      expect(await states(db.db)).toEqual(relocated);

      // A manifest of a newer version.
      const newer = path.join(dir, 'newer.json');
      await writeFile(newer, JSON.stringify({ ...manifest, version: 2 }));
      const refused = await cli(db, ['restore', '--manifest', newer, '--from', dir]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe(`${newer}: manifest version 2 is newer than this server reads (1)\n`);

      // The good file still restores.
      await writeFile(firstFile, kept);
      const good = await cli(db, ['restore', '--user', first.userId, '--from', dir]);
      expect(good.code, good.stderr).toBe(0);
      expect(good.stderr).toMatch(/^restored 2 conversations, 6 messages, 2 tool calls from 1 file; skipped 0 in /);
    } finally {
      await db.drop();
    }
  });
});
