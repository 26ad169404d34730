/**
 * The parsers of the commands' option values, for commander: a bad value is a usage error (exit 2)
 * found while the command line is parsed, before anything is loaded or opened. Kept apart from the
 * commands so that parsing the command line loads nothing heavy.
 */
import { InvalidArgumentError } from 'commander';
import { DURATION_FORMAT, parseDuration } from '../duration.js';
import { isUuid } from '../entities/ids.js';

/** commander's parser of `--conversation`: UUIDs, repeated or comma-separated, collected. */
export function collectIds(value: string, previous: string[] | undefined): string[] {
  const ids = value
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  const bad = ids.find((id) => !isUuid(id));
  if (bad !== undefined || ids.length === 0)
    throw new InvalidArgumentError(`must be conversation ids (UUIDs), got ${JSON.stringify(bad ?? value)}.`);
  return [...(previous ?? []), ...ids];
}

const DATE = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** commander's parser of `--updated-after`/`--updated-before`: an ISO 8601 date or instant, as an ISO instant in UTC. */
export function parseInstant(value: string): string {
  const ms = DATE.test(value) ? Date.parse(value) : Number.NaN;
  // A date-only value must be a real day (Date.parse rolls 2026-02-30 over into March).
  if (Number.isNaN(ms) || (value.length === 10 && new Date(ms).toISOString().slice(0, 10) !== value)) {
    throw new InvalidArgumentError(
      `must be an ISO 8601 date or instant such as 2026-12-01 or 2026-12-01T08:00:00Z, got ${JSON.stringify(value)}.`,
    );
  }
  return new Date(ms).toISOString();
}

/** commander's parser of `--older-than`: a positive duration (`90d`, `12h`, `15m`, `90s`), in milliseconds with its text. */
export function parseAge(value: string): { ms: number; text: string } {
  const ms = parseDuration(value);
  if (ms === null || ms === 0)
    throw new InvalidArgumentError(
      `must be a positive duration, ${DURATION_FORMAT.replace(/, or 0 for never$/, '')}, got ${JSON.stringify(value)}.`,
    );
  return { ms, text: value.trim() };
}

/** commander's parser of `--batch-size`: a whole number from 1 to 10,000. */
export function parseBatchSize(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 1 && n <= 10_000)) throw new InvalidArgumentError(`must be a whole number from 1 to 10000, got ${JSON.stringify(value)}.`);
  return n;
}
