/**
 * Subscriptions when the server process stops: on SIGTERM the real server (`node dist/src/main.js`)
 * ends its subscriptions at once (WebSockets closed with 1001 "going away", SSE streams completed)
 * instead of waiting for them through SHUTDOWN_GRACE, and exits 0; clients resume elsewhere with `after:`.
 */
import { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventCursor } from '../src/graphql/event-types.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { send } from './support/graphql.js';
import { killAll, runCli, serverEnv, startServer } from './support/process.js';
import { type Stream, sseSubscribe, wsConnect } from './support/subscriptions.js';
import { until } from './support/wait.js';

const JWT_SECRET = 'subscriptions-process-secret-long-enough-for-hs256';
const EVENTS = /* GraphQL */ `
  subscription Events($id: ID!, $after: String) {
    conversationEvents(conversationId: $id, after: $after) { type position messageId }
  }
`;

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await killAll();
  await database?.drop();
});

describe('a server stopping', () => {
  it('on SIGTERM closes its WebSockets with 1001 and completes its SSE streams at once, then exits 0', async () => {
    const env = serverEnv({ DATABASE_URL: database.url, JWT_SECRET, SHUTDOWN_GRACE: '60000' });
    const server = await startServer(env);
    const token = (await runCli(['token', 'leaving'], env)).stdout.trim();
    const first = await send(new GraphQLClient(server.url, { headers: { authorization: `Bearer ${token}` } }), 'hello');
    const variables = { id: first.conversation.id, after: eventCursor(0) };
    const replayed = (stream: Stream) =>
      stream.results.some((result) => (result.data?.conversationEvents as { type: string } | undefined)?.type === 'TURN_COMPLETED');

    const socket = wsConnect({ url: server.origin }, token);
    const ws = socket.subscribe(EVENTS, variables);
    const sse = await sseSubscribe({ url: server.origin }, token, EVENTS, variables);
    try {
      await until(() => replayed(ws) && replayed(sse), 'both subscriptions to replay the turn');
      // Within 20 s, a third of SHUTDOWN_GRACE: nothing waits for the subscriptions to end by themselves.
      expect(await server.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });
      await until(() => socket.closed !== null && sse.state !== 'open', 'the clients to see the end');
      expect(socket.closed).toBe(1001);
      expect(sse.state).toBe('complete');
    } finally {
      await socket.dispose();
      sse.stop();
    }
  });
});
