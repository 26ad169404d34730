/**
 * The errors clients see, as the domain throws them: plain `Error`s with a stable code, the few
 * details a client may act on (`retryAfterMs`, `field`) and the `cause` they came from. They know
 * no transport: each one maps them once, GraphQL to `extensions.code` (`graphql/errors.ts`
 * `formatError`), HTTP to a status and JSON body (`http/errors.ts`), and masks anything else as
 * INTERNAL_SERVER_ERROR in that same place, logging it with its cause. No `graphql` import here.
 */

export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONVERSATION_BUSY'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'CONVERSATION_CLOSED'
  | 'CONVERSATION_PURGED'
  | 'RATE_LIMITED'
  | 'UPSTREAM_ERROR'
  | 'EXPORT_TOO_LARGE'
  | 'SLOW_CONSUMER'
  | 'TOO_MANY_SUBSCRIPTIONS'
  | 'INTERNAL_SERVER_ERROR';

/** What a client is told beside the code and message. */
export type ErrorDetails = {
  /** CONVERSATION_BUSY, RATE_LIMITED: how long to wait before trying again, in ms (at least 1). */
  retryAfterMs?: number;
  /** BAD_USER_INPUT: the argument or header at fault. */
  field?: string;
};

/** An error meant for the client: its code, message and details are shown as they are; its cause is kept for the logs. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, options: { details?: ErrorDetails; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options.details ?? {};
  }

  /** The code with the details: what both transports show beside the message (GraphQL calls it `extensions`). */
  get extensions(): { code: ErrorCode } & ErrorDetails {
    return { code: this.code, ...this.details };
  }
}

export const badInput = (message: string, field?: string) => new AppError('BAD_USER_INPUT', message, field ? { details: { field } } : {});

export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`);

export const unauthenticated = (message = 'A valid bearer token is required') => new AppError('UNAUTHENTICATED', message);

export const forbidden = (message: string) => new AppError('FORBIDDEN', message);

/** RATE_LIMITED: a per-user limit is reached; `retryAfterMs` is the time until its window rolls over. */
export const rateLimited = (message: string, retryAfterMs: number) =>
  new AppError('RATE_LIMITED', message, { details: { retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)) } });

/** CONVERSATION_PURGED: the conversation's messages are in an archive file, not in the database, until an operator restores them. */
export function purged(id: string): AppError {
  return new AppError(
    'CONVERSATION_PURGED',
    `The conversation's messages are in an archive file, not in the database: an operator restores them first (stateless-chat restore --conversation ${id})`,
  );
}

/** TOO_MANY_SUBSCRIPTIONS: a connection or a user holds as many subscriptions as allowed; one must end before another starts. */
export const tooManySubscriptions = (message: string) => new AppError('TOO_MANY_SUBSCRIPTIONS', message);
