/**
 * Streaming, piece by piece and without a server: `ChatStreamAssembler` on hand-written chunk
 * sequences, the tool loop's rule that the reply is exactly the concatenation of its pieces, and
 * the offline agent's pieces.
 */
import type OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { ToolLoopAgent } from '../src/agent/loop.js';
import { OfflineAgent, textPieces } from '../src/agent/offline.js';
import { ChatStreamAssembler } from '../src/agent/openai-provider.js';
import type { ModelProvider, ModelRequest, ModelStep } from '../src/agent/provider.js';
import type { ToolBox, ToolCallRecord } from '../src/agent/types.js';
import { createLogger } from '../src/log.js';

type Delta = OpenAI.ChatCompletionChunk.Choice.Delta;

function chunk(delta: Delta, finishReason: OpenAI.ChatCompletionChunk.Choice['finish_reason'] = null): OpenAI.ChatCompletionChunk {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'served-model',
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  };
}

function usageChunk(prompt: number, completion: number): OpenAI.ChatCompletionChunk {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'served-model',
    choices: [],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  };
}

/** Every chunk through one assembler: the text each added, and the step. */
function assemble(chunks: OpenAI.ChatCompletionChunk[], model = 'asked-model') {
  const assembler = new ChatStreamAssembler(model);
  const added = chunks.map((c) => assembler.add(c));
  return { added, step: assembler.step() };
}

describe('ChatStreamAssembler', () => {
  it('joins text that comes in pieces, and takes the finish reason, the model that answered and the usage of the final chunk', () => {
    const { added, step } = assemble([
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'Hel' }),
      chunk({ content: 'lo, wor' }),
      chunk({ content: 'ld.' }),
      chunk({}, 'stop'),
      usageChunk(12, 3),
    ]);
    expect(added).toEqual(['', 'Hel', 'lo, wor', 'ld.', '', '']);
    expect(step).toEqual({
      message: { role: 'assistant', content: 'Hello, world.' },
      model: 'served-model',
      usage: { promptTokens: 12, completionTokens: 3, totalTokens: 15 },
      finishReason: 'stop',
    });
  });

  it('assembles two tool calls interleaved by index, their arguments split mid-JSON, beside text', () => {
    const { step } = assemble([
      chunk({ role: 'assistant', content: 'Let me ' }),
      chunk({ content: 'look.' }),
      chunk({ tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'list_tasks', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'add_task', arguments: '{"ti' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"status":' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: 'tle":"buy mi' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"all"}' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: 'lk"}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    expect(step).toEqual({
      message: {
        role: 'assistant',
        content: 'Let me look.',
        toolCalls: [
          { id: 'call_a', name: 'list_tasks', arguments: '{"status":"all"}' },
          { id: 'call_b', name: 'add_task', arguments: '{"title":"buy milk"}' },
        ],
      },
      model: 'served-model',
      usage: null,
      finishReason: 'tool_calls',
    });
  });

  it('orders tool calls by index, not by arrival, and gives a call without an id one', () => {
    const { step } = assemble([
      chunk({ tool_calls: [{ index: 1, function: { name: 'second', arguments: '{}' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { name: 'first', arguments: '{}' } }] }),
      chunk({}, 'tool_calls'),
    ]);
    const calls = step.message.toolCalls ?? [];
    expect(calls.map((call) => call.name)).toEqual(['first', 'second']);
    for (const call of calls) expect(call.id).toMatch(/^call_[0-9a-f-]{36}$/);
    expect(calls[0]?.id).not.toBe(calls[1]?.id);
  });

  it('reads a refusal as the text, and a chunk without choices as carrying nothing but what it has', () => {
    const { added, step } = assemble([
      chunk({ role: 'assistant', content: null, refusal: 'I can’t ' }),
      { ...usageChunk(1, 1), usage: null },
      chunk({ refusal: 'help with that.' }),
      chunk({}, 'stop'),
    ]);
    expect(added).toEqual(['I can’t ', '', 'help with that.', '']);
    expect(step.message).toEqual({ role: 'assistant', content: 'I can’t help with that.' });
    expect(step.usage).toBeNull();
  });

  it('names the model asked for when the server names none, and refuses a stream without a chunk', () => {
    expect(assemble([{ ...chunk({ content: 'x' }, 'stop'), model: '' }]).step.model).toBe('asked-model');
    expect(() => new ChatStreamAssembler('m').step()).toThrow('The model stream ended without a chunk');
  });
});

/** A provider that answers each call with the next of `steps`, streaming each step's text in `pieces` (none: it does not stream). */
function scriptedProvider(steps: ModelStep['message'][], pieces: number | null): ModelProvider {
  return {
    model: 'scripted',
    async generate({ onText }: ModelRequest): Promise<ModelStep> {
      const message = steps.shift();
      if (!message) throw new Error('scripted provider: no step left');
      if (pieces !== null) for (const piece of textPieces(message.content, pieces)) onText?.(piece);
      return { message, model: 'scripted', usage: null };
    },
  };
}

function echoToolBox(): ToolBox {
  const calls: ToolCallRecord[] = [];
  return {
    list: () => [{ server: 'test', name: 'echo', description: 'echo', inputSchema: { type: 'object' } }],
    call: async () => ({ content: 'ok', structured: null, isError: false }),
    calls,
  };
}

function loopAgent(provider: ModelProvider, maxToolRounds = 3): ToolLoopAgent {
  return new ToolLoopAgent({ provider, maxToolRounds, contextTokens: 10_000, systemPrompt: 'system', log: createLogger('silent') });
}

async function runCollecting(agent: { run: ToolLoopAgent['run'] }, tools: ToolBox, text = 'hello') {
  const pieces: string[] = [];
  const reply = await agent.run({ messages: [{ role: 'user', content: text }], tools, onText: (piece) => pieces.push(piece) });
  return { reply, pieces };
}

const call = (id: string) => ({ id, name: 'echo', arguments: '{}' });

describe('the tool loop’s reply is exactly the concatenation of its pieces', () => {
  it('a text answer: the pieces as the provider streamed them', async () => {
    const provider = scriptedProvider([{ role: 'assistant', content: 'You have three tasks today.' }], 3);
    const { reply, pieces } = await runCollecting(loopAgent(provider), echoToolBox());
    expect(pieces).toEqual(['You have ', 'three tasks ', 'today.']);
    expect(reply.content).toBe('You have three tasks today.');
  });

  it('text beside tool calls stays in the reply, the steps’ texts joined by a blank line given as a piece of its own', async () => {
    const provider = scriptedProvider(
      [
        { role: 'assistant', content: 'Let me look.', toolCalls: [call('a')] },
        { role: 'assistant', content: '', toolCalls: [call('b')] },
        { role: 'assistant', content: 'Done: two calls.' },
      ],
      2,
    );
    const { reply, pieces } = await runCollecting(loopAgent(provider), echoToolBox());
    expect(pieces).toEqual(['Let me ', 'look.', '\n\n', 'Done: two ', 'calls.']);
    expect(reply.content).toBe('Let me look.\n\nDone: two calls.');
    expect(pieces.join('')).toBe(reply.content);
  });

  it('the rounds-exhausted sentence is given as a piece too', async () => {
    const provider = scriptedProvider(
      [
        { role: 'assistant', content: '', toolCalls: [call('a')] },
        { role: 'assistant', content: 'Still going.', toolCalls: [call('b')] },
      ],
      1,
    );
    const { reply, pieces } = await runCollecting(loopAgent(provider, 2), echoToolBox());
    expect(pieces.slice(0, 2)).toEqual(['Still going.', '\n\n']);
    expect(reply.content).toMatch(/^Still going\.\n\nI stopped before finishing: this request needed more than 2 rounds/);
    expect(pieces.join('')).toBe(reply.content);
  });

  it('a provider that streams nothing: each step’s text is given whole when the step ends', async () => {
    const provider = scriptedProvider([{ role: 'assistant', content: 'Not streamed.' }], null);
    const { reply, pieces } = await runCollecting(loopAgent(provider), echoToolBox());
    expect(pieces).toEqual(['Not streamed.']);
    expect(reply.content).toBe('Not streamed.');
  });
});

describe('textPieces and the offline agent', () => {
  it('cuts at word boundaries into at most the pieces asked for, concatenating to the text', () => {
    expect(textPieces('one two three four five six seven')).toEqual(['one two ', 'three four ', 'five six ', 'seven']);
    expect(textPieces('Your tasks:\n1. buy milk')).toEqual(['Your tasks:\n', '1. buy ', 'milk']);
    expect(textPieces('  lead and trail  ', 2)).toEqual(['  lead ', 'and trail  ']);
    expect(textPieces('word')).toEqual(['word']);
    expect(textPieces('')).toEqual([]);
  });

  it('the offline agent gives its reply in a few pieces that concatenate to it', async () => {
    const { reply, pieces } = await runCollecting(new OfflineAgent(), echoToolBox(), 'hello there');
    expect(pieces.length).toBeGreaterThanOrEqual(3);
    expect(pieces.length).toBeLessThanOrEqual(6);
    expect(pieces.join('')).toBe(reply.content);
    expect(reply.content).toMatch(/^Hello! I’m the offline assistant/);
  });
});
