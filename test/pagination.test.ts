/** Unit tests of the cursor and page rules shared by every connection. */
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, parsePage, toConnection } from '../src/graphql/pagination.js';

const decodeSeq = (cursor: string, argument: string) => decodeCursor('message', ['n'], cursor, argument)[0] as number;

describe('cursors', () => {
  it('round-trip the key and stay opaque', () => {
    const cursor = encodeCursor('message', [42]);
    expect(cursor).not.toContain('42');
    expect(decodeSeq(cursor, 'after')).toBe(42);
  });

  it.each([
    ['garbage', 'not a cursor!'],
    ['a cursor of another connection', encodeCursor('task', [42])],
    ['a key of the wrong type', encodeCursor('message', ['42'])],
    ['a key of the wrong length', encodeCursor('message', [1, 2])],
    ['an empty string', ''],
  ])('reject %s with BAD_USER_INPUT', (_name, cursor) => {
    expect(() => decodeSeq(cursor, 'after')).toThrow(
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'after' }) }),
    );
  });
});

describe('parsePage', () => {
  it('defaults to the first 20', () => {
    expect(parsePage({}, decodeSeq)).toEqual({ direction: 'forward', limit: 20, cursor: null });
  });

  it('reads backward for last/before', () => {
    expect(parsePage({ last: 5, before: encodeCursor('message', [9]) }, decodeSeq)).toEqual({ direction: 'backward', limit: 5, cursor: 9 });
  });

  it.each([
    [{ first: 0 }],
    [{ first: 101 }],
    [{ last: -1 }],
    [{ first: 2, last: 2 }],
    [{ after: encodeCursor('message', [1]), before: encodeCursor('message', [3]) }],
  ])('refuses %j', (args) => {
    expect(() => parsePage(args, decodeSeq)).toThrow(
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }),
    );
  });
});

describe('toConnection', () => {
  const cursorOf = (n: number) => encodeCursor('message', [n]);

  it('uses the extra row only to tell there is a next page', () => {
    const c = toConnection([1, 2, 3], { direction: 'forward', limit: 2, cursor: null }, cursorOf);
    expect(c.edges.map((e) => e.node)).toEqual([1, 2]);
    expect(c.pageInfo).toEqual({ hasNextPage: true, hasPreviousPage: false, startCursor: cursorOf(1), endCursor: cursorOf(2) });
  });

  it('returns backward pages in natural order', () => {
    const c = toConnection([9, 8, 7], { direction: 'backward', limit: 2, cursor: 10 }, cursorOf);
    expect(c.edges.map((e) => e.node)).toEqual([8, 9]);
    expect(c.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: true });
  });

  it('gives null cursors for an empty page', () => {
    const c = toConnection([], { direction: 'forward', limit: 2, cursor: null }, cursorOf);
    expect(c.pageInfo).toEqual({ hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null });
  });
});
