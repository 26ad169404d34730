/**
 * The command line as a user types it (`node dist/src/cli.js`, and the package's `bin` launcher):
 * `--help` for every command, exit code 2 with commander's message for bad usage (unknown
 * commands, options and formats, bad dates and ids), before any database is opened; the launcher
 * says to build when the build is missing.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDir } from './support/archive.js';
import { runCli, serverEnv } from './support/process.js';

/** No database reachable: a usage error must be found before one is needed. */
const env = serverEnv({ DATABASE_URL: 'postgresql://nobody:nothing@127.0.0.1:1/none', DATA_DIR: '/nonexistent-cli-data-dir' });

describe('--help', () => {
  it.each([
    [
      'export',
      [
        '--user <id>',
        '--conversation <ids>',
        '--status <status>',
        '--updated-after <date>',
        '--updated-before <date>',
        '--format <format>',
        '--out <file>',
        '--force',
      ],
    ],
    ['import', ['<file>', '--replace']],
    ['archive', ['--older-than <duration>', '--out <dir>', '--purge', '--dry-run', '--batch-size <n>']],
    ['restore', ['--conversation <ids>', '--user <id>', '--manifest <file>', '--from <dir>']],
    ['sweep', []],
    ['migrate', []],
    ['migrate:create', ['[name]']],
    ['token', ['<userId>']],
    ['schema', []],
  ])('of %s exits 0 and names its options', async (command, options) => {
    const run = await runCli([command, '--help'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Usage: stateless-chat ${command}`);
    for (const option of options) expect(run.stdout).toContain(option);
  });

  it('of the tool lists every command', async () => {
    const run = await runCli(['--help'], env);
    expect(run.code, run.stderr).toBe(0);
    for (const command of ['migrate', 'migrate:create', 'token', 'schema', 'sweep', 'export', 'import', 'archive', 'restore']) {
      expect(run.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
  });
});

describe('bad usage exits 2 with the reason on stderr, opening nothing', () => {
  it.each([
    ['no command', [], /Usage: stateless-chat/],
    ['an unknown command', ['exprot'], /error: unknown command 'exprot'\n\(Did you mean export\?\)/],
    ['an unknown option', ['export', '--bogus'], /error: unknown option '--bogus'/],
    [
      'an unknown format',
      ['export', '--format', 'xml'],
      /error: option '--format <format>' argument 'xml' is invalid\. Allowed choices are jsonl, json, markdown\./,
    ],
    ['an unknown status', ['export', '--status', 'gone'], /Allowed choices are active, archived, expired/],
    ['a bad date', ['export', '--updated-after', 'yesterday'], /argument 'yesterday' is invalid\. must be an ISO 8601 date or instant/],
    ['a day that does not exist', ['export', '--updated-before', '2026-02-30'], /argument '2026-02-30' is invalid/],
    [
      'a bad conversation id',
      ['export', '--conversation', 'abc'],
      /argument 'abc' is invalid\. must be conversation ids \(UUIDs\), got "abc"/,
    ],
    ['a bad id in a list', ['export', '--conversation', `${crypto.randomUUID()},nope`], /got "nope"/],
    ['a missing option value', ['export', '--out'], /error: option '--out <file>' argument missing/],
    ['import without a file', ['import'], /error: missing required argument 'file'/],
    ['an unknown import option', ['import', 'x.jsonl', '--merge'], /error: unknown option '--merge'/],
    ['token without a user', ['token'], /error: missing required argument 'userId'/],
  ])('%s', async (_what, args, message) => {
    const run = await runCli(args, env);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });
});

describe('the bin launcher', () => {
  it('runs the built CLI with its arguments', () => {
    const run = spawnSync(process.execPath, ['bin/stateless-chat.js', 'export', '--format', 'xml'], { env, encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('Allowed choices are jsonl, json, markdown');
  });

  it('says to run npm run build when the build is missing, exit 1', async () => {
    const copy = await scratchDir();
    await mkdir(path.join(copy, 'bin'));
    await copyFile('bin/stateless-chat.js', path.join(copy, 'bin/stateless-chat.js'));
    await writeFile(path.join(copy, 'package.json'), '{ "type": "module" }\n');
    const run = spawnSync(process.execPath, [path.join(copy, 'bin/stateless-chat.js'), 'export'], { env, encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`stateless-chat: the build is missing (${path.join(copy, 'dist/src/cli.js')}): run \`npm run build\` first\n`);
  });
});
