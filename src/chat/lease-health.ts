/**
 * How well this process keeps its turn leases: counts of late renewals and of leases found lost,
 * and the worst renewal-timer drift seen. Written only by the renewal (`keepLease` in `lease.ts`);
 * read by whoever reports on the process (logs, metrics).
 *
 * Process-wide on purpose, as prom-client's default registry is: a count of what happened to this
 * process's event loop, not state of any request. Counters only ever grow.
 */

/** A snapshot of the counters since the process started. */
export type LeaseHealth = {
  /** Renewals that ran after half the lease had passed since the last one (a stalled event loop, a slow database). */
  missedRenewals: number;
  /** Renewals that found the turn no longer held its conversation (taken over after the lease ran out). */
  lostLeases: number;
  /** The largest lateness of the renewal timer seen, in milliseconds (how long the event loop stalled at worst). */
  maxDriftMs: number;
};

// Private: the counters. Only the functions below change them.
const counts: LeaseHealth = { missedRenewals: 0, lostLeases: 0, maxDriftMs: 0 };

/** Renewals that came later than half the lease (see `LeaseHealth.missedRenewals`). */
export function missedRenewals(): number {
  return counts.missedRenewals;
}

/** Renewals that found the lease lost (see `LeaseHealth.lostLeases`). */
export function lostLeases(): number {
  return counts.lostLeases;
}

/** Every counter at once, copied. */
export function leaseHealth(): LeaseHealth {
  return { ...counts };
}

/** For `keepLease`: the renewal timer fired `driftMs` after it was due. */
export function noteDrift(driftMs: number): void {
  if (driftMs > counts.maxDriftMs) counts.maxDriftMs = driftMs;
}

/** For `keepLease`: a renewal ran after half the lease had passed. */
export function noteMissedRenewal(): void {
  counts.missedRenewals += 1;
}

/** For `keepLease`: a renewal found the lease lost. */
export function noteLostLease(): void {
  counts.lostLeases += 1;
}
