/**
 * Traces with OpenTelemetry, exported by OTLP over HTTP (JSON), and off unless
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set: then no SDK module is even loaded, and the spans the
 * code starts through `@opentelemetry/api` (the vendor-neutral API, like a logger interface) are
 * its no-op spans.
 *
 * On, it must run before the modules it instruments load (http, express, graphql, pg): in ESM
 * that takes the `import-in-the-middle` loader hook, registered here with `module.register`,
 * and instrumentations registered before `app.js` is imported. So `main.ts` starts it first and
 * imports the app afterwards (`await import('./app.js')`).
 *
 * Spans: the http server span of each request (with its `request.id`), express's and graphql's
 * spans under it, then the turn's own (`chat/turn.ts`: `turn` and its steps; `model.call` in
 * `agent/openai-provider.ts`; `tool.call` in `mcp/toolbox.ts`; all from the tracer named
 * `stateless-chat`) and pg's query spans under them, their statements without values.
 */
import { register } from 'node:module';
import type { Span } from '@opentelemetry/api';
import type { TracingSettings } from './config.js';

/** A started tracing SDK: `shutdown` sends the spans still buffered and stops it. */
export type Tracing = { shutdown(): Promise<void> };

/**
 * Starts the SDK when `settings.endpoint` is set (spans batched to `<endpoint>/v1/traces`);
 * returns null, having loaded nothing, when it is not. Call it before anything imports the app.
 */
export async function startTracing(settings: TracingSettings): Promise<Tracing | null> {
  if (settings.endpoint === undefined) return null;
  // The ESM hook first: only modules loaded after it can be patched.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const [api, hooks, core, sdk, resources, otlp, instrumentation, http, express, graphql, pg] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-graphql'),
    import('@opentelemetry/instrumentation-pg'),
  ]);
  const exporter = new otlp.OTLPTraceExporter({ url: `${settings.endpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new sdk.TracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': settings.serviceName }),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter })],
  });
  api.context.setGlobalContextManager(new hooks.AsyncLocalStorageContextManager().enable());
  api.propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  api.trace.setGlobalTracerProvider(provider);
  instrumentation.registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new http.HttpInstrumentation({ applyCustomAttributesOnSpan: tagRequestId }),
      new express.ExpressInstrumentation(),
      // Parse, validate and the operation's execution; no span per field (type-graphql wraps
      // every field in a resolver, so even a property read would be one).
      new graphql.GraphQLInstrumentation({ ignoreResolveSpans: true }),
      new pg.PgInstrumentation({ requireParentSpan: true, requestHook: redactQuery }),
    ],
  });
  return {
    async shutdown() {
      await provider.shutdown();
    },
  };
}

/**
 * The http server span's `request.id`: the id `http/request-id.ts` gave the request (set on it
 * before the response ends, when instrumentation-http calls this).
 */
export function tagRequestId(span: Span, request: object): void {
  const id = (request as { id?: unknown }).id;
  if (typeof id === 'string') span.setAttribute('request.id', id);
}

/**
 * A pg span's statement without its values: MikroORM inlines them as literals (message text,
 * user ids, metadata), and no span may carry those. Replaces instrumentation-pg's `db.query.text`.
 */
export function redactQuery(span: Span, info: { query: { text: string } }): void {
  span.setAttribute('db.query.text', redactedSql(info.query.text));
}

/**
 * `text` with every string literal, standard (`'it''s'`) or escaped (`E'a\'b'`), replaced by
 * `?`; numbers, identifiers and `$n` parameters kept. (No dollar-quoted strings: the ORM writes none.)
 */
export function redactedSql(text: string): string {
  return text.replace(/\b[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'/g, '?');
}
