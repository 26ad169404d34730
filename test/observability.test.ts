/**
 * What an operator sees: `GET /metrics` after a few turns (completed with a tool call, bad input,
 * busy, replayed, failed, an internal error), with the right labels and counts, behind
 * METRICS_TOKEN and with bounded labels; and the logs: one `turn` line per turn, the operation
 * name and error codes on the request line, the request id on an internal error's line, user ids
 * hashed unless LOG_USER_IDS=on. Everything goes through HTTP, on a real database.
 */
import { createHash } from 'node:crypto';
import type { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineAgent } from '../src/agent/offline.js';
import type { Agent, AgentInput } from '../src/agent/types.js';
import { createLogger } from '../src/log.js';
import { LABEL_VALUES_MAX } from '../src/metrics.js';
import { Gate } from './support/gate.js';
import { gqlError, SEND, send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';
import { until } from './support/wait.js';

const METRICS_TOKEN = 'metrics-token-for-tests';
/** The reply the test database refuses to store: the turn fails with an error it does not expect. */
const REFUSED = 'A reply the observability test refuses to store.';

/**
 * The offline agent as a model would be seen: it names its model and counts tokens (10 prompt, 5
 * completion a turn); it waits at the gate on "slow", fails once on "explode", and answers REFUSED
 * once to "refuse".
 */
class ObservedAgent implements Agent {
  readonly name = 'observed';
  readonly gate = new Gate();
  private readonly inner = new OfflineAgent();
  private readonly once = new Set<string>();

  async run(input: AgentInput) {
    const last = input.messages.at(-1);
    const text = last?.role === 'user' ? last.content : '';
    const first = !this.once.has(text);
    this.once.add(text);
    if (text.includes('explode') && first) throw new Error('model unreachable');
    if (text.includes('refuse') && first) return { content: REFUSED, model: 'test-model', usage: null };
    if (text.includes('slow')) await this.gate.hold();
    const reply = await this.inner.run(input);
    return { ...reply, model: 'test-model', usage: { promptTokens: 10, completionTokens: 5, totalTokens: 15 } };
  }
}

type Line = Record<string, unknown> & { msg: string };
type Sample = { name: string; labels: Record<string, string>; value: number };

const agent = new ObservedAgent();
/** Every line the app logged, parsed. */
const lines: Line[] = [];
const log = createLogger('info', { destination: { write: (line: string) => void lines.push(JSON.parse(line) as Line) } });
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ agent, log, env: { METRICS_TOKEN } });
  await server.db.query(`alter table message add constraint test_refused_reply check (content <> '${REFUSED}')`);
});

afterAll(async () => {
  await server?.close();
});

/** `GET /metrics` with the token, parsed into samples. */
async function scrape(): Promise<Sample[]> {
  const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return parseMetrics(await response.text());
}

function parseMetrics(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key as string] = value as string;
      return { name: match[1] as string, labels, value: Number(match[3]) };
    });
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));
  expect(found.length, `${name} ${JSON.stringify(labels)}: ${found.length} samples`).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

/** A GraphQL request through plain fetch, with our own request id. */
async function post(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as { errors?: { extensions?: { code?: string } }[] } };
}

const hashOf = (userId: string) => createHash('sha256').update(userId).digest('hex').slice(0, 16);

describe('GET /metrics after a few turns', () => {
  let client: GraphQLClient;
  let milk: Awaited<ReturnType<typeof send>>;

  beforeAll(async () => {
    client = await server.client('metrics-alice');
    // Completed, with one tool call (add_task on the todo server).
    milk = await send(client, 'add a task to buy milk', undefined, { clientMessageId: 'milk-1' });
    // Replayed: the same clientMessageId again.
    await send(client, 'add a task to buy milk', undefined, { clientMessageId: 'milk-1' });
    // Bad input: a blank message (answered with HTTP 200 and BAD_USER_INPUT).
    expect((await gqlError(client, SEND, { input: { message: '   ' } })).code).toBe('BAD_USER_INPUT');
    // Failed: the agent throws (UPSTREAM_ERROR).
    expect((await gqlError(client, SEND, { input: { message: 'please explode' } })).code).toBe('UPSTREAM_ERROR');
  });

  it('counts turns by outcome, tool calls by server, name and outcome, tokens by model and kind, phases by outcome', async () => {
    // Busy: a second message while a turn holds the conversation; then a request waits in its queue.
    const slow = send(client, 'add slow thing', milk.conversation.id);
    await agent.gate.untilHeld(1);
    expect((await gqlError(client, SEND, { input: { conversationId: milk.conversation.id, message: 'add second' } })).code).toBe(
      'CONVERSATION_BUSY',
    );
    const queued = send(client, 'add queued thing', milk.conversation.id, { ifBusy: 'ENQUEUE' });
    await until(async () => sample(await scrape(), 'turn_queue_waiters') === 1, 'one request counted in the queue');
    agent.gate.release();
    await Promise.all([slow, queued]);

    const samples = await scrape();
    expect(sample(samples, 'turns_total', { outcome: 'completed' })).toBe(3);
    expect(sample(samples, 'turns_total', { outcome: 'replayed' })).toBe(1);
    expect(sample(samples, 'turns_total', { outcome: 'bad_input' })).toBe(1);
    expect(sample(samples, 'turns_total', { outcome: 'failed' })).toBe(1);
    expect(sample(samples, 'turns_total', { outcome: 'busy' })).toBe(1);
    expect(sample(samples, 'turn_queue_waiters')).toBe(0);

    // Every phase of each completed turn, and the whole turn; a turn refused before step 4 ended has only its total.
    for (const phase of ['begin', 'context', 'model', 'tools', 'finish', 'total']) {
      expect(sample(samples, 'turn_duration_seconds_count', { phase, outcome: 'completed' }), phase).toBe(3);
    }
    expect(sample(samples, 'turn_duration_seconds_count', { phase: 'begin', outcome: 'bad_input' })).toBeUndefined();
    expect(sample(samples, 'turn_duration_seconds_count', { phase: 'total', outcome: 'bad_input' })).toBe(1);
    expect(sample(samples, 'turn_duration_seconds_count', { phase: 'finish', outcome: 'failed' })).toBe(1);

    // "add a task to buy milk", "add slow thing", "add queued thing": one add_task each.
    expect(sample(samples, 'tool_calls_total', { server: 'todo', name: 'add_task', outcome: 'ok' })).toBe(3);
    expect(sample(samples, 'tool_call_duration_seconds_count', { server: 'todo', name: 'add_task', outcome: 'ok' })).toBe(3);
    expect(sample(samples, 'model_tokens_total', { model: 'test-model', kind: 'prompt' })).toBe(30);
    expect(sample(samples, 'model_tokens_total', { model: 'test-model', kind: 'completion' })).toBe(15);
  });

  it('counts HTTP requests by route template and GraphQL operations by name, type and error code', async () => {
    await fetch(`${server.url}/api/metrics-alice/chat`, { method: 'POST' });
    const samples = await scrape();
    expect(sample(samples, 'graphql_operations_total', { operation: 'Send', type: 'mutation', code: 'none' })).toBe(4);
    expect(sample(samples, 'graphql_operations_total', { operation: 'Send', type: 'mutation', code: 'BAD_USER_INPUT' })).toBe(1);
    expect(sample(samples, 'graphql_operations_total', { operation: 'Send', type: 'mutation', code: 'CONVERSATION_BUSY' })).toBe(1);
    expect(sample(samples, 'graphql_operations_total', { operation: 'Send', type: 'mutation', code: 'UPSTREAM_ERROR' })).toBe(1);
    expect(sample(samples, 'http_requests_total', { method: 'POST', route: '/graphql', status: '200' })).toBeGreaterThanOrEqual(7);
    // The REST route by its template, never the URL with the user's id in it.
    const rest = samples.filter((s) => s.name === 'http_requests_total' && s.labels.route?.startsWith('/api'));
    expect(rest.map((s) => s.labels.route)).toEqual(['/api/:userId/chat']);
    expect(samples.some((s) => Object.values(s.labels).some((value) => value.includes('metrics-alice')))).toBe(false);
    expect(sample(samples, 'http_request_duration_seconds_count', { method: 'GET', route: '/metrics', status: '200' })).toBeGreaterThan(0);
  });

  it('reports the database pool, the event-loop delay and the subscribers', async () => {
    const samples = await scrape();
    expect(sample(samples, 'db_pool_connections', { state: 'in_use' })).toBeGreaterThanOrEqual(0);
    expect(sample(samples, 'db_pool_connections', { state: 'idle' })).toBeGreaterThanOrEqual(0);
    expect(sample(samples, 'db_pool_waiting')).toBe(0);
    // Since the previous scrape, which may have been a moment ago: present, not necessarily above 0.
    expect(sample(samples, 'eventloop_delay_seconds', { stat: 'p99' })).toBeGreaterThanOrEqual(0);
    expect(sample(samples, 'event_subscribers')).toBe(0);
    // The lease renewal's process-wide counts (lease-health.ts): present from the start, never negative.
    expect(sample(samples, 'lease_renewals_total', { kind: 'late' })).toBeGreaterThanOrEqual(0);
    expect(sample(samples, 'lease_renewals_total', { kind: 'lost' })).toBeGreaterThanOrEqual(0);
  });

  it('keeps operation names to a bounded set: past the cap, or not a name, they count as other', async () => {
    for (let batch = 0; batch < 15; batch++) {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          post({ query: `query Op${batch * 20 + i} { __typename }`, operationName: `Op${batch * 20 + i}` }),
        ),
      );
    }
    await post({ query: 'query { __typename }' });
    const operations = (await scrape()).filter((s) => s.name === 'graphql_operations_total');
    const names = new Set(operations.map((s) => s.labels.operation));
    expect(names.size).toBeLessThanOrEqual(LABEL_VALUES_MAX + 2); // the cap, other and anonymous
    expect(names.has('other')).toBe(true);
    expect(names.has('anonymous')).toBe(true);
    const counted = operations.filter((s) => s.labels.operation?.startsWith('Op') || s.labels.operation === 'other');
    expect(counted.reduce((sum, s) => sum + s.value, 0)).toBe(300);
  });

  it('answers 401 in JSON without the token, or with another', async () => {
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: METRICS_TOKEN }];
    for (const headers of attempts) {
      const response = await fetch(`${server.url}/metrics`, { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    }
  });
});

describe('the logs', () => {
  it('have one turn line per turn: conversation, turn, outcome, phases, tool calls, tokens, the user hashed', async () => {
    const client = await server.client('logs-bob');
    const done = await send(client, 'add a task to buy bread');
    const turn = lines.find((line) => line.msg === 'turn' && line.conversationId === done.conversation.id);
    expect(turn).toMatchObject({
      level: 30,
      outcome: 'completed',
      errorCode: null,
      userId: hashOf('logs-bob'),
      toolCalls: 1,
      model: 'test-model',
      tokens: { prompt: 10, completion: 5 },
      requestId: expect.any(String),
    });
    expect(Object.keys(turn?.phases as object)).toEqual(['begin', 'context', 'model', 'tools', 'finish']);
    expect(turn?.turnId).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(lines)).not.toContain('"logs-bob"');
  });

  it('name the operation and the error codes on the request line of a BAD_USER_INPUT answered with status 200', async () => {
    const token = await server.token('logs-bob');
    const requestId = 'obs-bad-input-1';
    const answered = await post(
      { query: SEND, operationName: 'Send', variables: { input: { message: ' ' } } },
      { authorization: `Bearer ${token}`, 'x-request-id': requestId },
    );
    expect(answered.status).toBe(200);
    expect(answered.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const request = lines.find((line) => line.msg === 'request' && line.requestId === requestId);
    expect(request).toMatchObject({
      method: 'POST',
      route: '/graphql',
      status: 200,
      operationName: 'Send',
      operationType: 'mutation',
      errorCodes: ['BAD_USER_INPUT'],
    });
    expect(lines.find((line) => line.msg === 'turn' && line.requestId === requestId)).toMatchObject({
      outcome: 'bad_input',
      errorCode: 'BAD_USER_INPUT',
    });
  });

  it('carry the request id on the line of an internal error in a resolver, with its stack', async () => {
    const token = await server.token('logs-bob');
    const requestId = 'obs-internal-1';
    const answered = await post(
      { query: SEND, variables: { input: { message: 'please refuse this' } } },
      { authorization: `Bearer ${token}`, 'x-request-id': requestId },
    );
    expect(answered.body.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    const internal = lines.filter((line) => line.msg === 'internal error in a GraphQL request');
    expect(internal.length).toBeGreaterThan(0);
    expect(internal.every((line) => line.requestId !== undefined)).toBe(true);
    const ours = internal.find((line) => line.requestId === requestId);
    expect(ours).toMatchObject({ level: 50, operationName: 'Send', path: ['sendMessage'] });
    expect(ours?.err).toMatchObject({ stack: expect.stringContaining('test_refused_reply') });
    expect(lines.find((line) => line.msg === 'turn' && line.requestId === requestId)).toMatchObject({
      outcome: 'error',
      errorCode: 'INTERNAL_SERVER_ERROR',
    });
    expect(lines.find((line) => line.msg === 'request' && line.requestId === requestId)).toMatchObject({
      errorCodes: ['INTERNAL_SERVER_ERROR'],
    });
  });

  it("keep an error's cause, an error or not", () => {
    const caught: Line[] = [];
    const own = createLogger('info', { destination: { write: (line: string) => void caught.push(JSON.parse(line) as Line) } });
    own.error({ err: new Error('outer', { cause: new Error('inner') }) }, 'one');
    own.error({ err: new Error('outer', { cause: { code: 'E_SOMETHING' } }) }, 'two');
    expect(caught[0]?.err).toMatchObject({ type: 'Error', message: 'outer', cause: { type: 'Error', message: 'inner' } });
    expect(caught[0]?.err).toMatchObject({ cause: { stack: expect.stringContaining('inner') } });
    expect(caught[1]?.err).toMatchObject({ message: 'outer', cause: { code: 'E_SOMETHING' } });
  });
});

describe('another instance with LOG_USER_IDS=on and METRICS=off', () => {
  let other: TestServer;
  const otherLines: Line[] = [];

  beforeAll(async () => {
    const otherLog = createLogger('info', { destination: { write: (line: string) => void otherLines.push(JSON.parse(line) as Line) } });
    other = await startTestServer({ database: server.database, log: otherLog, env: { LOG_USER_IDS: 'on', METRICS: 'off' } });
  });

  afterAll(async () => {
    await other?.close();
  });

  it('logs user ids as they are, and has no /metrics', async () => {
    const done = await send(await other.client('logs-carol'), 'add a task to buy eggs');
    expect(otherLines.find((line) => line.msg === 'turn' && line.conversationId === done.conversation.id)).toMatchObject({
      userId: 'logs-carol',
    });
    expect((await fetch(`${other.url}/metrics`)).status).toBe(404);
  });
});
