/** Unit tests: how stored messages and tool calls become the agent's context, and how results are cut. */
import { describe, expect, it } from 'vitest';
import { toAgentMessages } from '../src/chat/history.js';
import { MessageRole, MessageStatus } from '../src/entities/index.js';
import { truncate } from '../src/mcp/toolbox.js';

const user = (id: string, content: string) => ({ id, role: MessageRole.USER, content, status: MessageStatus.COMPLETE });
const assistant = (id: string, content: string, status = MessageStatus.COMPLETE) => ({ id, role: MessageRole.ASSISTANT, content, status });

describe('toAgentMessages', () => {
  it('replays a reply with tool calls as the calls, their results, then its text', () => {
    const calls = new Map([['a1', [{ callId: 'call_1', name: 'add_task', arguments: { title: 'milk' }, result: { status: 'created' } }]]]);
    expect(toAgentMessages([user('u1', 'add milk'), assistant('a1', 'Added milk.')], calls)).toEqual([
      { role: 'user', content: 'add milk' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'add_task', arguments: '{"title":"milk"}' }] },
      { role: 'tool', callId: 'call_1', content: '{"status":"created"}' },
      { role: 'assistant', content: 'Added milk.' },
    ]);
  });

  it('keeps the completed tool calls of a failed reply but never its text', () => {
    const calls = new Map([['a1', [{ callId: 'call_9', name: 'list_tasks', arguments: {}, result: { tasks: [] } }]]]);
    expect(
      toAgentMessages(
        [user('u1', 'list'), assistant('a1', 'The agent failed to answer.', MessageStatus.FAILED), user('u2', 'list again')],
        calls,
      ),
    ).toEqual([
      { role: 'user', content: 'list' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_9', name: 'list_tasks', arguments: '{}' }] },
      { role: 'tool', callId: 'call_9', content: '{"tasks":[]}' },
      { role: 'user', content: 'list again' },
    ]);
  });

  it('drops a failed reply without tool calls entirely', () => {
    expect(toAgentMessages([user('u1', 'hi'), assistant('a1', '', MessageStatus.FAILED), user('u2', 'hello')])).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'user', content: 'hello' },
    ]);
  });
});

describe('truncate', () => {
  it('leaves short text alone', () => {
    expect(truncate('hello', 16)).toBe('hello');
  });

  it('cuts on a character boundary and says how many bytes were left out', () => {
    const text = 'é'.repeat(10); // 20 bytes
    const cut = truncate(text, 5);
    expect(cut).toBe('éé\n…[truncated: 16 of 20 bytes omitted]');
  });
});
