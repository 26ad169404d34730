/**
 * Text is text: the one definition of a string a client may send.
 *
 * PostgreSQL cannot store NUL in `text` or `jsonb`, and the driver silently turns a lone UTF-16
 * surrogate into U+FFFD, so two different strings ("col\ud800", "col\udbff") would become one
 * stored value: two users, or two idempotency keys, merged. Every string that arrives from a
 * client (arguments, variables, bodies, headers, token claims, tool arguments) is checked here at
 * the edge and refused, never repaired. Text made upstream (a model's reply, an external MCP
 * server's result) cannot be refused; `storableText`/`storableJson` replace what PostgreSQL cannot
 * hold with U+FFFD, visibly.
 */

/** Why `value` is not acceptable client text, or null when it is. */
export function textProblem(value: string): string | null {
  if (!value.isWellFormed()) return 'is not well-formed Unicode (it holds a lone surrogate)';
  if (value.includes('\u0000')) return 'holds a NUL character';
  return null;
}

/** True when `value` is well-formed Unicode without NUL. */
export const isText = (value: string): boolean => textProblem(value) === null;

/** True when `value` holds a C0 or C1 control character, tab and newline included (identifiers such as user ids refuse them). */
export function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit <= 0x1f || (unit >= 0x7f && unit <= 0x9f)) return true;
  }
  return false;
}

/**
 * Finds the first problem in a JSON-like value from a client: a string or key that is not text,
 * nesting deeper than `maxDepth` objects and arrays, and (with `blankKeys: false`) a key that is
 * empty or only whitespace. Iterative, so a hostile 10,000-deep value cannot overflow the stack.
 * Returns the path and the problem, or null.
 */
export function jsonProblem(
  value: unknown,
  path: string,
  maxDepth: number,
  options: { blankKeys?: boolean } = {},
): { path: string; problem: string } | null {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path, depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (typeof item.value === 'string') {
      const problem = textProblem(item.value);
      if (problem) return { path: item.path, problem };
      continue;
    }
    if (item.value === null || typeof item.value !== 'object') continue;
    if (item.depth >= maxDepth) return { path: item.path, problem: `is nested deeper than ${maxDepth} levels` };
    if (Array.isArray(item.value)) {
      for (const [i, child] of item.value.entries()) stack.push({ value: child, path: `${item.path}.${i}`, depth: item.depth + 1 });
      continue;
    }
    for (const [key, child] of Object.entries(item.value)) {
      const keyProblem = textProblem(key);
      if (keyProblem) return { path: item.path, problem: `has a key that ${keyProblem}` };
      if (options.blankKeys === false && key.trim() === '') return { path: item.path, problem: 'has a blank key' };
      stack.push({ value: child, path: `${item.path}.${key}`, depth: item.depth + 1 });
    }
  }
  return null;
}

/** `value` with NUL and lone surrogates replaced by U+FFFD, for text made upstream. */
export function storableText(value: string): string {
  return value.toWellFormed().replaceAll('\u0000', '\ufffd');
}

/** A JSON value made upstream, with every string and key made storable (same shape otherwise). */
export function storableJson<T>(value: T): T {
  const json = JSON.stringify(value);
  if (json === undefined || !UNSTORABLE_ESCAPE.test(json)) return value;
  // JSON.stringify escapes NUL and lone surrogates (and only those surrogates) as \uXXXX; an
  // escape is real when preceded by an even number of backslashes.
  return JSON.parse(json.replace(UNSTORABLE_ESCAPES, '$1\\ufffd')) as T;
}

const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;
const UNSTORABLE_ESCAPES = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/gi;
