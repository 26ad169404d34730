/**
 * Fits a turn's neutral message list to the model's token budget, and repairs tool use that
 * history left broken, so that what is sent is always a request every Chat Completions server
 * accepts.
 *
 * Rules, in order:
 * - An `assistant` message with `toolCalls` and the `tool` messages right after it form one unit.
 *   A call without a result gets a synthetic error result (the call was interrupted); a result
 *   whose call is not right before it is dropped. Servers reject both kinds of dangling halves.
 * - The system prompt (leading `system` messages) and the final unit (the new user message) are
 *   always kept, even when they alone exceed the budget: without them there is no request.
 * - Older units are added newest first while they fit; the first that does not fit ends the
 *   walk, so the kept history is one unbroken stretch that ends at the new message.
 * - Units are taken or dropped whole: a call never travels without its result, nor a result
 *   without its call, and the kept context never starts with a `tool` message.
 *
 * Counts are estimates with `gpt-tokenizer` (the `o200k_base` encoding of current OpenAI models);
 * other models tokenize differently, which is why the budget should keep some headroom.
 */
import { countTokens } from 'gpt-tokenizer';
import type { AgentMessage, AgentToolCall, ToolInfo } from './types.js';

/** What a repaired call's result says, as the model reads it. */
export const INTERRUPTED_RESULT = JSON.stringify({ error: 'The tool call was interrupted before it returned a result.' });

/**
 * Tokens a chat format spends on each message beyond its text (role and separators), the
 * figure of OpenAI's own counting guide for current models.
 */
export const TOKENS_PER_MESSAGE = 4;

type ToolMessage = Extract<AgentMessage, { role: 'tool' }>;

export type FitOptions = {
  /** The budget for the whole request: messages plus `reservedTokens`. */
  maxTokens: number;
  /** Tokens spent outside the messages, such as the tool definitions (default 0). */
  reservedTokens?: number;
  /** Counts a message's tokens (default `countMessageTokens`). */
  count?: (message: AgentMessage) => number;
};

export type FittedContext = {
  /** The messages to send: the system prompt, the newest history that fits, the new message. */
  messages: AgentMessage[];
  /** Estimated tokens of `messages` plus the reserved tokens; above `maxTokens` only when the kept minimum is. */
  tokens: number;
  /** How many messages of the (repaired) history were left out for the budget. */
  dropped: number;
};

/**
 * Repairs `messages` (see `repairToolUse`) and keeps the system prompt, the final unit and as
 * many of the newest units before it as fit in `maxTokens`.
 */
export function fitContext(messages: AgentMessage[], options: FitOptions): FittedContext {
  const count = options.count ?? countMessageTokens;
  const repaired = repairToolUse(messages);
  const leading = repaired.findIndex((message) => message.role !== 'system');
  const systemCount = leading === -1 ? repaired.length : leading;
  const system = repaired.slice(0, systemCount);
  const units = toUnits(repaired.slice(systemCount));
  // The new user message and what this turn already did after it (a resumed turn's tool calls).
  const newest = units.findLastIndex((unit) => unit[0]?.role === 'user');
  const last = units.splice(newest === -1 ? Math.max(units.length - 1, 0) : newest).flat();

  const cost = (unit: AgentMessage[]) => unit.reduce((sum, message) => sum + count(message), 0);
  let tokens = (options.reservedTokens ?? 0) + cost(system) + cost(last);
  const kept: AgentMessage[][] = [];
  for (const unit of units.toReversed()) {
    const unitTokens = cost(unit);
    if (tokens + unitTokens > options.maxTokens) break;
    tokens += unitTokens;
    kept.push(unit);
  }
  kept.reverse();
  const history = kept.flat();
  const dropped = repaired.length - system.length - last.length - history.length;
  return { messages: [...system, ...history, ...last], tokens, dropped };
}

/**
 * Makes tool use well formed: right after an `assistant` message with `toolCalls` come exactly
 * one `tool` message per call, in the calls' order. A missing result becomes `INTERRUPTED_RESULT`
 * (a turn that died mid-call leaves such a call); a `tool` message that answers no call of the
 * `assistant` message right before it, or answers one twice, is dropped. Other messages pass as
 * they are. Pure: returns a new array.
 */
export function repairToolUse(messages: AgentMessage[]): AgentMessage[] {
  const repaired: AgentMessage[] = [];
  let i = 0;
  for (let message = messages[i]; message !== undefined; message = messages[i]) {
    i += 1;
    if (message.role === 'tool') continue; // Not right after its call: an orphan.
    repaired.push(message);
    if (message.role !== 'assistant' || !message.toolCalls?.length) continue;

    const results = new Map<string, ToolMessage>();
    for (; messages[i]?.role === 'tool'; i++) {
      const result = messages[i] as ToolMessage;
      if (!results.has(result.callId)) results.set(result.callId, result);
    }
    for (const call of message.toolCalls) {
      repaired.push(results.get(call.id) ?? { role: 'tool', callId: call.id, content: INTERRUPTED_RESULT });
    }
  }
  return repaired;
}

/** Estimated tokens of one message as a chat model reads it: its text, its tool calls, and the per-message overhead. */
export function countMessageTokens(message: AgentMessage): number {
  let tokens = TOKENS_PER_MESSAGE + countText(message.content);
  if (message.role === 'assistant') for (const call of message.toolCalls ?? []) tokens += countCall(call);
  if (message.role === 'tool') tokens += countText(message.callId);
  return tokens;
}

/** Estimated tokens of the tool definitions offered to the model (their JSON, a fair upper estimate). */
export function countToolTokens(tools: ToolInfo[]): number {
  return tools.reduce(
    (sum, tool) => sum + countText(JSON.stringify({ name: tool.name, description: tool.description, parameters: tool.inputSchema })),
    0,
  );
}

// Private: an assistant message with calls and the results after it are one unit; every other
// message is a unit of its own. Input is repaired, so results only ever follow their calls.
function toUnits(messages: AgentMessage[]): AgentMessage[][] {
  const units: AgentMessage[][] = [];
  for (const message of messages) {
    const previous = units.at(-1);
    if (message.role === 'tool' && previous) previous.push(message);
    else units.push([message]);
  }
  return units;
}

function countCall(call: AgentToolCall): number {
  return countText(call.id) + countText(call.name) + countText(call.arguments);
}

// Private: user text may contain special-token strings such as "<|endoftext|>"; they are
// counted as the plain text they are, instead of making the tokenizer throw.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

function countText(text: string): number {
  return text === '' ? 0 : countTokens(text, PLAIN_TEXT);
}
