/**
 * The metrics of one app, in the Prometheus text format (`GET /metrics`, served by
 * `http/routes.ts`). This module owns the registry: one per app, never prom-client's global one, so
 * that several apps in one process (tests) keep their counts apart, and it is told what happens
 * by the others: each finished HTTP request (`request`, from `http/request-id.ts`), each turn's
 * tool calls, queue waits and end (`turns`, a `TurnObserver` handed to the chat). Gauges (the
 * database pool, event-loop delay, subscribers) are read when scraped.
 *
 * Label sets are bounded: no user ids, no free text, no raw URLs. Routes are express's templates;
 * names that come from clients or MCP servers (operation names, tool names, models) are kept as
 * they are only while they look like names and fewer than `LABEL_VALUES_MAX` have been seen; past
 * that, `other`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ToolCallRecord } from './agent/types.js';
import { leaseHealth } from './chat/lease-health.js';
import type { TurnObserver, TurnReport } from './chat/turn-report.js';
import { TURN_PHASES } from './chat/turn-report.js';
import type { Orm } from './db/orm.js';
import type { FinishedRequest } from './http/request-id.js';

/** How many distinct values one capped label keeps before it answers `other`. */
export const LABEL_VALUES_MAX = 100;
/** What a capped label keeps: a name, not text. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Tool and MCP server names may hold hyphens (`prefixedName` in `mcp/toolbox.ts`). */
const TOOL_NAME = /^[A-Za-z_][\w-]{0,63}$/;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** How often the event loop's delay is sampled. */
const LOOP_RESOLUTION_MS = 10;
/** Seconds: from a quick statement to the longest turn (TURN_DEADLINE's default is 120 s). */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export type Metrics = {
  /** The text of `GET /metrics`, and its content type. */
  scrape(): Promise<{ contentType: string; text: string }>;
  /** Counts and times a finished HTTP request (and its GraphQL operation); `requestIds`' `onFinish`. */
  request(request: FinishedRequest): void;
  /** Hears the turns of the chat (`ChatOptions.observe`). */
  turns: TurnObserver;
  /** Stops the event-loop monitor. */
  close(): void;
};

export type MetricsSources = {
  orm: Orm;
  /** How many subscribers to conversations' events this process has (`EventHub.size`). */
  subscribers: () => number;
};

/** Makes the registry and the series of one app (see the module header). */
export async function createMetrics({ orm, subscribers }: MetricsSources): Promise<Metrics> {
  const registry = new Registry();
  const registers = [registry];
  const operationNames = labelCap();
  const routes = labelCap(/^[\w/:.*-]{1,128}$/);
  const toolServers = labelCap(TOOL_NAME);
  const toolNames = labelCap(TOOL_NAME);
  const models = labelCap(/^[\w.:/-]{1,128}$/);
  const codes = labelCap();

  const httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    registers,
  });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from a request reaching the server to the end of its response, by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    buckets: SECONDS,
    registers,
  });
  const graphqlOperations = new Counter({
    name: 'graphql_operations_total',
    help: 'GraphQL operations over HTTP, by operation name (anonymous, other), type and the first error code (none when ok)',
    labelNames: ['operation', 'type', 'code'],
    registers,
  });
  const turnDuration = new Histogram({
    name: 'turn_duration_seconds',
    help: 'Time a turn spent in each phase (begin, context, model, tools, finish; total: the whole turn), by outcome',
    labelNames: ['phase', 'outcome'],
    buckets: SECONDS,
    registers,
  });
  const turns = new Counter({ name: 'turns_total', help: 'Turns ended, by outcome', labelNames: ['outcome'], registers });
  const toolCalls = new Counter({
    name: 'tool_calls_total',
    help: 'Tool calls completed, by MCP server, tool name and outcome (ok or error)',
    labelNames: ['server', 'name', 'outcome'],
    registers,
  });
  const toolDuration = new Histogram({
    name: 'tool_call_duration_seconds',
    help: 'Time of a tool call, by MCP server, tool name and outcome',
    labelNames: ['server', 'name', 'outcome'],
    buckets: SECONDS,
    registers,
  });
  const tokens = new Counter({
    name: 'model_tokens_total',
    help: 'Model tokens used by turns, by model and kind (prompt or completion)',
    labelNames: ['model', 'kind'],
    registers,
  });
  const waiters = new Gauge({
    name: 'turn_queue_waiters',
    help: "Requests on this instance waiting in a conversation's queue (ifBusy: ENQUEUE)",
    registers,
  });

  const pool = await orm.em.getConnection().getNativeClient();
  new Gauge({
    name: 'db_pool_connections',
    help: 'Connections of the database pool, by state: in_use or idle',
    labelNames: ['state'],
    registers,
    collect() {
      this.set({ state: 'in_use' }, pool.totalCount - pool.idleCount);
      this.set({ state: 'idle' }, pool.idleCount);
    },
  });
  new Gauge({
    name: 'db_pool_waiting',
    help: 'Requests waiting for a connection of the database pool',
    registers,
    collect() {
      this.set(pool.waitingCount);
    },
  });
  // Process-wide counts kept by the lease renewal (`chat/lease-health.ts`), read at each scrape.
  new Counter({
    name: 'lease_renewals_total',
    help: 'Turn lease renewals that went wrong, by kind: late (past half the lease: a stalled event loop or a slow database) or lost (taken over, or freed by shutdown)',
    labelNames: ['kind'],
    registers,
    collect() {
      const health = leaseHealth();
      this.reset();
      this.inc({ kind: 'late' }, health.missedRenewals);
      this.inc({ kind: 'lost' }, health.lostLeases);
    },
  });
  new Gauge({
    name: 'event_subscribers',
    help: "Subscribers to conversations' events on this instance (WebSocket and SSE)",
    registers,
    collect() {
      this.set(subscribers());
    },
  });
  // Private: the event loop's delay, sampled every LOOP_RESOLUTION_MS; each scrape reports the time
  // since the last one. Node records each whole interval between samples: the resolution is taken off.
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  const lag = (ns: number) => Math.max(0, ns - LOOP_RESOLUTION_MS * 1e6) / 1e9;
  new Gauge({
    name: 'eventloop_delay_seconds',
    help: 'Event-loop delay since the previous scrape: p50, p99 and max',
    labelNames: ['stat'],
    registers,
    collect() {
      this.set({ stat: 'p50' }, lag(loop.percentile(50)));
      this.set({ stat: 'p99' }, lag(loop.percentile(99)));
      this.set({ stat: 'max' }, lag(loop.max));
      loop.reset();
    },
  });

  return {
    async scrape() {
      return { contentType: registry.contentType, text: await registry.metrics() };
    },

    request({ method, route, status, seconds, graphql }) {
      const labels = { method: METHODS.has(method) ? method : 'other', route: routes(route), status: String(status) };
      httpRequests.inc(labels);
      httpDuration.observe(labels, seconds);
      if (!graphql) return;
      graphqlOperations.inc({
        operation: graphql.operationName === null ? 'anonymous' : operationNames(graphql.operationName),
        type: graphql.operationType ?? 'unknown',
        code: graphql.errorCodes[0] === undefined ? 'none' : codes(graphql.errorCodes[0]),
      });
    },

    turns: {
      toolCall(call: ToolCallRecord) {
        const labels = { server: toolServers(call.server), name: toolNames(call.name), outcome: call.isError ? 'error' : 'ok' };
        toolCalls.inc(labels);
        toolDuration.observe(labels, call.durationMs / 1000);
      },
      waiting(change) {
        waiters.inc(change);
      },
      end(report: TurnReport) {
        const { outcome } = report;
        turns.inc({ outcome });
        for (const phase of TURN_PHASES) {
          const ms = report.phases[phase];
          if (ms !== undefined) turnDuration.observe({ phase, outcome }, ms / 1000);
        }
        turnDuration.observe({ phase: 'total', outcome }, report.totalMs / 1000);
        if (report.tokens) {
          const model = report.model === null ? 'unknown' : models(report.model);
          tokens.inc({ model, kind: 'prompt' }, report.tokens.prompt);
          tokens.inc({ model, kind: 'completion' }, report.tokens.completion);
        }
      },
    },

    close() {
      loop.disable();
    },
  };
}

/**
 * A bounded label: `value` itself while it matches `pattern` and fewer than `max` distinct values
 * have been kept, `other` after that (and for anything that is not a name). The set it keeps is
 * its own, one per label of one app.
 */
export function labelCap(pattern: RegExp = NAME, max: number = LABEL_VALUES_MAX): (value: string) => string {
  const kept = new Set<string>();
  return (value) => {
    if (kept.has(value)) return value;
    if (kept.size >= max || !pattern.test(value)) return 'other';
    kept.add(value);
    return value;
  };
}
