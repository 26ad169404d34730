/**
 * `npm run faults`: the fault runs of issues 4 and 13, one scenario per file, one file at a time and in
 * the order of their names, a to g (each starts its own PostgreSQL and three server processes;
 * two at once would only measure two cores fighting). Console output is not intercepted, so the
 * tables print as they come; the global setup prints them all again at the end.
 */
import path from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const root = path.resolve(import.meta.dirname, '..');

class ByName extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => a.moduleId.localeCompare(b.moduleId));
  }
}

export default defineConfig({
  root,
  test: {
    include: ['faults/**/*.fault.ts'],
    globalSetup: ['faults/support/setup.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    pool: 'forks',
    sequence: { sequencer: ByName },
    testTimeout: 180_000,
    hookTimeout: 120_000,
    disableConsoleIntercept: true,
    reporters: ['verbose'],
  },
});
