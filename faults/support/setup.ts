/**
 * Once per fault run: build the server (`tsc -p .`, the `dist/` that the instances run), and a file
 * where every scenario appends its table, printed again together when the run ends.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

export default async function setup(project: TestProject) {
  execFileSync(process.execPath, [path.resolve('node_modules/typescript/bin/tsc'), '-p', '.'], { stdio: 'inherit' });
  const dir = await mkdtemp(path.join(tmpdir(), 'stateless-chat-fault-summary-'));
  const file = path.join(dir, 'tables.txt');
  project.provide('faultSummaryFile', file);
  return async () => {
    const tables = await readFile(file, 'utf8').catch(() => '(no scenario printed a table)\n');
    process.stdout.write(`\n=== fault runs: every table ===\n${tables}`);
    await rm(dir, { recursive: true, force: true });
  };
}
