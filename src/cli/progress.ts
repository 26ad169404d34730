/**
 * Progress of a long command on stderr, only when stderr is a terminal (a person watching); piped
 * or redirected (cron, CI, a log file), the command stays quiet but for its summary line. The bar
 * is `cli-progress`'s: maintained, no native parts, one small dependency, and it redraws in place
 * at a bounded rate (a 200,000-message export does not print 200,000 lines).
 */
import { Presets, SingleBar } from 'cli-progress';

/** A progress display: `update` as often as convenient, `stop` once (before the summary line). */
export type Progress = { update(value: number, total?: number): void; stop(): void };

const QUIET: Progress = { update: () => {}, stop: () => {} };

/**
 * A bar counting `unit` up to `total` on stderr when `stream` (default: stderr) is a terminal;
 * otherwise one that shows nothing.
 */
export function progress(unit: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return QUIET;
  const bar = new SingleBar(
    { format: `{bar} {percentage}% | {value}/{total} ${unit} | {duration_formatted}`, stream, clearOnComplete: true, hideCursor: true },
    Presets.shades_classic,
  );
  bar.start(Math.max(total, 1), 0);
  return {
    update(value, newTotal) {
      if (newTotal !== undefined) bar.setTotal(Math.max(newTotal, value, 1));
      else if (value > bar.getTotal()) bar.setTotal(value);
      bar.update(value);
    },
    stop: () => bar.stop(),
  };
}

/** `n` with thousands separators (`1,234,567`), as summary lines print counts. */
export const formatCount = (n: number): string => n.toLocaleString('en-US');
