import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Vite would resolve our `import 'graphql'` to graphql's ESM build while type-graphql and Apollo
    // (loaded by Node) get the CommonJS one: two realms of one library. Node itself picks `main`.
    alias: [{ find: /^graphql$/, replacement: path.resolve('node_modules/graphql/index.js') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
