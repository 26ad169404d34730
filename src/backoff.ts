/**
 * The one schedule of growing pauses between tries: `baseMs` doubled after each failed try, never
 * more than `maxMs`, and with `jitter` a random part taken off so that many clients that failed
 * together do not all try again at the same moment. Database retries, MCP reconnections and the
 * ENQUEUE wait all pause by it.
 */

export type BackoffOptions = {
  /** The pause after the first failure (attempt 0), in milliseconds; must be positive. */
  baseMs: number;
  /** The longest pause, in milliseconds; must be at least `baseMs`. */
  maxMs: number;
  /** Pause a random time between half and all of the schedule's pause ("equal jitter"; default false). */
  jitter?: boolean;
};

/**
 * The pause before the try that follows failed try `attempt` (0, 1, ...): `min(baseMs * 2^attempt,
 * maxMs)`, with `jitter` a random time in `[pause / 2, pause]`. Throws when the options break
 * their contract, naming the value received.
 */
export function backoff(options: BackoffOptions): (attempt: number) => number {
  const { baseMs, maxMs, jitter = false } = options;
  if (!(Number.isFinite(baseMs) && baseMs > 0)) throw new Error(`backoff: baseMs must be a positive number of milliseconds, got ${baseMs}`);
  if (!(Number.isFinite(maxMs) && maxMs >= baseMs))
    throw new Error(`backoff: maxMs must be a number of milliseconds >= baseMs (${baseMs}), got ${maxMs}`);
  return (attempt) => {
    if (!(Number.isInteger(attempt) && attempt >= 0)) throw new Error(`backoff: attempt must be an integer >= 0, got ${attempt}`);
    // 2 ** attempt grows to Infinity, never NaN (baseMs > 0), so a long run of failures stays at maxMs.
    const pause = Math.min(baseMs * 2 ** attempt, maxMs);
    return jitter ? pause * (0.5 + Math.random() / 2) : pause;
  };
}
