/**
 * The one place where errors are shaped for HTTP clients (the REST route, `/mcp`, the app's last
 * resort): an `AppError` gets the status of its code and is shown as it is, with its details;
 * anything else is logged with its cause and stack and masked as INTERNAL_SERVER_ERROR
 * (`httpFailure`). `/mcp` wraps the same failure in a JSON-RPC error.
 */
import type { Response } from 'express';
import { AppError, type ErrorCode, type ErrorDetails } from '../errors.js';
import type { Logger } from '../log.js';

const HTTP_STATUS: Record<ErrorCode, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  CONVERSATION_BUSY: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  CONVERSATION_CLOSED: 409,
  CONVERSATION_PURGED: 409,
  RATE_LIMITED: 429,
  UPSTREAM_ERROR: 502,
  EXPORT_TOO_LARGE: 413,
  SLOW_CONSUMER: 503,
  TOO_MANY_SUBSCRIPTIONS: 429,
  INTERNAL_SERVER_ERROR: 500,
};

/** An error as an HTTP client is told it. */
export type HttpFailure = { status: number; code: ErrorCode | 'BAD_REQUEST'; message: string; details: ErrorDetails };

const INTERNAL: HttpFailure = { status: 500, code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error', details: {} };

/**
 * What `error` tells an HTTP client: an `AppError` with the status of its code; anything else is
 * logged on `log` (with its cause and stack) as `what`, and masked: nothing of it reaches the client.
 */
export function httpFailure(error: unknown, log: Logger, what: string): HttpFailure {
  if (error instanceof AppError)
    return { status: HTTP_STATUS[error.code], code: error.code, message: error.message, details: error.details };
  log.error({ err: error }, what);
  return INTERNAL;
}

/**
 * A refusal of express's own middleware, passed to an error handler: an error with a 4xx `status`
 * (the body parser's bad JSON, too large a body, an unsupported charset; a path that does not
 * decode) is the client's, told as BAD_REQUEST with its message. Undefined for anything else.
 */
export function middlewareFailure(error: unknown): HttpFailure | undefined {
  const { status, message } = (error ?? {}) as { status?: unknown; message?: unknown };
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  return { status, code: 'BAD_REQUEST', message: String(message ?? 'Bad request'), details: {} };
}

/**
 * Sets the headers `failure` asks for: a 429 (RATE_LIMITED) says when to try again as HTTP's
 * `Retry-After`, in whole seconds (the body has it in ms).
 */
export function setFailureHeaders(res: Response, failure: HttpFailure): void {
  const { retryAfterMs } = failure.details;
  if (failure.code === 'RATE_LIMITED' && typeof retryAfterMs === 'number')
    res.setHeader('Retry-After', String(Math.ceil(retryAfterMs / 1000)));
}

/** Answers `failure`: its status, headers, and the JSON body `{ "error": { "code", "message", ...details } }`. */
export function sendFailure(res: Response, failure: HttpFailure): void {
  setFailureHeaders(res, failure);
  res.status(failure.status).json({ error: { code: failure.code, message: failure.message, ...failure.details } });
}

/** Answers `error` as `sendFailure` does, through `httpFailure` (unknown errors logged as `what` and masked). */
export function sendError(res: Response, error: unknown, log: Logger, what = 'internal error in an HTTP request'): void {
  sendFailure(res, httpFailure(error, log, what));
}
