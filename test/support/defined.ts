/**
 * Narrowing helpers for tests, fault runs and the bench: each states what the test expects to be there and, when it is
 * not, fails with an Error that names it (instead of a `!` that lets `undefined` through to a
 * confusing "cannot read properties of undefined" further on).
 */

/** `value`, which must be neither `undefined` nor `null`; `what` names it in the error. */
export function defined<T>(value: T, what: string): NonNullable<T> {
  if (value === undefined || value === null) throw new Error(`expected ${what}, got ${value}`);
  return value;
}

/** `items[index]` (negative counts from the end, as `Array.prototype.at`), which must exist. */
export function at<T>(items: readonly T[], index: number, what: string): NonNullable<T> {
  return defined(items.at(index), `${what} (item ${index} of ${items.length})`);
}

/** The first of `items`, which must not be empty. */
export function first<T>(items: readonly T[], what: string): NonNullable<T> {
  return at(items, 0, what);
}
