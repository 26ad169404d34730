/**
 * The system prompt of the model agent: the todo assistant's instructions, or the text that the
 * configuration gives instead (`SYSTEM_PROMPT`, `SYSTEM_PROMPT_FILE`).
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';

/** The instructions of the todo assistant, used unless `SYSTEM_PROMPT` or `SYSTEM_PROMPT_FILE` replaces them. */
export const DEFAULT_SYSTEM_PROMPT = [
  "You are a todo assistant. You keep the user's task list with the tools you are given.",
  '- Do what the user asks with the tools, then confirm in a sentence or two what you did, naming the tasks you added, completed, changed or deleted.',
  '- Before you complete, change or delete a task the user names by its title, call list_tasks and take the task_id from its result.',
  '- Never invent or guess a task_id: use only ids that a tool returned. When no task or more than one task fits, say so and ask which one is meant.',
  '- When a tool reports an error, say plainly what failed. Never claim an action that did not succeed.',
].join('\n');

/**
 * The system prompt `config` asks for: `SYSTEM_PROMPT`'s text, else the content of
 * `SYSTEM_PROMPT_FILE` (read now, once), else `DEFAULT_SYSTEM_PROMPT`. Throws, naming the
 * variable, when both are set or the file cannot be read or is empty.
 */
export function loadSystemPrompt(config: Pick<Config, 'systemPrompt'>): string {
  const { text, file } = config.systemPrompt;
  if (text !== undefined && file !== undefined) {
    throw new Error('Set SYSTEM_PROMPT or SYSTEM_PROMPT_FILE, not both');
  }
  if (text !== undefined) return text;
  if (file === undefined) return DEFAULT_SYSTEM_PROMPT;
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`SYSTEM_PROMPT_FILE: cannot read ${JSON.stringify(file)}: ${(error as Error).message}`, { cause: error });
  }
  if (content.trim() === '') throw new Error(`SYSTEM_PROMPT_FILE: ${JSON.stringify(file)} is empty`);
  return content;
}
