/**
 * The OpenAI provider: any server that speaks OpenAI's Chat Completions with function tools
 * (OpenAI itself, Ollama, vLLM, llama.cpp, LM Studio), through the official `openai` SDK.
 *
 * The pure mappers between our neutral messages and tools and the Chat Completions shapes are the
 * whole of what this file knows about the API; `OpenAiProvider` makes one streaming call with them
 * and assembles the step from its chunks (`ChatStreamAssembler`). A failed call (HTTP error,
 * connection, the turn's deadline) is thrown after the SDK's own retries, the only ones there are;
 * a stream that breaks off after it began is thrown as it is (the SDK retries only the request).
 * Each call is a `model.call` span (model, finish reason, tokens; no text), a no-op unless
 * `tracing.ts` started an SDK.
 */
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import OpenAI from 'openai';
import type { Logger } from '../log.js';
import type { ModelProvider, ModelRequest, ModelStep } from './provider.js';
import type { AgentMessage, AgentToolCall, TokenUsage, ToolInfo } from './types.js';

export type OpenAiProviderOptions = {
  /** Sent as the bearer token; servers that check none (Ollama) accept any non-empty value. */
  apiKey: string;
  /** The API's base URL, `/v1` included (default: OpenAI's, `https://api.openai.com/v1`). */
  baseURL?: string;
  /** The model asked for in every request. */
  model: string;
  /** Retries of one failed model call (429, 5xx, connection errors), done by the SDK (`OPENAI_MAX_RETRIES`). */
  maxRetries: number;
  /** Where the SDK's own log lines go, at this logger's level. */
  log: Logger;
};

/** A `ModelProvider` on any OpenAI-compatible Chat Completions endpoint; see the module header. */
export class OpenAiProvider implements ModelProvider {
  readonly model: string;
  private readonly client: OpenAI;

  constructor(options: OpenAiProviderOptions) {
    if (!options.apiKey)
      throw new Error('OpenAiProvider needs an apiKey (any non-empty value for servers that check none), but got an empty one');
    this.model = options.model;
    // Every setting is given explicitly (null rather than undefined): the SDK would otherwise
    // fill the gaps from process.env, and config.ts is the one reader of the environment.
    this.client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseURL ?? null,
      organization: null,
      project: null,
      adminAPIKey: null,
      webhookSecret: null,
      maxRetries: options.maxRetries,
      logger: sdkLogger(options.log),
      logLevel: sdkLogLevel(options.log.level),
    });
  }

  generate({ messages, tools, signal, onText }: ModelRequest): Promise<ModelStep> {
    const attributes = { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': this.model, 'gen_ai.request.messages': messages.length };
    return tracer.startActiveSpan('model.call', { kind: SpanKind.CLIENT, attributes }, async (span) => {
      try {
        const stream = await this.client.chat.completions.create(
          { ...toOpenAiRequest(this.model, messages, tools), stream: true, stream_options: { include_usage: true } },
          { signal },
        );
        const assembler = new ChatStreamAssembler(this.model);
        for await (const chunk of stream) {
          const text = assembler.add(chunk);
          if (text) onText?.(text);
        }
        const step = assembler.step();
        span.setAttributes({
          'gen_ai.response.model': step.model,
          'gen_ai.response.finish_reason': step.finishReason ?? 'none',
          'gen_ai.response.tool_calls': step.message.role === 'assistant' ? (step.message.toolCalls?.length ?? 0) : 0,
          ...(step.usage
            ? { 'gen_ai.usage.input_tokens': step.usage.promptTokens, 'gen_ai.usage.output_tokens': step.usage.completionTokens }
            : {}),
        });
        return step;
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).name });
        throw error;
      } finally {
        span.end();
      }
    });
  }
}

/** The tracer of the model calls' spans (a no-op until an SDK is registered: `tracing.ts`). */
const tracer = trace.getTracer('stateless-chat');

/**
 * Assembles one streamed completion's `ChatCompletionChunk`s into the model's step: the first
 * choice's text (content and refusal pieces, in order), its tool calls assembled by `index` (id,
 * type and name from the piece that carries them, `arguments` from every piece; a call without an
 * id gets one), its finish reason, the model that answered (`model` when the server names none)
 * and the usage of the final chunk (null when none came). A chunk without choices (the usage
 * chunk) carries only its usage; choices other than the first are ignored (we ask for one).
 */
export class ChatStreamAssembler {
  private text = '';
  private readonly calls = new Map<number, { id: string; type: 'function' | 'custom'; name: string; arguments: string }>();
  private finishReason: string | undefined;
  private answeredBy = '';
  private usage: TokenUsage | null = null;
  private chunks = 0;

  constructor(private readonly model: string) {}

  /** Takes the next chunk; returns the text it adds to the step ('' for none). */
  add(chunk: OpenAI.ChatCompletionChunk): string {
    this.chunks += 1;
    if (chunk.model) this.answeredBy = chunk.model;
    if (chunk.usage) this.usage = fromOpenAiUsage(chunk.usage);
    const choice = chunk.choices.find((c) => c.index === 0);
    if (!choice) return '';
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
    const { delta } = choice;
    for (const piece of delta?.tool_calls ?? []) {
      const call = this.calls.get(piece.index) ?? { id: '', type: 'function', name: '', arguments: '' };
      this.calls.set(piece.index, call);
      if (piece.id) call.id = piece.id;
      if (piece.type) call.type = piece.type;
      const name = piece.function?.name ?? piece.custom?.name;
      if (name) call.name = name;
      call.arguments += piece.function?.arguments ?? piece.custom?.input ?? '';
    }
    const text = (delta?.content ?? '') + (delta?.refusal ?? '');
    this.text += text;
    return text;
  }

  /** The step so far (the whole step once the stream has ended). Throws when no chunk came. */
  step(): ModelStep {
    if (this.chunks === 0) throw new Error('The model stream ended without a chunk');
    const calls = [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) =>
        fromOpenAiToolCall(
          call.type === 'custom'
            ? { id: call.id, type: 'custom', custom: { name: call.name, input: call.arguments } }
            : { id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } },
        ),
      );
    return {
      message: calls.length > 0 ? { role: 'assistant', content: this.text, toolCalls: calls } : { role: 'assistant', content: this.text },
      model: this.answeredBy || this.model,
      usage: this.usage,
      finishReason: this.finishReason,
    };
  }
}

/** A request for `model` with `messages` and the function `tools`, as Chat Completions takes it. */
export function toOpenAiRequest(model: string, messages: AgentMessage[], tools: ToolInfo[]): OpenAI.ChatCompletionCreateParamsNonStreaming {
  return {
    model,
    messages: messages.map(toOpenAiMessage),
    // An empty `tools` array is refused by some servers; no tools means no field.
    ...(tools.length > 0 ? { tools: tools.map(toOpenAiTool) } : {}),
  };
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
        tool_calls: message.toolCalls.map((call) => ({
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: call.arguments },
        })),
      };
  }
}

/** A tool of the tool box as a Chat Completions function tool. */
export function toOpenAiTool(tool: ToolInfo): OpenAI.ChatCompletionFunctionTool {
  return { type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.inputSchema } };
}

/** A call's token usage; null when the server reports none. */
export function fromOpenAiUsage(usage: OpenAI.CompletionUsage | undefined): TokenUsage | null {
  if (!usage) return null;
  return { promptTokens: usage.prompt_tokens ?? 0, completionTokens: usage.completion_tokens ?? 0, totalTokens: usage.total_tokens ?? 0 };
}

// Private: a call without an id (some local servers omit it) gets one, since its result must name it.
function fromOpenAiToolCall(call: OpenAI.ChatCompletionMessageToolCall): AgentToolCall {
  const id = call.id || `call_${crypto.randomUUID()}`;
  // Only function tools are offered; a custom call is passed on for the tool box to refuse as data.
  if (call.type === 'custom') return { id, name: call.custom.name, arguments: call.custom.input };
  return { id, name: call.function.name, arguments: call.function.arguments ?? '' };
}

// Private: the SDK logs `(message, ...details)`; pino wants the details as an object first.
function sdkLogger(log: Logger): NonNullable<ConstructorParameters<typeof OpenAI>[0]>['logger'] {
  const at =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (message: string, ...details: unknown[]) =>
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
