/**
 * The context sent to the model: trimmed to the token budget newest first, the system prompt
 * and the new user message always kept, tool calls and their results taken or dropped together,
 * broken tool use repaired. Messages are counted with a stand-in counter (one token per message
 * unless the content says otherwise) so that each budget below reads plainly.
 */
import { describe, expect, it } from 'vitest';
import {
  countMessageTokens,
  countToolTokens,
  fitContext,
  INTERRUPTED_RESULT,
  repairToolUse,
  TOKENS_PER_MESSAGE,
} from '../src/agent/context.js';
import type { AgentMessage } from '../src/agent/types.js';

// Private: "weight:5 ..." costs 5; everything else costs 1.
const count = (message: AgentMessage) => Number(/^weight:(\d+)/.exec(message.content)?.[1] ?? 1);

const system: AgentMessage = { role: 'system', content: 'You are a todo assistant.' };
const user = (content: string): AgentMessage => ({ role: 'user', content });
const assistant = (content: string): AgentMessage => ({ role: 'assistant', content });
const calls = (...ids: string[]): AgentMessage => ({
  role: 'assistant',
  content: '',
  toolCalls: ids.map((id) => ({ id, name: 'add_task', arguments: `{"title":"${id}"}` })),
});
const result = (callId: string, content = `result of ${callId}`): AgentMessage => ({ role: 'tool', callId, content });

describe('fitContext', () => {
  it('keeps everything when it fits', () => {
    const messages = [system, user('one'), assistant('two'), user('three')];
    expect(fitContext(messages, { maxTokens: 4, count })).toEqual({ messages, tokens: 4, dropped: 0 });
  });

  it('drops the oldest messages first and keeps the newest that fit', () => {
    const messages = [system, user('u1'), assistant('a1'), user('u2'), assistant('a2'), user('new')];
    const fitted = fitContext(messages, { maxTokens: 4, count });
    expect(fitted.messages).toEqual([system, user('u2'), assistant('a2'), user('new')]);
    expect(fitted).toMatchObject({ tokens: 4, dropped: 2 });
  });

  it('stops at the first message that does not fit, leaving no gap in the history it keeps', () => {
    const messages = [system, user('u1'), assistant('weight:5 long answer'), user('u2'), user('new')];
    expect(fitContext(messages, { maxTokens: 5, count }).messages).toEqual([system, user('u2'), user('new')]);
  });

  it('counts reserved tokens (the tool definitions) against the budget', () => {
    const messages = [system, user('u1'), assistant('a1'), user('new')];
    expect(fitContext(messages, { maxTokens: 4, reservedTokens: 1, count }).messages).toEqual([system, assistant('a1'), user('new')]);
  });

  it('keeps the system prompt and the new user message even when they alone are over the budget', () => {
    const big = user('weight:50 a very long new message');
    const fitted = fitContext([system, user('u1'), assistant('a1'), big], { maxTokens: 10, count });
    expect(fitted).toEqual({ messages: [system, big], tokens: 51, dropped: 2 });
  });

  it('takes a tool call and its results as one unit, or drops them together', () => {
    const unit = [calls('call_1', 'call_2'), result('call_1'), result('call_2')];
    const messages = [system, user('u1'), ...unit, assistant('a1'), user('new')];

    expect(fitContext(messages, { maxTokens: 6, count }).messages).toEqual([system, ...unit, assistant('a1'), user('new')]);
    // One token short of the unit: none of it is sent, and nothing older either.
    expect(fitContext(messages, { maxTokens: 5, count }).messages).toEqual([system, assistant('a1'), user('new')]);
  });

  it('keeps the new user message together with the tool calls a resumed turn already made after it', () => {
    const resumed = [user('weight:3 new'), calls('call_9'), result('call_9')];
    const fitted = fitContext([system, user('u1'), assistant('a1'), ...resumed], { maxTokens: 5, count });
    expect(fitted.messages).toEqual([system, ...resumed]);
  });

  it('never starts the kept history with a tool message', () => {
    const messages = [system, user('u1'), calls('call_1'), result('call_1'), user('new')];
    for (let maxTokens = 1; maxTokens <= 6; maxTokens++) {
      const kept = fitContext(messages, { maxTokens, count }).messages;
      expect(kept[1]?.role, `budget ${maxTokens}`).not.toBe('tool');
    }
  });

  it('repairs before it trims: a call left without a result is sent with the interrupted result', () => {
    const fitted = fitContext([system, user('u1'), calls('call_lost'), user('new')], { maxTokens: 100, count });
    expect(fitted.messages).toEqual([system, user('u1'), calls('call_lost'), result('call_lost', INTERRUPTED_RESULT), user('new')]);
  });

  it('counts with gpt-tokenizer by default, tool calls and per-message overhead included', () => {
    const plain = countMessageTokens(user('buy milk'));
    expect(plain).toBeGreaterThan(TOKENS_PER_MESSAGE);
    expect(countMessageTokens(calls('call_1'))).toBeGreaterThan(TOKENS_PER_MESSAGE);
    // Special-token strings in user text are plain text, not an error.
    expect(countMessageTokens(user('say <|endoftext|> please'))).toBeGreaterThan(TOKENS_PER_MESSAGE);

    const messages = [system, user('u1'), user('new')];
    const exact = countMessageTokens(system) + countMessageTokens(user('u1')) + countMessageTokens(user('new'));
    expect(fitContext(messages, { maxTokens: exact })).toEqual({ messages, tokens: exact, dropped: 0 });
    expect(fitContext(messages, { maxTokens: exact - 1 }).messages).toEqual([system, user('new')]);
  });

  it('counts tool definitions by their JSON', () => {
    const tool = {
      server: 'todo',
      name: 'add_task',
      description: 'Create a task.',
      inputSchema: { type: 'object', properties: { title: { type: 'string' } } },
    };
    expect(countToolTokens([])).toBe(0);
    expect(countToolTokens([tool, tool])).toBe(2 * countToolTokens([tool]));
    expect(countToolTokens([tool])).toBeGreaterThan(10);
  });
});

describe('repairToolUse', () => {
  it('leaves well-formed tool use as it is', () => {
    const messages = [user('u1'), calls('call_1', 'call_2'), result('call_1'), result('call_2'), assistant('done')];
    expect(repairToolUse(messages)).toEqual(messages);
  });

  it('gives a call whose result is missing a synthetic error result saying it was interrupted', () => {
    const repaired = repairToolUse([user('u1'), calls('call_1', 'call_2'), result('call_2'), user('u2')]);
    expect(repaired).toEqual([user('u1'), calls('call_1', 'call_2'), result('call_1', INTERRUPTED_RESULT), result('call_2'), user('u2')]);
    expect(JSON.parse(INTERRUPTED_RESULT)).toEqual({ error: expect.stringContaining('interrupted') });
  });

  it('drops a result whose call is missing, wherever it stands', () => {
    expect(repairToolUse([result('call_0'), user('u1'), result('call_9'), assistant('a1')])).toEqual([user('u1'), assistant('a1')]);
  });

  it('drops a result that answers no call of the assistant message before it, or answers one twice', () => {
    const repaired = repairToolUse([calls('call_1'), result('call_1'), result('call_other'), result('call_1', 'again')]);
    expect(repaired).toEqual([calls('call_1'), result('call_1')]);
  });

  it('drops a result separated from its call by another message', () => {
    const repaired = repairToolUse([calls('call_1'), assistant('meanwhile'), result('call_1')]);
    expect(repaired).toEqual([calls('call_1'), result('call_1', INTERRUPTED_RESULT), assistant('meanwhile')]);
  });

  it('puts the results in the order of the calls', () => {
    expect(repairToolUse([calls('call_1', 'call_2'), result('call_2'), result('call_1')])).toEqual([
      calls('call_1', 'call_2'),
      result('call_1'),
      result('call_2'),
    ]);
  });
});
