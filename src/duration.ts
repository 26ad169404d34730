/**
 * Durations as operators write them in settings: a whole number and one unit, `30d`, `12h`, `15m`,
 * `90s`, or `0` for none (never, off). Nothing else is guessed at: no fractions, no sums (`1h30m`),
 * no signs, no months or years (their length varies).
 */

/** Milliseconds in each unit a duration may use. */
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

const DURATION = /^(\d+)([smhd])$/;

/**
 * Milliseconds of `text` (`30d`, `12h`, `15m`, `90s`, or `0`), or null when it is not such a duration.
 * Surrounding blanks are ignored.
 */
export function parseDuration(text: string): number | null {
  const value = text.trim();
  if (value === '0') return 0;
  const match = DURATION.exec(value);
  if (!match) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return Number.isSafeInteger(ms) ? ms : null;
}

/** The contract of a duration, as a problem message names it. */
export const DURATION_FORMAT = 'a whole number with a unit s, m, h or d (e.g. 30d, 12h, 15m, 90s), or 0 for never';
