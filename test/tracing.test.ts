/**
 * Traces, as a collector would receive them: a turn with a tool call through HTTP is one trace,
 * the http server span (with the request id) above a `turn` span whose children are its steps,
 * `tool.call` under `turn.agent`, a `model.call` per model request with the OpenAI agent, and
 * pg's query spans under the steps that run them.
 *
 * The SDK here is the test's own: a `TracerProvider` with an in-memory exporter, and the http
 * and pg instrumentations (with `tracing.ts`'s hooks) registered programmatically before the app's modules are imported
 * (they are imported dynamically below, so that `pg`, `http` and `express` load patched; vitest
 * runs each file in its own process). `src/tracing.ts` itself, with the ESM hook and the OTLP
 * exporter, is run by `test/tracing-process.test.ts` in a child `node dist/src/main.js`.
 */
import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { userRef } from '../src/log.js';
import { redactedSql, redactQuery, startTracing, tagRequestId } from '../src/tracing.js';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);
registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [
    new HttpInstrumentation({ applyCustomAttributesOnSpan: tagRequestId }),
    new PgInstrumentation({ requireParentSpan: true, requestHook: redactQuery }),
  ],
});

// Imported only now: the modules they load are patched as they load.
const { GraphQLClient } = await import('graphql-request');
const { fakeModelAgent, reply, startFakeOpenAi, SwitchAgent, toolCalls, usage } = await import('./support/fake-openai.js');
const { SEND } = await import('./support/graphql.js');
const { startTestServer } = await import('./support/server.js');

type FakeOpenAi = Awaited<ReturnType<typeof startFakeOpenAi>>;
type TestServer = Awaited<ReturnType<typeof startTestServer>>;

const agent = new SwitchAgent();
let server: TestServer;
let fake: FakeOpenAi;

beforeAll(async () => {
  fake = await startFakeOpenAi();
  server = await startTestServer({ agent });
});

afterAll(async () => {
  await server?.close();
  await fake?.close();
  await provider.shutdown();
});

beforeEach(() => {
  exporter.reset();
});

/** Sends `message` as `userId` with the request id `requestId`, through HTTP. */
async function sendAs(userId: string, requestId: string, message: string) {
  const client = new GraphQLClient(`${server.url}/graphql`, {
    headers: { authorization: `Bearer ${await server.token(userId)}`, 'x-request-id': requestId },
  });
  return client.request(SEND, { input: { message } });
}

/** The finished spans, and a way to find one span's children by name. */
function spans() {
  const all = exporter.getFinishedSpans();
  const named = (name: string, parent?: ReadableSpan) =>
    all.filter((span) => span.name === name && (parent === undefined || span.parentSpanContext?.spanId === parent.spanContext().spanId));
  const one = (name: string, parent?: ReadableSpan): ReadableSpan => {
    const found = named(name, parent);
    expect(
      found.map((span) => span.name),
      `one ${name} span${parent ? ` under ${parent.name}` : ''}`,
    ).toEqual([name]);
    return found[0] as ReadableSpan;
  };
  return { all, named, one };
}

/** The tree of `root`'s trace as indented lines (`name attributes`), children in start order. */
function tree(all: ReadableSpan[], root: ReadableSpan, depth = 0): string[] {
  const children = all
    .filter((span) => span.parentSpanContext?.spanId === root.spanContext().spanId)
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
  return [`${'  '.repeat(depth)}${root.name}`, ...children.flatMap((child) => tree(all, child, depth + 1))];
}

describe('traces', () => {
  it('are off unless OTEL_EXPORTER_OTLP_ENDPOINT is set, which must be an http(s) URL', async () => {
    const off = loadConfig({ NODE_ENV: 'test' }).tracing;
    expect(off).toEqual({ endpoint: undefined, serviceName: 'stateless-chat' });
    expect(await startTracing(off)).toBeNull();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SERVICE_NAME: 'chat-eu' }).tracing).toEqual({
      endpoint: 'http://collector:4318',
      serviceName: 'chat-eu',
    });
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  });

  it('show statements without their values', () => {
    expect(redactedSql(`insert into "message" ("content", "seq") values ('it''s milk', 2), (E'a\\'b', $1) returning "id"`)).toBe(
      `insert into "message" ("content", "seq") values (?, 2), (?, $1) returning "id"`,
    );
  });

  it('make a turn with a tool call one trace: http, turn, its four steps, tool.call under turn.agent, pg under the steps', async () => {
    agent.inner = new (await import('../src/agent/offline.js')).OfflineAgent();
    await sendAs('trace-alice', 'trace-offline-1', 'add a task to buy milk');

    const { all, one } = spans();
    const turn = one('turn');
    expect(turn.attributes).toMatchObject({
      'request.id': 'trace-offline-1',
      'turn.outcome': 'completed',
      'turn.tool_calls': 1,
      'conversation.id': expect.any(String),
      'turn.id': expect.any(String),
    });
    expect(turn.attributes['enduser.ref']).toBe(userRef('trace-alice', false));
    const traceId = turn.spanContext().traceId;
    expect(new Set(all.filter((span) => span.spanContext().traceId === traceId).map((span) => span.name))).toContain('turn');

    const steps = all
      .filter((span) => span.parentSpanContext?.spanId === turn.spanContext().spanId && span.name.startsWith('turn.'))
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
    expect(steps.map((span) => span.name)).toEqual(['turn.begin', 'turn.context', 'turn.agent', 'turn.finish']);
    const toolCall = one('tool.call', one('turn.agent', turn));
    expect(toolCall.attributes).toMatchObject({ 'tool.server': 'todo', 'tool.name': 'add_task', 'tool.is_error': false });
    // Neither the message nor the user id in clear, in any span (pg statements included).
    for (const span of all.filter((s) => s.spanContext().traceId === traceId)) {
      expect(JSON.stringify(span.attributes)).not.toContain('buy milk');
      expect(JSON.stringify(span.attributes)).not.toContain('trace-alice');
    }

    // The trace's root is the http server span of the request, with its id; pg spans hang under the steps.
    const byId = new Map(all.map((span) => [span.spanContext().spanId, span]));
    let root = turn;
    for (let parent = byId.get(turn.parentSpanContext?.spanId ?? ''); parent; parent = byId.get(parent.parentSpanContext?.spanId ?? ''))
      root = parent;
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.kind).toBe(SpanKind.SERVER);
    expect(root.attributes['request.id']).toBe('trace-offline-1');
    for (const step of ['turn.begin', 'turn.finish']) {
      const under = all.filter(
        (span) => span.name.startsWith('pg.query') && span.parentSpanContext?.spanId === one(step, turn).spanContext().spanId,
      );
      expect(under.length, `pg spans under ${step}`).toBeGreaterThan(0);
    }
    process.stdout.write(`\n${tree(all, root).join('\n')}\n`);
  });

  it('give each model request of the OpenAI agent a model.call span, the tool call between them', async () => {
    agent.inner = fakeModelAgent(fake);
    fake.reset();
    fake.script(
      toolCalls([{ id: 'call_add_1', name: 'add_task', arguments: '{"title":"buy milk"}' }], { usage: usage(20, 10) }),
      reply('Added "buy milk".', { usage: usage(30, 5) }),
    );
    await sendAs('trace-bob', 'trace-model-1', 'add a task to buy milk');

    const { one, named } = spans();
    const turn = one('turn');
    expect(turn.attributes).toMatchObject({ 'request.id': 'trace-model-1', 'turn.outcome': 'completed', 'gen_ai.usage.input_tokens': 50 });
    const agentStep = one('turn.agent', turn);
    const calls = named('model.call')
      .filter((span) => span.spanContext().traceId === turn.spanContext().traceId)
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
    expect(calls.map((span) => span.attributes)).toEqual([
      expect.objectContaining({
        'gen_ai.request.model': 'fake-model',
        'gen_ai.response.finish_reason': 'tool_calls',
        'gen_ai.usage.input_tokens': 20,
      }),
      expect.objectContaining({
        'gen_ai.request.model': 'fake-model',
        'gen_ai.response.finish_reason': 'stop',
        'gen_ai.usage.input_tokens': 30,
      }),
    ]);
    for (const call of calls) expect(call.parentSpanContext?.spanId).toBe(agentStep.spanContext().spanId);
    expect(one('tool.call', agentStep).attributes['tool.name']).toBe('add_task');
  });
});
