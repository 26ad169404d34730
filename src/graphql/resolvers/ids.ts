import { isUuid } from '../../entities/ids.js';
import { badInput } from '../../errors.js';

/** `value` if it is a UUID, else BAD_USER_INPUT naming `argument`: a malformed id never reaches SQL. */
export function parseId(value: string, argument: string): string {
  if (!isUuid(value)) throw badInput(`${argument} must be a UUID, got ${JSON.stringify(value)}`, argument);
  return value;
}
