/**
 * A gate for scripted test agents: a turn that reaches `hold()` stays there until the test calls
 * `release()`, so a test can act while a turn is known to be running. `held` counts the turns
 * that reached the gate; `untilHeld(n)` waits (with a deadline) until `n` have. `GatedAgent` is
 * the offline agent behind such a gate.
 */
import { OfflineAgent } from '../../src/agent/offline.js';
import type { Agent, AgentInput } from '../../src/agent/types.js';
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

/**
 * The offline agent, held at the gate at the start of each turn whose message contains "slow"
 * until released, and failing once for each message that contains "explode".
 */
export class GatedAgent implements Agent {
  readonly name = 'gated';
  private readonly inner = new OfflineAgent();
  private exploded = new Set<string>();
  readonly gate = new Gate();

  async run(input: AgentInput) {
    const last = input.messages.at(-1);
    if (last?.role === 'user' && last.content.includes('explode') && !this.exploded.has(last.content)) {
      this.exploded.add(last.content);
      throw new Error('model unreachable');
    }
    if (last?.role === 'user' && last.content.includes('slow')) await this.gate.hold();
    return this.inner.run(input);
  }
}
