/** The process logger: pino, JSON lines on stdout. */
import { type Logger, pino } from 'pino';

export type { Logger };

/** Creates the root logger at `level` (`silent` turns it off). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'stateless-chat' } });
}
