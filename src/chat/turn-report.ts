/**
 * What a turn tells about itself once it ends: its outcome, the time spent in each phase, its
 * tool calls and the tokens its model used. `runTurn` keeps one `TurnWatch` per turn, logs the
 * report as the turn's one `turn` line and hands it to the `TurnObserver` it was given (the
 * metrics of `src/metrics.ts`), so that the domain imports no metrics library. Nothing here runs
 * per streamed token: a watch is touched at the phase boundaries and once per tool call.
 */
import type { ToolCallRecord } from '../agent/types.js';
import { AppError, type ErrorCode } from '../errors.js';

/**
 * The phases of a turn: `begin` is step 4 (waiting in the queue included), `context` step 5,
 * `model` and `tools` step 6 (`tools`: while at least one tool call ran; `model`: the rest of the
 * agent's time), `finish` step 7.
 */
export const TURN_PHASES = ['begin', 'context', 'model', 'tools', 'finish'] as const;
export type TurnPhase = (typeof TURN_PHASES)[number];

/**
 * How a turn ended: `completed`, `replayed` (a retry answered with the stored turn), `failed`
 * (the agent failed: UPSTREAM_ERROR), `busy`, `rate_limited`, `bad_input`, `not_found`, `refused`
 * (another code: a closed conversation, a key reused) or `error` (unexpected: masked as
 * INTERNAL_SERVER_ERROR).
 */
export const TURN_OUTCOMES = [
  'completed',
  'replayed',
  'failed',
  'busy',
  'rate_limited',
  'bad_input',
  'not_found',
  'refused',
  'error',
] as const;
export type TurnOutcome = (typeof TURN_OUTCOMES)[number];

const OUTCOME_OF_CODE: Partial<Record<ErrorCode, TurnOutcome>> = {
  UPSTREAM_ERROR: 'failed',
  CONVERSATION_BUSY: 'busy',
  RATE_LIMITED: 'rate_limited',
  BAD_USER_INPUT: 'bad_input',
  NOT_FOUND: 'not_found',
};

export type TurnReport = {
  outcome: TurnOutcome;
  /** The code the request is answered with; null when the turn completed or replayed. */
  errorCode: ErrorCode | null;
  /** Null when the turn ended before it had one (bad input, a new conversation refused). */
  conversationId: string | null;
  /** The lease's turn id; null for a turn that never held the conversation (a replay, a refusal). */
  turnId: string | null;
  /** Milliseconds spent in each phase the turn reached. */
  phases: Partial<Record<TurnPhase, number>>;
  /** Milliseconds from the start of `runTurn` to its end. */
  totalMs: number;
  toolCalls: number;
  /** The model that answered, as the agent names it; null when none did. */
  model: string | null;
  tokens: { prompt: number; completion: number } | null;
};

/** What observes turns from outside the domain (metrics); every method is optional and must not throw. */
export type TurnObserver = {
  /** A tool call completed (success or `isError`), told as it completes. */
  toolCall?(call: ToolCallRecord): void;
  /** A request began waiting in a conversation's queue on this instance (+1), or stopped waiting (-1). */
  waiting?(change: 1 | -1): void;
  /** The turn ended, whichever way: once per `runTurn`. */
  end?(report: TurnReport): void;
};

/** The clock and the tally of one turn, from the start of `runTurn`. */
export class TurnWatch {
  conversationId: string | null = null;
  turnId: string | null = null;
  model: string | null = null;
  tokens: TurnReport['tokens'] = null;
  private readonly phases: Partial<Record<TurnPhase, number>> = {};
  private readonly started = performance.now();
  private mark = this.started;
  // Private: the tool calls' spans, to tell the tools' time from the model's in step 6 (calls may run at once).
  private readonly spans: [number, number][] = [];

  /** Ends `phase` now: the time since the previous boundary is added to it. */
  lap(phase: TurnPhase): void {
    const now = performance.now();
    this.phases[phase] = (this.phases[phase] ?? 0) + (now - this.mark);
    this.mark = now;
  }

  /** A tool call of step 6 completed. */
  toolCall(call: ToolCallRecord): void {
    const start = call.startedAt.getTime();
    this.spans.push([start, start + call.durationMs]);
  }

  /** Ends step 6: its time is split into `tools` (while any call ran) and `model` (the rest). */
  agentDone(): void {
    const now = performance.now();
    const total = now - this.mark;
    const tools = Math.min(covered(this.spans), total);
    this.phases.tools = (this.phases.tools ?? 0) + tools;
    this.phases.model = (this.phases.model ?? 0) + (total - tools);
    this.mark = now;
  }

  /** The report of a turn that answered (`replayed` or `completed`). */
  answered(replayed: boolean): TurnReport {
    return this.report(replayed ? 'replayed' : 'completed', null);
  }

  /** The report of a turn that threw `error`. */
  threw(error: unknown): TurnReport {
    if (!(error instanceof AppError)) return this.report('error', 'INTERNAL_SERVER_ERROR');
    return this.report(OUTCOME_OF_CODE[error.code] ?? 'refused', error.code);
  }

  private report(outcome: TurnOutcome, errorCode: ErrorCode | null): TurnReport {
    const phases: TurnReport['phases'] = {};
    for (const phase of TURN_PHASES) {
      const ms = this.phases[phase];
      if (ms !== undefined) phases[phase] = Math.round(ms);
    }
    return {
      outcome,
      errorCode,
      conversationId: this.conversationId,
      turnId: this.turnId,
      phases,
      totalMs: Math.round(performance.now() - this.started),
      toolCalls: this.spans.length,
      model: this.model,
      tokens: this.tokens,
    };
  }
}

// Private: how many milliseconds the union of `spans` covers.
function covered(spans: [number, number][]): number {
  if (spans.length === 0) return 0;
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [start, end] = sorted[0] as [number, number];
  for (const [from, to] of sorted.slice(1)) {
    if (from > end) {
      total += end - start;
      start = from;
      end = to;
    } else if (to > end) end = to;
  }
  return total + (end - start);
}
