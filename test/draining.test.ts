/**
 * A stopping server drains (`App.drain()`, which `main.ts` calls on SIGTERM/SIGINT): `/readyz`
 * answers 503 `{"status":"draining"}` at once, so that a load balancer sends elsewhere, while
 * every other route goes on serving until the drain window ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

describe('draining', () => {
  it('turns /readyz to 503 {"status":"draining"} at once, and keeps serving turns, browses and /healthz', async () => {
    const client = await server.client('draining');
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    server.app.drain();

    const ready = await fetch(`${server.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([503, { status: 'draining' }]);
    const health = await fetch(`${server.url}/healthz`);
    expect([health.status, await health.json()]).toEqual([200, { status: 'ok' }]);
    const turn = await send(client, 'hello while draining');
    expect(turn.assistantMessage.status).toBe('COMPLETE');
    const browse = await client.request<{ conversations: { edges: { node: { id: string } }[] } }>(
      /* GraphQL */ `{ conversations(first: 5) { edges { node { id } } } }`,
    );
    expect(browse.conversations.edges.map((edge) => edge.node.id)).toEqual([turn.conversation.id]);
  });
});
