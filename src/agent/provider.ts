/**
 * The seam between the tool loop and a language model. A `ModelProvider` is given the neutral
 * messages and the tools on offer and returns the model's next step as a neutral assistant
 * message; each provider file is the whole mapping to one API (`openai-provider.ts`). A provider
 * makes one model call at a time and knows nothing of the loop, of running tools, or of the turn.
 */
import type { AgentMessage, TokenUsage, ToolInfo } from './types.js';

export type ModelRequest = {
  /** The context to send, system prompt first; tool results follow the call that asked for them. */
  messages: AgentMessage[];
  /** The tools the model may call (none: the request offers no tools). */
  tools: ToolInfo[];
  signal?: AbortSignal;
  /**
   * Called with each piece of the step's text (its content, or its refusal) as it arrives, in
   * order, never with an empty piece; the pieces concatenate to the returned message's `content`.
   */
  onText?: (delta: string) => void;
};

export type ModelStep = {
  /** The model's message: its text, and the tool calls it asks for, when it asks for any. */
  message: Extract<AgentMessage, { role: 'assistant' }>;
  /** The model that answered, as the server names it. */
  model: string;
  /** Tokens of this one call; null when the server reports none. */
  usage: TokenUsage | null;
  /** Why the model stopped, in the server's words, for logs. */
  finishReason?: string;
};

export interface ModelProvider {
  /** The model asked for in every call. */
  readonly model: string;
  /** One model call. Throws when the call itself fails (HTTP error, connection, `signal`). */
  generate(request: ModelRequest): Promise<ModelStep>;
}
