/**
 * The system prompt of the model agent. `config.ts` chooses and loads it (`SYSTEM_PROMPT`,
 * `SYSTEM_PROMPT_FILE`, else `DEFAULT_SYSTEM_PROMPT`, defined there); this module only hands it on.
 */
import type { Config } from '../config.js';

/** The system prompt `config` holds, loaded by `loadConfig`; reads nothing itself. */
export function loadSystemPrompt(config: Pick<Config, 'openai'>): string {
  return config.openai.systemPrompt;
}
