/**
 * Stamps every request as it comes in: an id (the client's `X-Request-Id` when sane), a child
 * logger carrying it, and the instant it was received (`receivedAt`: a turn's place in its
 * conversation's queue). Every response says how long the server held the request, from then to
 * its headers, in a `Server-Timing: total;dur=<ms>` header (what browsers' developer tools show).
 *
 * As the response ends, one `request` line is logged: method, URL, route template, status, time,
 * and for a GraphQL request its operation's name and type and its errors' codes (a BAD_USER_INPUT
 * answered with status 200 shows here); the same is handed to `onFinish` (the metrics).
 */
import type { Request, RequestHandler } from 'express';
import type { OperationNotes } from '../graphql/context.js';
import type { Logger } from '../log.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      id: string;
      log: Logger;
      /** When the request reached this instance (its clock). */
      receivedAt: Date;
      /** For a GraphQL request, what Apollo tells of its operation (set in its context, filled as it answers). */
      graphql?: OperationNotes;
    }
  }
}

/** What the request line knows of a finished request. */
export type FinishedRequest = {
  method: string;
  /** Express's route template (`/api/:userId/chat`), the path a router is mounted at (`/graphql`), or `unmatched`. */
  route: string;
  status: number;
  seconds: number;
  graphql?: OperationNotes;
};

const SANE_ID = /^[\w.:-]{1,128}$/;
/** An operation name longer than this is cut in the request line (clients choose it). */
const OPERATION_NAME_MAX = 100;

/** Stamps requests (see the module header); `onFinish` hears of each one as its response ends. */
export function requestIds(log: Logger, onFinish?: (request: FinishedRequest) => void): RequestHandler {
  return (req, res, next) => {
    req.receivedAt = new Date();
    const given = req.headers['x-request-id'];
    req.id = typeof given === 'string' && SANE_ID.test(given) ? given : crypto.randomUUID();
    req.log = log.child({ requestId: req.id });
    res.setHeader('X-Request-Id', req.id);
    const started = performance.now();
    // Node writes the headers through `writeHead`, also when a response is ended without calling it.
    const writeHead = res.writeHead;
    res.writeHead = function (this: typeof res, ...args: Parameters<typeof writeHead>) {
      if (!res.headersSent) res.setHeader('Server-Timing', `total;dur=${(performance.now() - started).toFixed(1)}`);
      return writeHead.apply(this, args);
    } as typeof writeHead;
    res.on('finish', () => {
      const ms = performance.now() - started;
      const route = routeOf(req);
      const { graphql } = req;
      const operation = graphql
        ? {
            operationName: graphql.operationName?.slice(0, OPERATION_NAME_MAX) ?? null,
            operationType: graphql.operationType,
            errorCodes: graphql.errorCodes,
          }
        : {};
      req.log.info(
        { method: req.method, url: req.originalUrl, route, status: res.statusCode, ms: Math.round(ms), ...operation },
        'request',
      );
      onFinish?.({ method: req.method, route, status: res.statusCode, seconds: ms / 1000, graphql });
    });
    next();
  };
}

// Private: the route that answered, as a template: a route's path under the path of its router,
// or, for a handler mounted with `app.use(path, ...)` (`/graphql`, `/mcp`), that path; `unmatched`
// when only the app's last handlers saw the request. Never the URL itself (ids, query strings).
function routeOf(req: Request): string {
  const route = req.route as { path?: unknown } | undefined;
  if (route && typeof route.path === 'string') return `${req.baseUrl}${route.path === '/' && req.baseUrl ? '' : route.path}`;
  if (route) return String(route.path);
  return req.baseUrl || 'unmatched';
}
