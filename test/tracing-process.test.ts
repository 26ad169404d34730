/**
 * Traces as an operator turns them on: `node dist/src/main.js` with OTEL_EXPORTER_OTLP_ENDPOINT
 * pointing at a small OTLP/HTTP receiver this test starts (the exporter sends JSON), so that
 * `src/tracing.ts` runs for real: the ESM hook, the http/express/graphql/pg instrumentations and
 * the batch exporter, flushed on SIGTERM. One turn with a tool call is one trace.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { send } from './support/graphql.js';
import { killAll, runCli, serverEnv, startServer } from './support/process.js';

const JWT_SECRET = 'tracing-process-secret-long-enough-for-hs256';

/** A span as OTLP/JSON carries it, its attributes flattened. */
type Received = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  attributes: Record<string, unknown>;
};
type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type OtlpBody = {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: OtlpValue }[] };
    scopeSpans?: { spans?: (Omit<Received, 'attributes'> & { attributes?: { key: string; value: OtlpValue }[] })[] }[];
  }[];
};

let database: TestDatabase;
let receiver: Server;
let endpoint: string;
const received: Received[] = [];
const services = new Set<unknown>();

beforeAll(async () => {
  database = await createTestDatabase();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpBody;
        for (const resource of body.resourceSpans ?? []) {
          services.add(flatten(resource.resource?.attributes)['service.name']);
          for (const scope of resource.scopeSpans ?? [])
            for (const span of scope.spans ?? []) received.push({ ...span, attributes: flatten(span.attributes) });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await killAll();
  await database?.drop();
  await new Promise((resolve) => receiver?.close(resolve));
});

function flatten(attributes: { key: string; value: OtlpValue }[] = []): Record<string, unknown> {
  return Object.fromEntries(
    attributes.map(({ key, value }) => [
      key,
      value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue)),
    ]),
  );
}

/** The trace of `root` as indented lines, children in start order, a few attributes shown. */
function tree(spans: Received[], root: Received, depth = 0): string[] {
  const shown = ['request.id', 'http.route', 'turn.outcome', 'tool.name', 'tool.is_error', 'graphql.operation.name', 'db.operation.name']
    .filter((key) => root.attributes[key] !== undefined)
    .map((key) => `${key}=${String(root.attributes[key])}`);
  const children = spans
    .filter((span) => span.parentSpanId === root.spanId)
    .sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
  return [
    `${'  '.repeat(depth)}${root.name}${shown.length ? ` (${shown.join(', ')})` : ''}`,
    ...children.flatMap((child) => tree(spans, child, depth + 1)),
  ];
}

describe('a server with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  it('exports a turn with a tool call as one trace: http server span, express, graphql, turn and its steps, tool.call, pg queries', async () => {
    const env = serverEnv({
      DATABASE_URL: database.url,
      JWT_SECRET,
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_SERVICE_NAME: 'chat-under-test',
    });
    const server = await startServer(env);
    const token = (await runCli(['token', 'tracer'], env)).stdout.trim();
    const client = new GraphQLClient(server.url, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'trace-process-1' } });
    await send(client, 'add a task to buy milk');
    // SIGTERM shuts the SDK down, which sends the spans still batched.
    expect(await server.stop('SIGTERM', 20_000)).toEqual({ code: 0, signal: null });

    expect([...services]).toEqual(['chat-under-test']);
    const turn = received.find((span) => span.name === 'turn' && span.attributes['request.id'] === 'trace-process-1');
    expect(turn, 'the turn span with the request id').toBeDefined();
    const spans = received.filter((span) => span.traceId === turn?.traceId);
    const root = spans.find((span) => span.parentSpanId === undefined || span.parentSpanId === '');
    expect(root?.kind, 'the root is a server span').toBe(2);
    expect(root?.attributes['request.id']).toBe('trace-process-1');
    const byName = (name: string, parent?: Received) =>
      spans.filter((span) => span.name === name && (parent === undefined || span.parentSpanId === parent.spanId));
    const child = (name: string, parent: Received) => {
      const [found] = byName(name, parent);
      expect(found, `${name} under ${parent.name}`).toBeDefined();
      return found as Received;
    };
    const t = turn as Received;
    for (const step of ['turn.begin', 'turn.context', 'turn.agent', 'turn.finish']) child(step, t);
    expect(child('tool.call', child('turn.agent', t)).attributes).toMatchObject({ 'tool.name': 'add_task', 'tool.is_error': false });
    const pg = (step: string) => spans.filter((span) => span.name.startsWith('pg.') && span.parentSpanId === child(step, t).spanId);
    expect(pg('turn.begin').length).toBeGreaterThan(0);
    expect(pg('turn.finish').length).toBeGreaterThan(0);
    // express's and graphql's spans hold the turn: the operation's execution is its parent.
    expect(spans.find((span) => span.spanId === t.parentSpanId)?.attributes['graphql.operation.name']).toBe('Send');
    expect(spans.some((span) => span.name.startsWith('middleware'))).toBe(true);
    expect(JSON.stringify(spans)).not.toContain('buy milk');
    process.stdout.write(`\n${tree(spans, root as Received).join('\n')}\n`);
  });
});
