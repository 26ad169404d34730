/**
 * Waiting for a condition instead of sleeping: `until` polls and, past its deadline, fails the
 * test with what it waited for. A fixed sleep is left only where a test is about time itself
 * passing (a lease running out, a deadline), and says so where it sleeps.
 */

/**
 * Resolves once `condition()` is true, checking every `everyMs` (default 10 ms); rejects after
 * `ms` (default 10 s, generous for a busy CI machine) with `Waited … for <what> in vain`.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  { ms = 10_000, everyMs = 10 }: { ms?: number; everyMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() >= deadline) throw new Error(`Waited ${ms} ms for ${what} in vain`);
    await sleep(everyMs);
  }
}

/** A pause of `ms` for a test about time passing; name the reason where it is called. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
