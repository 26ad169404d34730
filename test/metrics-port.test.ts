/**
 * Where `/metrics` is served. Outside production: on the API's port, as before. In production the
 * API's port faces clients and the metrics name operations, tools and models, so with `METRICS`
 * unset they are served only with a port of their own (`METRICS_PORT`, which a network policy keeps
 * private) or a token (`METRICS_TOKEN`); otherwise they are off, and the server says so.
 * `node dist/src/main.js` as an operator runs it.
 */
import { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { send } from './support/graphql.js';
import { killAll, runCli, serverEnv, startServer } from './support/process.js';

const JWT_SECRET = 'metrics-port-secret-that-is-long-enough-for-hs256';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await killAll();
  await database?.drop();
});

describe('METRICS, METRICS_PORT and METRICS_TOKEN', () => {
  const production = { NODE_ENV: 'production', JWT_SECRET };
  it.each([
    ['outside production, unset: on the API port', { NODE_ENV: 'development' }, { enabled: true, port: undefined, offInProduction: false }],
    ['in production, unset: off', production, { enabled: false, port: undefined, offInProduction: true }],
    [
      'in production with a port: on that port',
      { ...production, METRICS_PORT: '9464' },
      { enabled: true, port: 9464, offInProduction: false },
    ],
    [
      'in production with a token: on the API port',
      { ...production, METRICS_TOKEN: 't' },
      { enabled: true, port: undefined, offInProduction: false },
    ],
    [
      'in production, METRICS=on: on the API port',
      { ...production, METRICS: 'on' },
      { enabled: true, port: undefined, offInProduction: false },
    ],
    [
      'METRICS=off, whatever else',
      { ...production, METRICS: 'off', METRICS_PORT: '9464' },
      { enabled: false, port: 9464, offInProduction: false },
    ],
  ])('%s', (_what, env, expected) => {
    expect(loadConfig(env).metrics).toMatchObject(expected);
  });

  it('refuses a METRICS_PORT that is not a port, naming it', () => {
    expect(() => loadConfig({ METRICS_PORT: '70000' })).toThrow(/METRICS_PORT/);
    expect(() => loadConfig({ METRICS_PORT: 'nine' })).toThrow(/METRICS_PORT/);
  });
});

describe('a production server', () => {
  it('with METRICS_PORT serves /metrics on that port alone, and nothing else there', async () => {
    const env = serverEnv({ NODE_ENV: 'production', JWT_SECRET, DATABASE_URL: database.url, METRICS_PORT: '0' });
    const server = await startServer(env);
    try {
      const listening = server.logs().find((line) => line.msg === 'stateless-chat listening');
      const metricsUrl = String(listening?.metrics);
      expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect(new URL(metricsUrl).port).not.toBe(new URL(server.origin).port);

      const token = (await runCli(['token', 'metrics-port-user'], env)).stdout.trim();
      await send(new GraphQLClient(server.url, { headers: { authorization: `Bearer ${token}` } }), 'add a task to read the metrics');
      const scrape = await fetch(metricsUrl);
      expect(scrape.status).toBe(200);
      expect(scrape.headers.get('content-type')).toContain('text/plain');
      const text = await scrape.text();
      expect(text).toMatch(/^turns_total\{outcome="completed"\} 1$/m);
      expect(text).toMatch(/^tool_calls_total\{server="todo",name="add_task",outcome="ok"\} 1$/m);

      const onApi = await fetch(`${server.origin}/metrics`);
      expect(onApi.status).toBe(404);
      expect(await onApi.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
      const other = await fetch(new URL('/graphql', metricsUrl));
      expect(other.status).toBe(404);
      expect(await other.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
      expect(await server.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });
    } finally {
      await server.kill();
    }
  });

  it('with neither METRICS_PORT nor METRICS_TOKEN has no /metrics, and says so when it starts', async () => {
    const server = await startServer(serverEnv({ NODE_ENV: 'production', JWT_SECRET, DATABASE_URL: database.url }));
    try {
      expect((await fetch(`${server.origin}/metrics`)).status).toBe(404);
      const logs = server.logs();
      expect(logs.find((line) => line.msg.startsWith('metrics off'))?.msg).toContain('METRICS_PORT');
      expect(logs.find((line) => line.msg === 'stateless-chat listening')?.metrics).toBe('off');
      expect(await server.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });
    } finally {
      await server.kill();
    }
  });
});
