/**
 * Conversation metadata: a small JSON object a client attaches and filters by. Capped in depth
 * and size, every key and string text, no blank keys; refused as a whole, never trimmed.
 */
import { badInput } from '../errors.js';
import { jsonProblem } from '../text.js';

/** Objects and arrays nested deeper than this are refused. */
const METADATA_DEPTH_MAX = 8;

/** `value` when it is acceptable metadata of at most `maxBytes` bytes of JSON, else BAD_USER_INPUT naming `field`. */
export function checkMetadata(value: unknown, field: string, maxBytes: number): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badInput(`${field} must be a JSON object`, field);
  // Depth first: the size below serialises the value, which must not recurse without bound.
  const found = jsonProblem(value, field, METADATA_DEPTH_MAX, { blankKeys: false });
  if (found) throw badInput(`${found.path} ${found.problem}`, found.path);
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > maxBytes) throw badInput(`${field} is ${bytes} bytes of JSON; at most ${maxBytes} are accepted`, field);
  return value as Record<string, unknown>;
}
