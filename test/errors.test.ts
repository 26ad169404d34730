/**
 * Internal failures reach clients as INTERNAL_SERVER_ERROR, with no stack, SQL or table names;
 * request errors of GraphQL itself keep their own codes. Domain errors know no transport: they
 * are plain errors with a code that keep their cause, mapped by each transport in one place.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { GraphQLError } from 'graphql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Agent } from '../src/agent/types.js';
import { createChat, turnSettings } from '../src/chat/chat.js';
import { createEventHub } from '../src/chat/event-hub.js';
import { taskStore } from '../src/db/stores/tasks.js';
import { AppError, rateLimited } from '../src/errors.js';
import { formatError } from '../src/graphql/errors.js';
import { createLogger, type Logger } from '../src/log.js';
import { defined } from './support/defined.js';
import { postGraphQL } from './support/http.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

const post = (body: string | { query: string; variables?: Record<string, unknown> }, userId = 'eve') =>
  postGraphQL(server, body, { user: userId });

describe('errors', () => {
  it('masks a database failure as INTERNAL_SERVER_ERROR without SQL or stack', async () => {
    const db = new pg.Client({ connectionString: server.database.url });
    await db.connect();
    await db.query('alter table task rename to task_moved_away');
    try {
      const { text } = await post({ query: '{ tasks { edges { node { title } } } }' });
      const body = JSON.parse(text);
      expect(body.errors).toEqual([
        {
          message: 'Internal server error',
          locations: [{ line: 1, column: 3 }],
          path: ['tasks'],
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        },
      ]);
      expect(text).not.toMatch(/select|task_moved_away|relation|stack|\.ts:/i);
    } finally {
      await db.query('alter table task_moved_away rename to task');
      await db.end();
    }
  });

  it('keeps GraphQL validation and variable errors with their own codes', async () => {
    const invalid = JSON.parse((await post({ query: '{ nope }' })).text);
    expect(invalid.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const badVariable = JSON.parse(
      (await post({ query: 'query ($n: Int) { conversations(first: $n) { edges { cursor } } }', variables: { n: 'x' } })).text,
    );
    expect(badVariable.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('answers a body that is not JSON with 400 and a JSON error', async () => {
    const response = await post('{"query": ');
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text)).toEqual({ error: { code: 'BAD_REQUEST', message: expect.any(String) } });
  });
});

/** The module specifiers a TypeScript file imports or re-exports, statically or dynamically. */
function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s+['"]([^'"]+)['"]/gms,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  return patterns.flatMap((pattern) =>
    [...source.matchAll(pattern)].map((match) => defined(match[1], `the module specifier in ${match[0]}`)),
  );
}

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.join(dir, name));

describe('domain errors', () => {
  it('are defined and thrown below the transport without anything of GraphQL (graphql, type-graphql, Apollo, src/graphql)', () => {
    const files = ['src/errors.ts', ...['src/auth', 'src/chat', 'src/agent', 'src/mcp', 'src/db'].flatMap(filesUnder)];
    const imports = files.map((file) => ({ file, imports: importsOf(file) }));
    // The reader sees imports at all (a regex that matched nothing would pass vacuously).
    expect(imports.find(({ file }) => file === path.join('src/chat', 'turn.ts'))?.imports).toContain('../errors.js');
    const graphql = imports.flatMap(({ file, imports }) =>
      imports.filter((name) => /graphql|@apollo\//i.test(name)).map((name) => `${file}: ${name}`),
    );
    expect(graphql).toEqual([]);
  });

  it("keep the cause of a failed turn: the agent's error is the UPSTREAM_ERROR's `cause`", async () => {
    const failure = new Error('the model is down');
    const agent: Agent = {
      name: 'down',
      run: async () => {
        throw failure;
      },
    };
    const { config } = server;
    const chat = await createChat({
      agent,
      tools: {
        tasks: taskStore(server.app.orm.em.fork()),
        shared: () => [],
        limits: { timeoutMs: config.limits.toolTimeoutMs, maxResultBytes: config.limits.toolResultMaxBytes },
        todo: {},
      },
      settings: turnSettings(config),
      events: createEventHub({ log: createLogger('silent'), backlogMax: config.streamBacklogMax }),
      log: createLogger('silent'),
    });
    const error = await chat
      .sendMessage(server.app.orm.em.fork(), { userId: 'cause' }, { message: 'hello' })
      .catch((thrown: unknown) => thrown)
      .finally(() => chat.close());
    expect(error).toBeInstanceOf(AppError);
    expect(error).not.toBeInstanceOf(GraphQLError);
    expect(error).toMatchObject({ code: 'UPSTREAM_ERROR', cause: failure });
  });

  it('become { message, extensions: { code, ...details } } in GraphQL, and anything else is logged with its cause and masked', () => {
    const log = { error: vi.fn() } as unknown as Logger;
    const format = formatError(log, { hideSuggestions: false });
    const limited = rateLimited('Rate limit reached', 1500);
    const located = (original: Error) => new GraphQLError(original.message, { path: ['sendMessage'], originalError: original });
    expect(format({ message: limited.message, path: ['sendMessage'] }, located(limited))).toEqual({
      message: 'Rate limit reached',
      path: ['sendMessage'],
      extensions: { code: 'RATE_LIMITED', retryAfterMs: 1500 },
    });

    const bug = new Error('cannot read the row', { cause: new Error('connection reset') });
    expect(format({ message: bug.message, path: ['sendMessage'] }, located(bug))).toEqual({
      message: 'Internal server error',
      path: ['sendMessage'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(log.error).toHaveBeenCalledWith(expect.objectContaining({ err: bug }), 'internal error in a GraphQL request');
  });
});
