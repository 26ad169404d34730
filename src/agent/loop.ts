/**
 * The tool loop: an `Agent` on any `ModelProvider`. One `run` is the loop of one turn: fit the
 * context to the token budget, send it with the tool box's tools, run the tool calls the model
 * asks for (the calls of one step concurrently), send their results back, and repeat until the
 * model answers with text or `maxToolRounds` is spent. The reply's text is passed on as it streams
 * (`AgentInput.onText`); the reply is all of it, so what was shown is what is stored (`ReplyText`).
 *
 * It speaks only the neutral `AgentMessage`; what a model's API looks like is its provider's.
 * Tool failures are data the model reads (the tool box makes them so); a failure of the model
 * call itself is thrown, ending the turn.
 */
import type { Logger } from '../log.js';
import { countToolTokens, fitContext } from './context.js';
import type { ModelProvider } from './provider.js';
import { cleanTitle, titleRequest } from './title.js';
import type { Agent, AgentInput, AgentMessage, AgentReply, TitleInput, TokenUsage } from './types.js';

export type ToolLoopOptions = {
  provider: ModelProvider;
  /** Model calls per turn that may ask for tools; past them the turn ends with an explanation (`MAX_TOOL_ROUNDS`). */
  maxToolRounds: number;
  /** Token budget of the context sent (`CONTEXT_TOKENS`); see `fitContext`. */
  contextTokens: number;
  /** Sent first in every model call. */
  systemPrompt: string;
  /** Asked for conversations' titles (`TITLE_MODEL`); none: the agent makes no titles. */
  titleProvider?: ModelProvider;
  log: Logger;
};

/** An `Agent` that runs the tool loop on `provider`; see the module header. */
export class ToolLoopAgent implements Agent {
  readonly name: string;
  private readonly provider: ModelProvider;
  private readonly maxToolRounds: number;
  private readonly contextTokens: number;
  private readonly systemPrompt: string;
  private readonly log: Logger;

  constructor(options: ToolLoopOptions) {
    this.name = options.provider.model;
    this.provider = options.provider;
    this.maxToolRounds = options.maxToolRounds;
    this.contextTokens = options.contextTokens;
    this.systemPrompt = options.systemPrompt;
    this.log = options.log;
    const { titleProvider } = options;
    if (titleProvider) this.title = (input) => askTitle(titleProvider, input);
  }

  /** Present when a title provider is given (`TITLE_MODEL`); see `Agent.title`. */
  readonly title?: (input: TitleInput) => Promise<string | null>;

  async run({ messages, tools, signal, onText }: AgentInput): Promise<AgentReply> {
    const offered = tools.list();
    const context = fitContext([{ role: 'system', content: this.systemPrompt }, ...messages], {
      maxTokens: this.contextTokens,
      reservedTokens: countToolTokens(offered),
    });
    if (context.dropped > 0) this.log.debug({ dropped: context.dropped, tokens: context.tokens }, 'context trimmed to CONTEXT_TOKENS');

    const sent: AgentMessage[] = context.messages;
    let usage: TokenUsage | null = null;
    let model = this.provider.model;
    const reply = new ReplyText(onText);
    for (let round = 1; round <= this.maxToolRounds; round++) {
      signal?.throwIfAborted();
      const step = await this.provider.generate({ messages: sent, tools: offered, signal, onText: reply.startStep() });
      usage = addUsage(usage, step.usage);
      model = step.model;
      const { message } = step;
      reply.endStep(message.content);
      this.log.debug(
        { round, finishReason: step.finishReason, toolCalls: message.toolCalls?.length ?? 0, usage: step.usage },
        'model step',
      );
      if (!message.toolCalls) return { content: reply.text, model, usage };

      sent.push(message);
      const outcomes = await Promise.all(message.toolCalls.map((call) => tools.call(call.name, call.arguments, call.id)));
      // One outcome per call, in the calls' order (Promise.all keeps it).
      for (const [index, call] of message.toolCalls.entries())
        sent.push({ role: 'tool', callId: call.id, content: outcomes[index]?.content ?? '' });
    }
    this.log.warn({ maxToolRounds: this.maxToolRounds }, 'turn ended at the tool round limit');
    reply.startStep()(roundsExhausted(this.maxToolRounds));
    return { content: reply.text, model, usage };
  }
}

/**
 * The reply of one run as it is given to `onText`: the steps' texts in order, a blank line
 * between two that have text (given as a piece of its own, before the later step's first piece).
 * `text` is always the concatenation of every piece given.
 */
class ReplyText {
  text = '';
  private step = '';

  constructor(private readonly onText?: (delta: string) => void) {}

  /** Begins a step; returns the callback that takes the step's pieces. */
  startStep(): (delta: string) => void {
    this.step = '';
    return (delta) => this.give(delta);
  }

  /**
   * Ends a step whose message text is `content`: what the provider did not stream of it (a
   * provider that streams nothing) is given now, so that the reply misses none of it.
   */
  endStep(content: string): void {
    if (content.startsWith(this.step)) this.give(content.slice(this.step.length));
  }

  private give(delta: string): void {
    if (!delta) return;
    if (!this.step && this.text) this.emit('\n\n');
    this.step += delta;
    this.emit(delta);
  }

  private emit(piece: string): void {
    this.text += piece;
    this.onText?.(piece);
  }
}

// Private: one model call, no tools, for a conversation's title, cleaned (`title.ts`); null when the answer holds none.
async function askTitle(provider: ModelProvider, { message, reply, signal }: TitleInput): Promise<string | null> {
  const step = await provider.generate({ messages: titleRequest(message, reply), tools: [], signal });
  return step.message.toolCalls ? null : cleanTitle(step.message.content);
}

// Private: the turn's usage is the sum over its model calls; servers that report none leave it null.
function addUsage(total: TokenUsage | null, usage: TokenUsage | null): TokenUsage | null {
  if (!usage) return total;
  return {
    promptTokens: (total?.promptTokens ?? 0) + usage.promptTokens,
    completionTokens: (total?.completionTokens ?? 0) + usage.completionTokens,
    totalTokens: (total?.totalTokens ?? 0) + usage.totalTokens,
  };
}

function roundsExhausted(maxToolRounds: number): string {
  return (
    `I stopped before finishing: this request needed more than ${maxToolRounds} rounds of tool calls, the limit for one message. ` +
    'The tool calls made so far were carried out and recorded. Ask me to continue, or split the request into smaller steps.'
  );
}
