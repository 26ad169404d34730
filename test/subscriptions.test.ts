/**
 * `Subscription.conversationEvents` end to end, over both transports a client uses: graphql-ws on
 * a real WebSocket and graphql-sse on a real HTTP response, against the real event stream of a
 * real database. Each test runs its own turns with `sendMessage` (the offline agent) as a user of
 * its own, and waits for what it expects to arrive; nothing depends on another test or on speed.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { FormattedExecutionResult } from 'graphql';
import type { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { eventCursor } from '../src/graphql/event-types.js';
import { defined } from './support/defined.js';
import { type SendResult, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';
import { type Stream, sseSubscribe, subscribe, type Transport, wsConnect } from './support/subscriptions.js';
import { uniqueUser } from './support/users.js';
import { until } from './support/wait.js';

const EVENTS = /* GraphQL */ `
  subscription Events($id: ID!, $after: String) {
    conversationEvents(conversationId: $id, after: $after) {
      __typename
      cursor
      type
      position
      conversationId
      turnId
      messageId
      createdAt
      ... on TurnStartedEvent { userMessageId }
      ... on TextDeltaEvent { text }
      ... on ToolCallStartedEvent { callId server name arguments }
      ... on ToolCallFinishedEvent { toolCall { id callId name isError message { id } } }
      ... on TurnCompletedEvent { message { id content status conversation { id messageCount } } }
      ... on TurnFailedEvent { code error failedMessage: message { id status } }
    }
  }
`;

type Event = {
  __typename: string;
  cursor: string;
  type: string;
  position: number;
  conversationId: string;
  turnId: string;
  messageId: string;
  createdAt: string;
  userMessageId?: string;
  text?: string;
  callId?: string;
  name?: string;
  toolCall?: { id: string; callId: string; name: string; isError: boolean; message: { id: string } };
  message?: { id: string; content: string; status: string; conversation: { id: string; messageCount: number } };
};

type Turn = SendResult['sendMessage'];

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

/** The events a stream received, in the order received. */
const eventsOf = (stream: Stream): Event[] =>
  stream.results.flatMap((result: FormattedExecutionResult) =>
    result.data?.conversationEvents ? [result.data.conversationEvents as Event] : [],
  );

const completed = (stream: Stream, turn: Turn) =>
  eventsOf(stream).some((event) => event.type === 'TURN_COMPLETED' && event.messageId === turn.assistantMessage.id);

const codesOf = (stream: Stream) => stream.errors.map((error) => error.extensions?.code);

/** The text of an event stream, read until `enough` says so. */
async function readUntil(response: Response, enough: (text: string) => boolean): Promise<string> {
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    if (enough(text)) break;
  }
  return text;
}

function hasCurl(): boolean {
  return spawnSync('curl', ['--version']).status === 0;
}

/** A user with a conversation of one finished turn ("hello"). */
async function conversationWithATurn(
  name: string,
): Promise<{ user: string; client: GraphQLClient; token: string; first: Turn; id: string }> {
  const user = uniqueUser(name);
  const client = await server.client(user);
  const first = await send(client, 'hello');
  return { user, client, token: await server.token(user), first, id: first.conversation.id };
}

/** Checks one turn's events: TURN_STARTED first, TURN_COMPLETED last, the TEXT_DELTAs spelling the stored reply. */
async function expectTurn(events: Event[], turn: Turn): Promise<Event[]> {
  const own = events.filter((event) => event.messageId === turn.assistantMessage.id);
  const first = defined(own[0], 'the turn’s first event');
  const last = defined(own.at(-1), 'the turn’s last event');
  expect(first).toMatchObject({ __typename: 'TurnStartedEvent', type: 'TURN_STARTED', userMessageId: turn.userMessage.id });
  expect(last).toMatchObject({ __typename: 'TurnCompletedEvent', type: 'TURN_COMPLETED' });
  expect(new Set(own.map((event) => event.turnId)).size).toBe(1);
  const deltas = own.filter((event) => event.type === 'TEXT_DELTA');
  expect(deltas.length).toBeGreaterThan(0);
  const text = deltas.map((event) => event.text).join('');
  // The reply as the mutation answered it, as a query reads it back, and as stored.
  expect(text).toBe(turn.assistantMessage.content);
  const { rows } = await server.db.query<{ content: string; status: string }>('select content, status from message where id = $1', [
    turn.assistantMessage.id,
  ]);
  expect(rows).toEqual([{ content: text, status: 'complete' }]);
  expect(last.message).toMatchObject({ id: turn.assistantMessage.id, content: text, status: 'COMPLETE' });
  return own;
}

describe.each<Transport>(['ws', 'sse'])('conversationEvents over %s', (transport) => {
  it('replays the stored events after: a cursor, then streams a live turn: TURN_STARTED, tool calls, TEXT_DELTAs spelling the stored reply, TURN_COMPLETED, in position order', async () => {
    const { client, token, first, id } = await conversationWithATurn(`events-${transport}`);
    const stream = await subscribe(transport, server, token, EVENTS, { id, after: eventCursor(0) });
    try {
      await until(() => completed(stream, first), 'the first turn’s events, replayed from the database');
      const second = await send(client, 'add buy milk', id);
      await until(() => completed(stream, second), 'the second turn’s events, live');
      expect(stream.errors).toEqual([]);

      const events = eventsOf(stream);
      expect(events.map((event) => event.position)).toEqual(events.map((_, i) => i + 1));
      expect(new Set(events.map((event) => event.cursor)).size).toBe(events.length);
      expect(events.every((event) => event.conversationId === id)).toBe(true);
      await expectTurn(events, first);
      const own = await expectTurn(events, second);
      const reply = await client.request<{ message: { content: string } }>('query($id: ID!) { message(id: $id) { content } }', {
        id: second.assistantMessage.id,
      });
      expect(
        own
          .filter((event) => event.type === 'TEXT_DELTA')
          .map((event) => event.text)
          .join(''),
      ).toBe(reply.message.content);

      // The tool call of "add buy milk": asked for, then its stored record.
      const started = own.find((event) => event.type === 'TOOL_CALL_STARTED');
      const finished = own.find((event) => event.type === 'TOOL_CALL_FINISHED');
      expect(started).toMatchObject({ __typename: 'ToolCallStartedEvent', name: 'add_task' });
      expect(finished?.toolCall).toMatchObject({ callId: started?.callId, name: 'add_task', isError: false });
      expect(finished?.toolCall?.message.id).toBe(second.assistantMessage.id);
      expect(second.toolCalls.map((call) => call.callId)).toEqual([started?.callId]);

      // Each event is resolved with fresh loaders: the conversation as it is at that event, not as an earlier one loaded it.
      const completions = events.filter((event) => event.type === 'TURN_COMPLETED');
      expect(completions.map((event) => event.message?.conversation.messageCount)).toEqual([2, 4]);
    } finally {
      await stream.dispose();
    }
  });

  it('resumes after: a cursor received, from the database, with no gap and no duplicate', async () => {
    const { client, token, id } = await conversationWithATurn(`resume-${transport}`);
    const second = await send(client, 'add buy bread', id);
    const all = await subscribe(transport, server, token, EVENTS, { id, after: eventCursor(0) });
    await until(() => completed(all, second), 'both turns’ events');
    await all.dispose();
    const events = eventsOf(all);
    const middle = defined(events[Math.floor(events.length / 2)], 'an event in the middle');

    const resumed = await subscribe(transport, server, token, EVENTS, { id, after: middle.cursor });
    try {
      await until(() => completed(resumed, second), 'the events after the cursor');
      expect(eventsOf(resumed)).toEqual(events.slice(middle.position));
      expect(eventsOf(resumed)[0]?.position).toBe(middle.position + 1);
    } finally {
      await resumed.dispose();
    }
  });

  it('streams only new events without after:', async () => {
    const { client, token, id } = await conversationWithATurn(`live-${transport}`);
    const stream = await subscribe(transport, server, token, EVENTS, { id });
    try {
      // The subscription is being set up while the first turn runs; turns go on until one is seen whole.
      const turns: Turn[] = [];
      await until(
        async () => {
          if (turns.some((turn) => completed(stream, turn))) return true;
          turns.push(await send(client, `add task ${turns.length + 1}`, id));
          return false;
        },
        'a turn streamed live',
        { ms: 30_000 },
      );
      const events = eventsOf(stream);
      // Nothing of the turn before the subscription (positions 1..n of "hello"), then a contiguous run.
      const firstPosition = defined(events[0], 'an event').position;
      expect(firstPosition).toBeGreaterThan(1);
      expect(events.map((event) => event.position)).toEqual(events.map((_, i) => firstPosition + i));
      expect(events.some((event) => event.messageId === turns[0]?.userMessage.id)).toBe(false);
    } finally {
      await stream.dispose();
    }
  });

  it('answers NOT_FOUND for another user’s conversation, and streams nothing of it', async () => {
    const { id, client } = await conversationWithATurn(`owner-${transport}`);
    const stranger = await server.token(uniqueUser(`stranger-${transport}`));
    const stream = await subscribe(transport, server, stranger, EVENTS, { id, after: eventCursor(0) });
    try {
      await until(() => stream.state !== 'open', 'the subscription to end');
      await send(client, 'add something', id);
      expect(codesOf(stream)).toEqual(['NOT_FOUND']);
      expect(eventsOf(stream)).toEqual([]);
    } finally {
      await stream.dispose();
    }
  });

  it('answers BAD_USER_INPUT for a malformed cursor or id', async () => {
    const { token, id } = await conversationWithATurn(`cursor-${transport}`);
    for (const variables of [
      { id, after: 'not-a-cursor' },
      { id, after: Buffer.from(JSON.stringify(['message', 1])).toString('base64url') },
      { id: 'not-a-uuid' },
    ]) {
      const stream = await subscribe(transport, server, token, EVENTS, variables);
      await until(() => stream.state !== 'open', 'the subscription to end');
      expect(codesOf(stream), JSON.stringify({ variables, stream })).toEqual(['BAD_USER_INPUT']);
      expect(eventsOf(stream)).toEqual([]);
      await stream.dispose();
    }
  });

  it('keeps the query limits: a document too deep, or not a subscription, is refused before it runs', async () => {
    const { token, id } = await conversationWithATurn(`limits-${transport}`);
    const deep = `subscription($id: ID!) { conversationEvents(conversationId: $id) { ... on TurnCompletedEvent { message { conversation { lastMessage { conversation { lastMessage { conversation { lastMessage { conversation { lastMessage { conversation { lastMessage { id } } } } } } } } } } } } } }`;
    const tooDeep = await subscribe(transport, server, token, deep, { id });
    await until(() => tooDeep.state !== 'open', 'the refusal');
    expect(tooDeep.errors.map((error) => [error.extensions?.code, error.extensions?.limit])).toEqual([
      ['GRAPHQL_VALIDATION_FAILED', 'depth'],
    ]);
    await tooDeep.dispose();

    const query = await subscribe(transport, server, token, '{ viewer { id } }');
    await until(() => query.state !== 'open', 'the refusal');
    expect(query.errors.map((error) => [error.extensions?.code, error.extensions?.limit])).toEqual([
      ['GRAPHQL_VALIDATION_FAILED', 'operationType'],
    ]);
    expect(query.results.filter((result) => result.data)).toEqual([]);
    await query.dispose();
  });
});

describe('WebSocket authentication', () => {
  it('closes with 4401 without a token, or with a bad one, and runs nothing', async () => {
    const { id } = await conversationWithATurn('ws-auth');
    for (const connection of [
      wsConnect(server, null),
      wsConnect(server, 'not-a-jwt'),
      wsConnect(server, null, { params: { Authorization: 'Basic dXNlcjpwYXNz' } }),
    ]) {
      const stream = connection.subscribe(EVENTS, { id, after: eventCursor(0) });
      await until(() => connection.closed !== null, 'the socket to close');
      expect(connection.closed).toBe(4401);
      expect(stream.results).toEqual([]);
      await connection.dispose();
    }
  });

  it('takes the token from the connection_init payload (either case) or from the upgrade request’s Authorization header', async () => {
    const { user, token, first, id } = await conversationWithATurn('ws-token-places');
    for (const connection of [
      wsConnect(server, null, { params: { authorization: `Bearer ${token}` } }),
      wsConnect(server, null, { headerToken: await server.token(user) }),
    ]) {
      const stream = connection.subscribe(EVENTS, { id, after: eventCursor(0) });
      await until(() => completed(stream, first), 'the replayed turn');
      expect(connection.closed).toBeNull();
      await connection.dispose();
    }
  });
});

describe('plain HTTP', () => {
  it('refuses a subscription sent as a plain POST (no event stream asked for): nothing runs', async () => {
    const { token, id } = await conversationWithATurn('plain-post');
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: EVENTS, variables: { id } }),
    });
    const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
    expect(response.status).toBe(400);
    expect(body.errors?.map((error) => error.extensions)).toEqual([{ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'operationType' }]);
  });
});

describe('SSE authentication', () => {
  it('answers 401 with a JSON error without a valid token, and streams nothing', async () => {
    const { id } = await conversationWithATurn('sse-auth');
    for (const token of [null, 'not-a-jwt']) {
      const stream = await sseSubscribe(server, token, EVENTS, { id, after: eventCursor(0) });
      expect(stream.status).toBe(401);
      expect(stream.body).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
      expect(stream.results).toEqual([]);
    }
  });

  it('takes any Accept that lists text/event-stream, and opens the stream with a keep-alive comment', async () => {
    const { token, first, id } = await conversationWithATurn('sse-accept');
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: {
        accept: 'application/json;q=0.5, text/event-stream',
        'content-type': 'application/json',
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query: EVENTS, variables: { id, after: eventCursor(0) } }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await readUntil(response, (read) => read.includes('TURN_COMPLETED') && read.includes(first.assistantMessage.id));
    expect(text.startsWith(':\n\n')).toBe(true);
    expect(text).toContain('event: next\ndata: {"data":{"conversationEvents":{"__typename":"TurnStartedEvent"');
  });

  it.skipIf(!hasCurl())('serves the README’s curl -N example', async () => {
    const { token, first, id } = await conversationWithATurn('sse-curl');
    const query =
      'subscription($id: ID!, $after: String) { conversationEvents(conversationId: $id, after: $after) { cursor type position ... on TextDeltaEvent { text } } }';
    const curl = spawn('curl', [
      '-N',
      '-sS',
      `${server.url}/graphql`,
      '-H',
      `Authorization: Bearer ${token}`,
      '-H',
      'Accept: text/event-stream',
      '-H',
      'Content-Type: application/json',
      '-d',
      JSON.stringify({ query, variables: { id, after: eventCursor(0) } }),
    ]);
    let out = '';
    curl.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    try {
      await until(() => out.includes('"type":"TURN_COMPLETED"'), 'curl to print the turn’s events');
      const events = out
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map(
          (line) =>
            (JSON.parse(line.slice(6)) as { data: { conversationEvents: { type: string; text?: string } } }).data.conversationEvents,
        );
      expect(events[0]?.type).toBe('TURN_STARTED');
      expect(events.map((event) => event.text ?? '').join('')).toBe(first.assistantMessage.content);
    } finally {
      curl.kill();
    }
  });
});

describe('caps and token expiry', () => {
  let capped: TestServer;

  beforeAll(async () => {
    capped = await startTestServer({
      env: { SUBSCRIPTIONS_PER_CONNECTION: '2', SUBSCRIPTIONS_PER_USER: '3', JWT_CLOCK_TOLERANCE: '0' },
      database: server.database,
    });
  });

  afterAll(async () => {
    await capped?.close();
  });

  it('refuses a subscription over the cap of a connection or of a user with TOO_MANY_SUBSCRIPTIONS, and takes one again once another ends', async () => {
    const user = uniqueUser('caps');
    const client = await capped.client(user);
    const first = await send(client, 'hello');
    const id = first.conversation.id;
    const token = await capped.token(user);
    const variables = { id, after: eventCursor(0) };
    const live = (stream: Stream) => completed(stream, first);

    const one = wsConnect(capped, token);
    const two = wsConnect(capped, token);
    try {
      const a = one.subscribe(EVENTS, variables);
      const b = one.subscribe(EVENTS, variables);
      await until(() => live(a) && live(b), 'two subscriptions on one connection');
      const c = one.subscribe(EVENTS, variables);
      await until(() => c.state !== 'open', 'the third on that connection to be refused');
      expect(codesOf(c)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);
      expect(eventsOf(c)).toEqual([]);

      const d = two.subscribe(EVENTS, variables);
      await until(() => live(d), 'a third subscription of the user, on another connection');
      const e = two.subscribe(EVENTS, variables);
      await until(() => e.state !== 'open', 'the fourth of the user to be refused');
      expect(codesOf(e)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);
      // SSE counts among the user's subscriptions as well.
      const sse = await sseSubscribe(capped, token, EVENTS, variables);
      await until(() => sse.state !== 'open', 'the SSE subscription to be refused');
      expect(codesOf(sse)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);

      // Another user is not counted with this one.
      const other = await capped.token(uniqueUser('caps-other'));
      const theirs = await sseSubscribe(capped, other, EVENTS, variables);
      await until(() => theirs.state !== 'open', 'the other user’s subscription to end');
      expect(codesOf(theirs)).toEqual(['NOT_FOUND']);

      // Unsubscribing gives the slot back.
      a.stop();
      let again: Stream | undefined;
      await until(() => {
        if (again && live(again)) return true;
        if (again?.state !== 'open') again = two.subscribe(EVENTS, variables);
        return false;
      }, 'a subscription accepted once one ended');
    } finally {
      await one.dispose();
      await two.dispose();
    }
  });

  it('closes a WebSocket with 4401 when its token expires', async () => {
    const user = uniqueUser('expiry');
    const first = await send(await capped.client(user), 'hello');
    const sign = defined(capped.app.auth.sign, 'a server that signs tokens');
    const token = await sign(user, '3s');
    const connection = wsConnect(capped, token);
    try {
      const stream = connection.subscribe(EVENTS, { id: first.conversation.id, after: eventCursor(0) });
      await until(() => completed(stream, first), 'the events before the token expires');
      // About time passing: the token's three seconds.
      await until(() => connection.closed !== null, 'the socket to close as the token expires', { ms: 20_000 });
      expect(connection.closed).toBe(4401);
    } finally {
      await connection.dispose();
    }
  });

  it('ends an SSE stream with UNAUTHENTICATED as its last result when its token expires', async () => {
    const user = uniqueUser('expiry-sse');
    const first = await send(await capped.client(user), 'hello');
    const token = await defined(capped.app.auth.sign, 'a server that signs tokens')(user, '3s');
    const stream = await sseSubscribe(capped, token, EVENTS, { id: first.conversation.id, after: eventCursor(0) });
    try {
      await until(() => completed(stream, first), 'the events before the token expires');
      // About time passing: the token's three seconds.
      await until(() => stream.state !== 'open', 'the stream to end as the token expires', { ms: 20_000 });
      expect(codesOf(stream)).toEqual(['UNAUTHENTICATED']);
      expect(stream.state).toBe('complete');
    } finally {
      stream.stop();
    }
  });
});

describe('slow consumers and silent connections', () => {
  let slow: TestServer;

  beforeAll(async () => {
    slow = await startTestServer({
      // One subscription per user: whether the one under test still holds its slot is seen from outside.
      env: { STREAM_BACKLOG_MAX: '1', SUBSCRIPTIONS_PER_USER: '1', SUBSCRIPTION_HEARTBEAT: '300' },
      database: server.database,
    });
  });

  afterAll(async () => {
    await slow?.close();
  });

  /** Resolves once `token`'s user holds no subscription on `slow`: a new one is no longer refused for the cap. */
  const slotFreed = (token: string, id: string) =>
    until(
      async () => {
        const probe = await sseSubscribe(slow, token, 'subscription($id: ID!) { conversationEvents(conversationId: $id) { position } }', {
          id,
        });
        // A refusal comes as the stream's only result; an accepted probe streams nothing yet.
        await until(() => probe.state !== 'open' || probe.results.length > 0 || probe.status !== 200, 'the probe’s answer', {
          ms: 500,
        }).catch(() => undefined);
        const refused = probe.errors.some((error) => error.extensions?.code === 'TOO_MANY_SUBSCRIPTIONS');
        probe.stop();
        return !refused;
      },
      'the subscription’s slot to be given back',
      { ms: 60_000, everyMs: 100 },
    );

  it('ends an SSE stream the client does not read with SLOW_CONSUMER as its last result; the client resumes after: its last cursor, with no gap', async () => {
    const user = uniqueUser('slow-sse');
    const client = await slow.client(user);
    // Six turns whose user messages are 30,000 three-byte characters: replayed with every message
    // of the conversation five times over, more than the kernel's socket buffers hold (MBs).
    const big = '字'.repeat(30_000);
    const first = await send(client, big);
    const id = first.conversation.id;
    const turns = [first];
    for (let i = 1; i < 6; i++) turns.push(await send(client, big, id));
    const last = defined(turns.at(-1), 'the last turn');
    const heavy = `
      subscription($id: ID!, $after: String) {
        conversationEvents(conversationId: $id, after: $after) {
          cursor type position messageId
          ... on TurnCompletedEvent { message { conversation {
            a: messages(first: 100) { edges { node { content } } }
            b: messages(first: 100) { edges { node { content } } }
            c: messages(first: 100) { edges { node { content } } }
            d: messages(first: 100) { edges { node { content } } }
            e: messages(first: 100) { edges { node { content } } }
          } } }
        }
      }`;
    const token = await slow.token(user);
    const stream = await sseSubscribe(slow, token, heavy, { id, after: eventCursor(0) }, { paused: true });
    expect(stream.status).toBe(200);
    await slotFreed(token, id);

    // Now read what the server had sent: events from position 1 without a gap, then the error, then the end.
    await defined(stream.read, 'a paused stream').call(stream);
    const events = eventsOf(stream);
    expect(events.length).toBeGreaterThan(0);
    expect(events.map((event) => event.position)).toEqual(events.map((_, i) => i + 1));
    expect(completed(stream, last)).toBe(false);
    expect(codesOf(stream)).toEqual(['SLOW_CONSUMER']);
    expect(stream.results.at(-1)?.errors?.[0]?.extensions?.code).toBe('SLOW_CONSUMER');
    expect(stream.state).toBe('complete');

    // The client resumes from its last cursor until it has the last turn (again if refused while its
    // slot is being given back, or dropped again: this server's backlog limit is one byte).
    const received = [...events];
    const codes = new Set<unknown>();
    await until(
      async () => {
        const resumed = await sseSubscribe(slow, token, EVENTS, { id, after: defined(received.at(-1), 'an event').cursor });
        await until(() => resumed.state !== 'open' || completed(resumed, last), 'the resumed stream');
        resumed.stop();
        received.push(...eventsOf(resumed));
        for (const code of codesOf(resumed)) codes.add(code);
        return received.some((event) => event.type === 'TURN_COMPLETED' && event.messageId === last.assistantMessage.id);
      },
      'the rest of the events',
      { ms: 60_000 },
    );
    expect(received.map((event) => event.position)).toEqual(received.map((_, i) => i + 1));
    expect([...codes].filter((code) => code !== 'TOO_MANY_SUBSCRIPTIONS' && code !== 'SLOW_CONSUMER')).toEqual([]);
  });

  it('sends an SSE stream a keep-alive comment every SUBSCRIPTION_HEARTBEAT ms while nothing happens', async () => {
    const user = uniqueUser('sse-heartbeat');
    const first = await send(await slow.client(user), 'hello');
    const response = await fetch(`${slow.url}/graphql`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${await slow.token(user)}` },
      body: JSON.stringify({ query: EVENTS, variables: { id: first.conversation.id } }),
    });
    // About time passing: three heartbeats of 300 ms, and no event (no turn runs). Leaving the loop cancels the response.
    const text = await readUntil(response, (read) => read.split(':\n\n').length > 4);
    expect(text.replaceAll(':\n\n', '')).toBe('');
  });

  it('cuts a WebSocket that stops answering pings, and gives its subscriptions back', async () => {
    const user = uniqueUser('silent-ws');
    const first = await send(await slow.client(user), 'hello');
    const token = await slow.token(user);
    let socket: WebSocket | undefined;
    const connection = wsConnect(slow, token, {
      onSocket: (opened) => {
        socket = opened;
      },
    });
    try {
      const stream = connection.subscribe(EVENTS, { id: first.conversation.id, after: eventCursor(0) });
      await until(() => completed(stream, first), 'the replayed turn');
      // The client stops reading: pings go unanswered. About time passing: two heartbeats of 300 ms.
      defined(socket, 'the client’s socket').pause();
      await slotFreed(token, first.conversation.id);
      socket?.resume();
      await until(() => connection.closed !== null, 'the client to see its connection cut');
      expect(connection.closed).toBe(1006);
    } finally {
      await connection.dispose();
    }
  });
});
