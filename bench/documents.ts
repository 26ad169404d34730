/**
 * The GraphQL documents the bench sends, and how it counts the objects of an answer (every object
 * with an `id`: conversations, messages, last messages, tool calls).
 */

/** A turn; the offline agent answers `hello` without a tool call and `show my tasks` with one (`list_tasks`). */
export const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { response toolCalls { name } } }`;
export const NO_TOOL_MESSAGE = 'hello';
export const TOOL_MESSAGE = 'show my tasks';

/** Browsing: a page of conversations, each with its count, last message and last 20 messages with their tool calls. */
export const BROWSE = `query ($n: Int!) { conversations(first: $n) { edges { node { id messageCount lastMessage { id content }
  messages(last: 20) { edges { node { id role content toolCalls { id name } } } } } } } }`;

/** The memory test's browse: 100 conversations, their last 20 messages and tool calls. */
export const BROWSE_FOR_MEMORY = `{ conversations(first: 100) { edges { node { id
  messages(last: 20) { edges { node { id toolCalls { id name } } } } } } } }`;

/** How many objects with an `id` `value` holds, at any depth. */
export function countObjects(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + countObjects(item), 0);
  if (value === null || typeof value !== 'object') return 0;
  const own = 'id' in value ? 1 : 0;
  return Object.values(value).reduce((sum: number, item) => sum + countObjects(item), own);
}
