/** Unit tests of the duration settings (`src/duration.ts`) and how the configuration refuses a bad one. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { parseDuration } from '../src/duration.js';

describe('parseDuration', () => {
  it('reads a whole number with one unit, and 0 as none', () => {
    expect(['30d', '12h', '15m', '90s', '0', ' 1d ', '0d'].map(parseDuration)).toEqual([
      30 * 86_400_000,
      12 * 3_600_000,
      15 * 60_000,
      90_000,
      0,
      86_400_000,
      0,
    ]);
  });

  it('refuses anything else: signs, fractions, sums, unknown units, a bare unit or number', () => {
    for (const text of ['-1d', '+1d', '1y', '1w', 'd', '1.5.2h', '1.5h', '1h30m', '30', '', ' ', '1 d', '1D', '99999999999999999999d']) {
      expect(parseDuration(text), JSON.stringify(text)).toBeNull();
    }
  });
});

describe('the retention settings', () => {
  it('default to a 30-day TTL, archiving after 90 days, no timer, batches of 500', () => {
    expect(loadConfig({}).retention).toEqual({
      ttlMs: 30 * 86_400_000,
      archiveAfterMs: 90 * 86_400_000,
      sweepIntervalMs: 0,
      batchSize: 500,
    });
    expect(loadConfig({ CONVERSATION_TTL: '0', ARCHIVE_AFTER: '12h', SWEEP_INTERVAL: '15m', SWEEP_BATCH: '50' }).retention).toEqual({
      ttlMs: 0,
      archiveAfterMs: 12 * 3_600_000,
      sweepIntervalMs: 15 * 60_000,
      batchSize: 50,
    });
  });

  it('refuse a bad duration, naming the variable, the contract and the value received', () => {
    expect(() => loadConfig({ CONVERSATION_TTL: '-1d' })).toThrow(
      'CONVERSATION_TTL: must be a whole number with a unit s, m, h or d (e.g. 30d, 12h, 15m, 90s), or 0 for never (got "-1d")',
    );
    expect(() => loadConfig({ ARCHIVE_AFTER: '1y' })).toThrow(/ARCHIVE_AFTER: .* \(got "1y"\)/);
    expect(() => loadConfig({ SWEEP_INTERVAL: '1.5.2h' })).toThrow(/SWEEP_INTERVAL: .* \(got "1\.5\.2h"\)/);
    expect(() => loadConfig({ SWEEP_BATCH: '0' })).toThrow(/SWEEP_BATCH/);
    expect(() => loadConfig({ SWEEP_INTERVAL: '25d' })).toThrow(
      'SWEEP_INTERVAL: must be at most 24d (a timer waits no longer) (got "25d")',
    );
    expect(loadConfig({ SWEEP_INTERVAL: '24d' }).retention.sweepIntervalMs).toBe(24 * 86_400_000);
  });
});
