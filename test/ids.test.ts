/** Row ids: valid UUIDv7s, unique, and sorting in the order they were made, even within one millisecond. */
import { describe, expect, it } from 'vitest';
import { isUuid, newId } from '../src/entities/ids.js';

describe('newId', () => {
  it('makes UUIDv7s that are unique and sort in the order they were made (100,000 at once, past its pool of random bytes)', () => {
    const ids = Array.from({ length: 100_000 }, newId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => isUuid(id) && id[14] === '7' && '89ab'.includes(id[19] ?? ''))).toBe(true);
    expect(ids.toSorted()).toEqual(ids);
  });
});
