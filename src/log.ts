/**
 * The process logger: pino, JSON lines on stdout (`LOG_FORMAT=pretty`: coloured lines for people,
 * through pino-pretty). Errors are logged under `err` with their stack and their `cause` (an
 * error's, serialized the same way; anything else as it is). User ids go into logs through
 * `userRef`: hashed unless `LOG_USER_IDS=on`.
 */
import { createHash } from 'node:crypto';
import { type DestinationStream, type Logger, type LoggerOptions, pino, stdSerializers } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export type LogOptions = {
  /** `json` (default) or `pretty`. */
  format?: 'json' | 'pretty';
  /** Where the lines go (default stdout): tests give an in-memory stream. */
  destination?: DestinationStream;
};

/** Creates the root logger at `level` (`silent` turns it off). */
export function createLogger(level: string, options: LogOptions = {}): Logger {
  const settings: LoggerOptions = { level, base: { service: 'stateless-chat' }, serializers: { err: serializeError } };
  // pino-pretty as a stream in this thread (not a transport's worker): lines come out in order with
  // the rest of stdout, and nothing is left to flush when the process exits.
  const destination = options.destination ?? (options.format === 'pretty' ? pretty({ colorize: true, sync: true }) : undefined);
  return destination ? pino(settings, destination) : pino(settings);
}

/**
 * How a user is named in logs: the user id itself when `reveal` (`LOG_USER_IDS=on`), else the first
 * 16 hex digits of its SHA-256. Unsalted on purpose: every instance names a user alike, so that
 * lines correlate across instances (and an operator holding an id can find its lines).
 */
export function userRef(userId: string, reveal: boolean): string {
  return reveal ? userId : createHash('sha256').update(userId).digest('hex').slice(0, 16);
}

// Private: pino's `errWithCause` keeps a cause that is an error as a nested error (type, message,
// stack); a cause that is not an error (`{ cause: 'a string' }`) is kept too, which it would drop.
function serializeError(error: unknown): unknown {
  const serialized = stdSerializers.errWithCause(error as Error) as unknown;
  if (serialized === error || typeof serialized !== 'object' || serialized === null) return serialized;
  const cause = (error as { cause?: unknown }).cause;
  const out = serialized as { cause?: unknown };
  if (cause !== undefined && out.cause === undefined) out.cause = cause;
  return out;
}
