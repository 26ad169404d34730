/**
 * The load generator: a closed loop of N clients, each sending its next request as soon as its
 * previous one answered (on its own conversation), for a warm-up and then a measured window.
 * Throughput counts the requests answered inside the window; latencies are theirs (one sent
 * during the warm-up counts too: slow requests would otherwise leave a short window no sample).
 *
 * It runs in the bench process and shares the machine's cores with whatever it measures: on a
 * small machine its own CPU is part of the picture (the bench reports it per request).
 */
import http from 'node:http';
import { at } from '../test/support/defined.js';

const REQUEST_TIMEOUT_MS = 60_000;

export type LoadOptions = {
  clients: number;
  /** Requests run but not counted, to fill caches and pools first. */
  warmupMs: number;
  durationMs: number;
  /** One request of client `client` (0 … clients-1); a throw counts as an error. */
  request(client: number): Promise<void>;
  /** Called as the measured window opens and closes (read CPU counters there). */
  window?: { open(): void; close(): void };
};

export type LoadResult = {
  clients: number;
  /** Length of the measured window, in seconds. */
  seconds: number;
  /** Requests answered inside the window. */
  requests: number;
  /** Requests that failed, warm-up included: any makes the run's figures suspect. */
  errors: number;
  firstError?: string;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
};

/** Runs the closed loop of `options` and returns what it measured; latencies in milliseconds. */
export async function closedLoop(options: LoadOptions): Promise<LoadResult> {
  const { clients, warmupMs, durationMs, request } = options;
  if (!Number.isInteger(clients) || clients < 1) throw new Error(`closedLoop needs a positive whole number of clients, got ${clients}`);
  const started = performance.now();
  const opens = started + warmupMs;
  const closes = opens + durationMs;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;

  // Timers, so that the counters are read on time even while every client waits on an answer.
  let open = false;
  let closed = false;
  const openWindow = () => {
    if (!open) options.window?.open();
    open = true;
  };
  const closeWindow = () => {
    openWindow();
    if (!closed) options.window?.close();
    closed = true;
  };
  const openTimer = setTimeout(openWindow, warmupMs);
  const closeTimer = setTimeout(closeWindow, warmupMs + durationMs);
  const loop = async (client: number) => {
    while (performance.now() < closes) {
      const sent = performance.now();
      try {
        await request(client);
      } catch (error) {
        errors += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
        continue;
      }
      const answered = performance.now();
      if (answered < opens || answered > closes) continue;
      latencies.push(answered - sent);
    }
  };
  try {
    await Promise.all(Array.from({ length: clients }, (_, client) => loop(client)));
  } finally {
    clearTimeout(openTimer);
    clearTimeout(closeTimer);
    closeWindow();
  }
  const seconds = durationMs / 1000;
  return {
    clients,
    seconds,
    requests: latencies.length,
    errors,
    firstError,
    perSecond: latencies.length / seconds,
    ...percentiles(latencies),
  };
}

export type Measured = LoadResult & {
  /** CPU milliseconds the measured process spent per request answered in the window (when `cpuMs` is given). */
  cpuMsPerRequest?: number;
  /** CPU milliseconds this process (the load generator, and the ceiling's driver) spent per request. */
  benchCpuMsPerRequest: number;
};

/**
 * `closedLoop`, with the CPU time of the measured process (`cpuMs`, cumulative milliseconds) and
 * of this process read as the window opens and closes, divided by the requests answered in it.
 */
export async function measuredLoop(options: Omit<LoadOptions, 'window'>, cpuMs?: () => number): Promise<Measured> {
  let opened = { own: process.cpuUsage(), child: cpuMs?.() ?? 0 };
  let closed = opened;
  const result = await closedLoop({
    ...options,
    window: {
      open: () => {
        opened = { own: process.cpuUsage(), child: cpuMs?.() ?? 0 };
      },
      close: () => {
        closed = { own: process.cpuUsage(), child: cpuMs?.() ?? 0 };
      },
    },
  });
  const requests = Math.max(1, result.requests);
  const ownMs = (closed.own.user - opened.own.user + closed.own.system - opened.own.system) / 1000;
  return {
    ...result,
    cpuMsPerRequest: cpuMs ? (closed.child - opened.child) / requests : undefined,
    benchCpuMsPerRequest: ownMs / requests,
  };
}

/** p50, p95 and p99 of `times` (nearest rank); NaN when there are none. */
export function percentiles(times: number[]): { p50: number; p95: number; p99: number } {
  if (times.length === 0) return { p50: Number.NaN, p95: Number.NaN, p99: Number.NaN };
  const sorted = [...times].sort((a, b) => a - b);
  const rank = (p: number) => at(sorted, Math.max(0, Math.ceil(p * sorted.length) - 1), 'the sorted times');
  return { p50: rank(0.5), p95: rank(0.95), p99: rank(0.99) };
}

/**
 * A JSON-over-HTTP client on keep-alive connections (one socket per concurrent request at most),
 * so that a closed loop measures requests, not TCP handshakes.
 */
export function jsonClient(maxSockets: number): {
  post(url: string, body: unknown, headers?: Record<string, string>): Promise<unknown>;
  close(): void;
} {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  return {
    post(url, body, headers = {}) {
      const payload = Buffer.from(JSON.stringify(body));
      return new Promise((resolve, reject) => {
        const req = http.request(
          url,
          { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length, ...headers } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('error', reject);
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              if ((res.statusCode ?? 0) >= 300) {
                reject(new Error(`HTTP ${res.statusCode} from ${url}: ${text.slice(0, 300)}`));
                return;
              }
              try {
                resolve(JSON.parse(text));
              } catch (error) {
                reject(new Error(`not JSON from ${url}: ${text.slice(0, 300)}`, { cause: error }));
              }
            });
          },
        );
        req.on('error', reject);
        // A request that never answers would stop the whole run: it fails instead.
        req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer from ${url} within ${REQUEST_TIMEOUT_MS / 1000} s`)));
        req.end(payload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/** A GraphQL client over `jsonClient`: the `data` of the answer, or a throw with its `errors`. */
export function graphqlClient(endpoint: string, maxSockets: number) {
  const client = jsonClient(maxSockets);
  return {
    async request(token: string, query: string, variables: Record<string, unknown>): Promise<Record<string, unknown>> {
      const body = (await client.post(endpoint, { query, variables }, { authorization: `Bearer ${token}` })) as {
        data?: Record<string, unknown>;
        errors?: unknown[];
      };
      if (body.errors || !body.data) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors).slice(0, 300)}`);
      return body.data;
    },
    close: () => client.close(),
  };
}
