/** Unit tests of the one backoff schedule (`src/backoff.ts`). */
import { describe, expect, it } from 'vitest';
import { backoff } from '../src/backoff.js';

describe('backoff', () => {
  it('doubles baseMs after each failed try and stays at maxMs', () => {
    const pause = backoff({ baseMs: 50, maxMs: 4_000 });
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 2_000].map(pause)).toEqual([50, 100, 200, 400, 800, 1_600, 3_200, 4_000, 4_000, 4_000]);
  });

  it('with jitter, pauses between half and all of the schedule', () => {
    const plain = backoff({ baseMs: 20, maxMs: 400 });
    const jittered = backoff({ baseMs: 20, maxMs: 400, jitter: true });
    for (const attempt of [0, 1, 2, 3, 4, 5, 10]) {
      for (let draw = 0; draw < 50; draw++) {
        const pause = jittered(attempt);
        expect(pause).toBeGreaterThanOrEqual(plain(attempt) / 2);
        expect(pause).toBeLessThanOrEqual(plain(attempt));
      }
    }
  });

  it('refuses options and attempts outside its contract, naming the value received', () => {
    expect(() => backoff({ baseMs: 0, maxMs: 10 })).toThrow('backoff: baseMs must be a positive number of milliseconds, got 0');
    expect(() => backoff({ baseMs: 100, maxMs: 10 })).toThrow('backoff: maxMs must be a number of milliseconds >= baseMs (100), got 10');
    expect(() => backoff({ baseMs: 10, maxMs: 100 })(-1)).toThrow('backoff: attempt must be an integer >= 0, got -1');
  });
});
