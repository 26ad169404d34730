/**
 * A small round-robin HTTP load balancer for the rolling-restart run, behaving as a real one
 * does (haproxy, nginx, a cloud balancer):
 *
 * - every backend's `GET /readyz` is checked every `healthEveryMs`; only backends whose last check
 *   answered 200 get requests (a 503 "draining", a refused connection or a timeout takes one out);
 * - requests go round robin over those, over pooled keep-alive connections (a pooled connection
 *   idle for a second is dropped, well before the server's keep-alive timeout);
 * - a request is sent again to another backend only when its connection was refused, that is
 *   before any byte of it was sent; any other failure (a reset, a connection closed before the
 *   answer) is the client's: it gets 502, as from a real balancer, and the run counts it failed;
 * - with no backend up, the client gets 503 at once.
 *
 * It keeps the body of each request (small JSON) so that a refused request can be sent again.
 */
import { Agent, createServer, type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A change of a backend's state as the health checks saw it. */
export type Transition = { backend: number; at: number; up: boolean; why: string };

export type Balancer = {
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** Whether the last health check of `backend` answered 200. */
  isUp(backend: number): boolean;
  /** Resolves once the health checks see `backend` as `up` (or not); rejects after `ms`. */
  until(backend: number, up: boolean, ms: number): Promise<number>;
  /** Requests forwarded to each backend (sent again after a refusal counted where they went). */
  forwarded: number[];
  /** Requests sent again to another backend after a refused connection. */
  retriedAfterRefusal: number;
  /** Requests answered by the proxy itself: 502 (a backend failed after the request was sent) or 503 (no backend up). */
  proxyErrors: { status: number; reason: string }[];
  transitions: Transition[];
  close(): Promise<void>;
};

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);
const CHECK_TIMEOUT_MS = 2_000;

/** Starts the proxy on 127.0.0.1 (port 0) before `backends` (origins); every backend starts down until its first check. */
export async function startBalancer(backends: string[], { healthEveryMs = 200 }: { healthEveryMs?: number } = {}): Promise<Balancer> {
  const up = backends.map(() => false);
  const forwarded = backends.map(() => 0);
  const transitions: Transition[] = [];
  const proxyErrors: Balancer['proxyErrors'] = [];
  const waiters = new Set<() => void>();
  // Pooled connections to the backends; a free one is dropped after 1 s idle (the servers keep them 5 s).
  const pool = new Agent({ keepAlive: true, timeout: 1_000, maxFreeSockets: 64 });
  // Health checks use a connection each, never the pool.
  const checks = new Agent({ keepAlive: false });
  let next = 0;
  let retriedAfterRefusal = 0;
  let closed = false;

  const mark = (backend: number, isUp: boolean, why: string) => {
    if (up[backend] === isUp) return;
    up[backend] = isUp;
    transitions.push({ backend, at: Date.now(), up: isUp, why });
    for (const wake of [...waiters]) wake();
  };

  const check = (backend: number) =>
    new Promise<void>((resolve) => {
      const req = request(`${backends[backend]}/readyz`, { agent: checks, timeout: CHECK_TIMEOUT_MS }, (res) => {
        res.resume();
        mark(backend, res.statusCode === 200, `readyz ${res.statusCode}`);
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (error: NodeJS.ErrnoException) => {
        mark(backend, false, `readyz ${error.code ?? error.message}`);
        resolve();
      });
      req.end();
    });
  const loop = async () => {
    while (!closed) {
      await Promise.all(backends.map((_, backend) => check(backend)));
      await new Promise((resolve) => setTimeout(resolve, healthEveryMs));
    }
  };
  const checking = loop();

  /** The next backend that is up after the ones in `tried`, round robin; -1 when none is. */
  const pick = (tried: Set<number>) => {
    for (let i = 0; i < backends.length; i++) {
      const backend = (next + i) % backends.length;
      if (up[backend] && !tried.has(backend)) {
        next = backend + 1;
        return backend;
      }
    }
    return -1;
  };

  const fail = (res: ServerResponse, status: number, reason: string) => {
    proxyErrors.push({ status, reason });
    if (res.headersSent) return void res.destroy();
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: status === 503 ? 'NO_BACKEND' : 'BAD_GATEWAY', message: reason } }));
  };

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, tried: Set<number>) => {
    const backend = pick(tried);
    if (backend < 0) return fail(res, 503, tried.size > 0 ? 'every backend up refused the connection' : 'no backend up');
    tried.add(backend);
    const target = new URL(req.url ?? '/', backends[backend]);
    const headers = { ...without(req.headers), host: target.host, 'content-length': String(body.length) };
    const out = request(target, { method: req.method, headers, agent: pool }, (answer) => {
      forwarded[backend] = (forwarded[backend] ?? 0) + 1;
      res.writeHead(answer.statusCode ?? 502, without(answer.headers));
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    out.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') {
        // Nothing was sent: the request may go to another backend, as a real balancer sends it.
        retriedAfterRefusal++;
        mark(backend, false, 'connection refused');
        return forward(req, res, body, tried);
      }
      fail(res, 502, `backend ${backend}: ${error.code ?? error.message}`);
    });
    out.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => forward(req, res, Buffer.concat(chunks), new Set()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    isUp: (backend) => up[backend] ?? false,
    until(backend, isUp, ms) {
      const began = Date.now();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`backend ${backend} not ${isUp ? 'up' : 'down'} within ${ms} ms`));
        }, ms);
        const wake = () => {
          if (up[backend] !== isUp) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(Date.now() - began);
        };
        waiters.add(wake);
        wake();
      });
    },
    forwarded,
    get retriedAfterRefusal() {
      return retriedAfterRefusal;
    },
    proxyErrors,
    transitions,
    async close() {
      closed = true;
      await checking;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      pool.destroy();
      checks.destroy();
    },
  };
}

// Private: `headers` without the hop-by-hop ones, which belong to one connection, not the request.
function without(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  return kept;
}
