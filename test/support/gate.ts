/**
 * A gate for scripted test agents: a turn that reaches `hold()` stays there until the test calls
 * `release()`, so a test can act while a turn is known to be running. `held` counts the turns
 * that reached the gate; `untilHeld(n)` waits (with a deadline) until `n` have.
 */
import { until } from './wait.js';

export class Gate {
  /** Turns that reached the gate so far, released or not. */
  held = 0;
  private waiting: (() => void)[] = [];

  /** Holds the calling turn until the next `release()`. */
  async hold(): Promise<void> {
    this.held += 1;
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Lets every turn held now go on. */
  release(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  /** Resolves once `count` turns in all have reached the gate; fails past the deadline. */
  untilHeld(count: number): Promise<void> {
    return until(() => this.held >= count, `${count} turn(s) held at the gate (${this.held} so far)`);
  }
}
