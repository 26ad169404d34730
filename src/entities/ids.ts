/** Row ids: UUIDv7, time-ordered, so inserts stay local in the B-tree and ids sort by creation. */
import { randomFillSync } from 'node:crypto';
import { v7 as uuidv7, validate, version } from 'uuid';

/** Random bytes for 256 ids, drawn at once: one call to the system's source instead of one per id. */
const pool = new Uint8Array(16 * 256);
let used = pool.length;

/**
 * A new UUIDv7 (the `uuid` package's, monotonic within this process: ids made in one millisecond
 * still sort in the order they were made), its random part taken from `pool`.
 */
export const newId = (): string => {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const random = pool.subarray(used, used + 16);
  used += 16;
  return uuidv7({ random, ...monotonic(random) });
};

// Private: the `uuid` package keeps its counter only when it draws the random bytes itself; this
// is that counter (RFC 9562, method 1): a new millisecond starts it from random bits, and within
// one millisecond it counts up (carrying into the next millisecond when it wraps).
const state = { msecs: Number.NEGATIVE_INFINITY, seq: 0 };
function monotonic(random: Uint8Array): { msecs: number; seq: number } {
  const now = Date.now();
  if (now > state.msecs) {
    state.seq = (((random[6] ?? 0) & 0x7f) << 24) | ((random[7] ?? 0) << 16) | ((random[8] ?? 0) << 8) | (random[9] ?? 0);
    state.msecs = now;
  } else {
    state.seq = (state.seq + 1) | 0;
    if (state.seq === 0) state.msecs += 1;
  }
  return { msecs: state.msecs, seq: state.seq };
}

/** True when `value` is a syntactically valid UUID (any version). */
export const isUuid = (value: string): boolean => validate(value) && version(value) >= 1;
