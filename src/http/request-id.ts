/**
 * Stamps every request as it comes in: an id (the client's `X-Request-Id` when sane), a child
 * logger carrying it, and the instant it was received (`receivedAt`: a turn's place in its
 * conversation's queue). Every response says how long the server held the request, from then to
 * its headers, in a `Server-Timing: total;dur=<ms>` header (what browsers' developer tools show).
 */
import type { RequestHandler } from 'express';
import type { Logger } from '../log.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      id: string;
      log: Logger;
      /** When the request reached this instance (its clock). */
      receivedAt: Date;
    }
  }
}

const SANE_ID = /^[\w.:-]{1,128}$/;

export function requestIds(log: Logger): RequestHandler {
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
      req.log.info(
        { method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(performance.now() - started) },
        'request',
      );
    });
    next();
  };
}
