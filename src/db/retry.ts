/**
 * The one place where database work is retried: serialization failures (40001), deadlocks
 * (40P01) and lost connections (the server restarting, a connection cut) are transient; the same
 * work is tried again after a growing pause, a bounded number of times. Anything else is thrown
 * at once. The work must be safe to repeat: a transaction whose commit may or may not have
 * happened has to find out by looking (see `attempt` below), never by doing it again blindly.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionException, DeadlockException, type DriverException } from '@mikro-orm/core';
import { backoff } from '../backoff.js';
import type { Logger } from '../log.js';

const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '57P01', // admin_shutdown (the server is restarting)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (the server is starting)
  '53300', // too_many_connections
  '08000',
  '08001',
  '08003',
  '08004',
  '08006', // connection exceptions
]);
/** 50 ms doubling, at most 4 s, jittered: eight tries wait about 13 s in all. */
const pauseAfter = backoff({ baseMs: 50, maxMs: 4_000, jitter: true });
const TRANSIENT_MESSAGE =
  /connection terminated|not queryable|timeout exceeded when trying to connect|terminating connection|ECONNREFUSED|ECONNRESET|EPIPE|Connection closed|connection error|server closed the connection|the database system is (starting up|shutting down)/i;

/** True for errors that a retry of the same work may not meet again. */
export function isTransient(error: unknown): boolean {
  if (error instanceof DeadlockException || error instanceof ConnectionException) return true;
  const code = (error as DriverException | undefined)?.code ?? (error as { sqlState?: string } | undefined)?.sqlState;
  if (typeof code === 'string' && TRANSIENT_SQLSTATES.has(code)) return true;
  return error instanceof Error && TRANSIENT_MESSAGE.test(error.message);
}

export type RetryOptions = {
  log: Logger;
  /** What is retried, for the log. */
  what: string;
  /** Tries in all (default 8: about 13 s of pauses, enough for a PostgreSQL restart). */
  tries?: number;
};

/**
 * Runs `work(attempt)` (attempt 0, 1, ...) until it succeeds, retrying transient database errors
 * with exponential backoff and jitter (50 ms doubling, at most 4 s). `attempt > 0` tells the work
 * that an earlier try may have committed before its connection broke.
 */
export async function retryTransient<T>(work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const tries = options.tries ?? 8;
  for (let attempt = 0; ; attempt++) {
    try {
      return await work(attempt);
    } catch (error) {
      if (!isTransient(error) || attempt + 1 >= tries) throw error;
      const pause = pauseAfter(attempt);
      options.log.warn({ err: error, what: options.what, attempt, pauseMs: Math.round(pause) }, 'transient database error; retrying');
      await sleep(pause);
    }
  }
}
