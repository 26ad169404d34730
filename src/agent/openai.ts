/**
 * The agent on a language model: any server that speaks OpenAI's Chat Completions with function
 * tools (OpenAI itself, Ollama, vLLM, llama.cpp, LM Studio), through the official `openai` SDK.
 *
 * One `run` is the tool loop of one turn: send the context and the tool box's tools, run the tool
 * calls the model asks for (the calls of one step concurrently), send their results back, and
 * repeat until the model answers with text or `maxToolRounds` is spent. Tool failures are data
 * the model reads (the tool box makes them so); a failure of the model call itself (HTTP error,
 * connection, the turn's deadline) is thrown, after the SDK's own retries, the only ones there are.
 */
import OpenAI from 'openai';
import type { Logger } from '../log.js';
import { countToolTokens, fitContext } from './context.js';
import { DEFAULT_SYSTEM_PROMPT } from './system-prompt.js';
import type { Agent, AgentInput, AgentMessage, AgentReply, AgentToolCall, TokenUsage, ToolInfo } from './types.js';

export type OpenAiAgentOptions = {
  /** Sent as the bearer token; servers that check none (Ollama) accept any non-empty value. */
  apiKey: string;
  /** The API's base URL, `/v1` included (default: OpenAI's, `https://api.openai.com/v1`). */
  baseURL?: string;
  /** The model asked for in every request. */
  model: string;
  /** Retries of one failed model call (429, 5xx, connection errors), done by the SDK (default 2). */
  maxRetries?: number;
  /** Model calls per turn that may ask for tools; past them the turn ends with an explanation (default 8). */
  maxToolRounds?: number;
  /** Token budget of the context sent (default 32,000); see `fitContext`. */
  contextTokens?: number;
  /** The system prompt (default `DEFAULT_SYSTEM_PROMPT`). */
  systemPrompt?: string;
  log: Logger;
};

/** An `Agent` on any OpenAI-compatible Chat Completions endpoint; see the module header. */
export class OpenAiAgent implements Agent {
  readonly name: string;
  private readonly client: OpenAI;
  private readonly model: string;
  private readonly maxToolRounds: number;
  private readonly contextTokens: number;
  private readonly systemPrompt: string;
  private readonly log: Logger;

  constructor(options: OpenAiAgentOptions) {
    if (!options.apiKey) throw new Error('OpenAiAgent needs an apiKey (any non-empty value for servers that check none), but got an empty one');
    this.name = options.model;
    this.model = options.model;
    this.maxToolRounds = options.maxToolRounds ?? 8;
    this.contextTokens = options.contextTokens ?? 32_000;
    this.systemPrompt = options.systemPrompt ?? DEFAULT_SYSTEM_PROMPT;
    this.log = options.log.child({ agent: 'openai', model: options.model });
    // Every setting is given explicitly (null rather than undefined): the SDK would otherwise
    // fill the gaps from process.env, and config.ts is the one reader of the environment.
    this.client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseURL ?? null,
      organization: null,
      project: null,
      adminAPIKey: null,
      webhookSecret: null,
      maxRetries: options.maxRetries ?? 2,
      logger: sdkLogger(this.log),
      logLevel: sdkLogLevel(this.log.level),
    });
  }

  async run({ messages, tools, signal }: AgentInput): Promise<AgentReply> {
    const offered = tools.list();
    const context = fitContext([{ role: 'system', content: this.systemPrompt }, ...messages], {
      maxTokens: this.contextTokens,
      reservedTokens: countToolTokens(offered),
    });
    if (context.dropped > 0) this.log.debug({ dropped: context.dropped, tokens: context.tokens }, 'context trimmed to CONTEXT_TOKENS');

    const sent: AgentMessage[] = context.messages;
    const functions = offered.map(toOpenAiTool);
    let usage: TokenUsage | null = null;
    let model = this.model;
    for (let round = 1; round <= this.maxToolRounds; round++) {
      signal?.throwIfAborted();
      const completion = await this.client.chat.completions.create(
        {
          model: this.model,
          messages: sent.map(toOpenAiMessage),
          // An empty `tools` array is refused by some servers; no tools means no field.
          ...(functions.length > 0 ? { tools: functions } : {}),
        },
        { signal },
      );
      usage = addUsage(usage, completion.usage);
      model = completion.model || this.model;
      const choice = completion.choices[0];
      if (!choice) throw new Error(`The model returned no choices (completion ${completion.id})`);
      const step = fromOpenAiMessage(choice.message);
      this.log.debug({ round, finishReason: choice.finish_reason, toolCalls: step.toolCalls?.length ?? 0, usage: completion.usage }, 'model step');
      if (!step.toolCalls) return { content: step.content, model, usage };

      sent.push(step);
      const outcomes = await Promise.all(step.toolCalls.map((call) => tools.call(call.name, call.arguments, call.id)));
      step.toolCalls.forEach((call, index) => sent.push({ role: 'tool', callId: call.id, content: outcomes[index]!.content }));
    }
    this.log.warn({ maxToolRounds: this.maxToolRounds }, 'turn ended at the tool round limit');
    return { content: roundsExhausted(this.maxToolRounds), model, usage };
  }
}

/** A neutral message as Chat Completions takes it. */
export function toOpenAiMessage(message: AgentMessage): OpenAI.ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'tool':
      return { role: 'tool', tool_call_id: message.callId, content: message.content };
    case 'assistant':
      if (!message.toolCalls?.length) return { role: 'assistant', content: message.content };
      return {
        role: 'assistant',
        // Null, not "", beside tool calls: the shape the API itself returns.
        content: message.content === '' ? null : message.content,
        tool_calls: message.toolCalls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
      };
  }
}

/**
 * The model's message as a neutral assistant message: its text (or its refusal), and its tool
 * calls when it asked for any. A call without an id (some local servers omit it) gets one, since
 * its result must name it.
 */
export function fromOpenAiMessage(message: OpenAI.ChatCompletionMessage): Extract<AgentMessage, { role: 'assistant' }> {
  const content = message.content ?? message.refusal ?? '';
  const calls = message.tool_calls ?? [];
  if (calls.length === 0) return { role: 'assistant', content };
  return { role: 'assistant', content, toolCalls: calls.map(fromOpenAiToolCall) };
}

/** A tool of the tool box as a Chat Completions function tool. */
export function toOpenAiTool(tool: ToolInfo): OpenAI.ChatCompletionFunctionTool {
  return { type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.inputSchema } };
}

function fromOpenAiToolCall(call: OpenAI.ChatCompletionMessageToolCall): AgentToolCall {
  const id = call.id || `call_${crypto.randomUUID()}`;
  // Only function tools are offered; a custom call is passed on for the tool box to refuse as data.
  if (call.type === 'custom') return { id, name: call.custom.name, arguments: call.custom.input };
  return { id, name: call.function.name, arguments: call.function.arguments ?? '' };
}

// Private: the turn's usage is the sum over its model calls; servers that report none leave it null.
function addUsage(total: TokenUsage | null, usage: OpenAI.CompletionUsage | undefined): TokenUsage | null {
  if (!usage) return total;
  return {
    promptTokens: (total?.promptTokens ?? 0) + (usage.prompt_tokens ?? 0),
    completionTokens: (total?.completionTokens ?? 0) + (usage.completion_tokens ?? 0),
    totalTokens: (total?.totalTokens ?? 0) + (usage.total_tokens ?? 0),
  };
}

function roundsExhausted(maxToolRounds: number): string {
  return (
    `I stopped before finishing: this request needed more than ${maxToolRounds} rounds of tool calls, the limit for one message. ` +
    'The tool calls made so far were carried out and recorded. Ask me to continue, or split the request into smaller steps.'
  );
}

// Private: the SDK logs `(message, ...details)`; pino wants the details as an object first.
function sdkLogger(log: Logger): NonNullable<ConstructorParameters<typeof OpenAI>[0]>['logger'] {
  const at = (level: 'error' | 'warn' | 'info' | 'debug') => (message: string, ...details: unknown[]) =>
    log[level](details.length > 0 ? { details } : {}, message);
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

// Private: the SDK logs at the process's level (and, given a level, does not read OPENAI_LOG).
function sdkLogLevel(level: string): 'off' | 'error' | 'warn' | 'info' | 'debug' {
  if (level === 'trace' || level === 'debug') return 'debug';
  if (level === 'info' || level === 'warn') return level;
  if (level === 'error' || level === 'fatal') return 'error';
  return 'off';
}
