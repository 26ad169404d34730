/**
 * The agent on a language model as the app builds it: the tool loop (`loop.ts`) on the OpenAI
 * provider (`openai-provider.ts`). Every setting is given: the defaults are `config.ts`'s.
 */
import type { Logger } from '../log.js';
import { ToolLoopAgent } from './loop.js';
import { OpenAiProvider } from './openai-provider.js';

export type OpenAiAgentOptions = {
  /** Sent as the bearer token; servers that check none (Ollama) accept any non-empty value. */
  apiKey: string;
  /** The API's base URL, `/v1` included (default: OpenAI's, `https://api.openai.com/v1`). */
  baseURL?: string;
  /** The model asked for in every request. */
  model: string;
  /** Retries of one failed model call (429, 5xx, connection errors), done by the SDK (`OPENAI_MAX_RETRIES`). */
  maxRetries: number;
  /** Model calls per turn that may ask for tools; past them the turn ends with an explanation (`MAX_TOOL_ROUNDS`). */
  maxToolRounds: number;
  /** Token budget of the context sent (`CONTEXT_TOKENS`); see `fitContext`. */
  contextTokens: number;
  /** The system prompt (`config.openai.systemPrompt`). */
  systemPrompt: string;
  /** The model asked for conversations' titles after their first turn (`TITLE_MODEL`); null: no model titles. */
  titleModel: string | null;
  log: Logger;
};

/** An `Agent` on any OpenAI-compatible Chat Completions endpoint, named for its model. */
export class OpenAiAgent extends ToolLoopAgent {
  constructor(options: OpenAiAgentOptions) {
    const { apiKey, baseURL, model, maxRetries, maxToolRounds, contextTokens, systemPrompt, titleModel } = options;
    // One logger for the SDK's lines and the loop's, so that both carry the agent and its model.
    const log = options.log.child({ agent: 'openai', model });
    const titleProvider =
      titleModel === null
        ? undefined
        : new OpenAiProvider({
            apiKey,
            baseURL,
            model: titleModel,
            maxRetries,
            log: options.log.child({ agent: 'openai', model: titleModel, purpose: 'title' }),
          });
    super({
      provider: new OpenAiProvider({ apiKey, baseURL, model, maxRetries, log }),
      maxToolRounds,
      contextTokens,
      systemPrompt,
      titleProvider,
      log,
    });
  }
}
