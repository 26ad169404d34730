/**
 * The errors clients see. Each carries a stable `extensions.code` (GraphQL) and the HTTP status
 * the REST route answers with; anything else that escapes is masked as INTERNAL_SERVER_ERROR
 * in one place (`graphql/errors.ts` `formatError`, `http/rest.ts`) and logged with its cause.
 */
import { GraphQLError } from 'graphql';

export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONVERSATION_BUSY'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'CONVERSATION_CLOSED'
  | 'RATE_LIMITED'
  | 'UPSTREAM_ERROR'
  | 'INTERNAL_SERVER_ERROR';

const HTTP_STATUS: Record<ErrorCode, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  CONVERSATION_BUSY: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  CONVERSATION_CLOSED: 409,
  RATE_LIMITED: 429,
  UPSTREAM_ERROR: 502,
  INTERNAL_SERVER_ERROR: 500,
};

/** An error meant for the client: its message and extensions are shown as they are. */
export class AppError extends GraphQLError {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: { extensions?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, { extensions: { ...options.extensions, code }, originalError: options.cause instanceof Error ? options.cause : undefined });
    this.name = 'AppError';
    this.code = code;
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

export const badInput = (message: string, field?: string) =>
  new AppError('BAD_USER_INPUT', message, field ? { extensions: { field } } : {});

export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`);

export const unauthenticated = (message = 'A valid bearer token is required') => new AppError('UNAUTHENTICATED', message);

/** RATE_LIMITED: a per-user limit is reached; `retryAfterMs` is the time until its window rolls over. */
export const rateLimited = (message: string, retryAfterMs: number) =>
  new AppError('RATE_LIMITED', message, { extensions: { retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)) } });
