/** Gives every request an id (the client's `X-Request-Id` when sane) and a child logger carrying it. */
import type { RequestHandler } from 'express';
import type { Logger } from '../log.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      id: string;
      log: Logger;
    }
  }
}

const SANE_ID = /^[\w.:-]{1,128}$/;

export function requestIds(log: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.headers['x-request-id'];
    req.id = typeof given === 'string' && SANE_ID.test(given) ? given : crypto.randomUUID();
    req.log = log.child({ requestId: req.id });
    res.setHeader('X-Request-Id', req.id);
    const started = performance.now();
    res.on('finish', () => {
      req.log.info(
        { method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(performance.now() - started) },
        'request',
      );
    });
    next();
  };
}
