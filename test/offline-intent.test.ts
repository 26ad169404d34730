/**
 * The offline agent's decisions: how `parseIntent` reads the requests people type, and which
 * tool calls `OfflineAgent` makes for them. The tool box here is a small in-memory stand-in that
 * keeps tasks in an array, because only the agent's choices are under test; the real MCP server
 * and database are exercised end to end elsewhere.
 */
import { describe, expect, it } from 'vitest';
import { OfflineAgent } from '../src/agent/offline.js';
import { type Intent, parseIntent } from '../src/agent/offline-intent.js';
import type { ToolBox, ToolCallRecord, ToolInfo, ToolOutcome } from '../src/agent/types.js';

describe('parseIntent', () => {
  const cases: [string, Intent][] = [
    // add
    ['add buy milk', { kind: 'add', title: 'buy milk' }],
    ['Add a task to buy milk.', { kind: 'add', title: 'buy milk' }],
    ['add a task called "Pay rent"', { kind: 'add', title: 'Pay rent' }],
    ['add buy milk to my list', { kind: 'add', title: 'buy milk' }],
    ['please add milk please!', { kind: 'add', title: 'milk' }],
    [
      'Can you create a new task called ‘Book flights’ with description before Friday?',
      { kind: 'add', title: 'Book flights', description: 'before Friday' },
    ],
    ['remind me to call mom', { kind: 'add', title: 'call mom' }],
    ['remember to buy eggs', { kind: 'add', title: 'buy eggs' }],
    ['I need to finish the report', { kind: 'add', title: 'finish the report' }],
    ['new task: water the plants', { kind: 'add', title: 'water the plants' }],
    ['add to my list: renew passport', { kind: 'add', title: 'renew passport' }],
    ['add a task to list my expenses', { kind: 'add', title: 'list my expenses' }],
    ['add done laundry', { kind: 'add', title: 'done laundry' }],
    ['add buy 2 apples', { kind: 'add', title: 'buy 2 apples' }],
    ['add a task', { kind: 'help' }],
    // list
    ['list', { kind: 'list', status: 'all' }],
    ['show my tasks', { kind: 'list', status: 'all' }],
    ['What are my tasks?', { kind: 'list', status: 'all' }],
    ['can you show me my todo list', { kind: 'list', status: 'all' }],
    ["what's pending", { kind: 'list', status: 'pending' }],
    ['what’s left?', { kind: 'list', status: 'pending' }],
    ['what do I have to do', { kind: 'list', status: 'pending' }],
    ['show completed tasks', { kind: 'list', status: 'completed' }],
    ['completed tasks', { kind: 'list', status: 'completed' }],
    ['what have I done', { kind: 'list', status: 'completed' }],
    // complete
    ['complete task 3', { kind: 'complete', target: { number: 3 } }],
    ['#3', { kind: 'complete', target: { number: 3 } }],
    ['done #3', { kind: 'complete', target: { number: 3 } }],
    ['mark 2 as done', { kind: 'complete', target: { number: 2 } }],
    ['Mark the first one as complete.', { kind: 'complete', target: { number: 1 } }],
    ['I finished buying milk', { kind: 'complete', target: { words: 'buying milk' } }],
    ['check off milk', { kind: 'complete', target: { words: 'milk' } }],
    ['cross milk off my list', { kind: 'complete', target: { words: 'milk' } }],
    ['finish the report', { kind: 'complete', target: { words: 'report' } }],
    ['task 2 is done', { kind: 'complete', target: { number: 2 } }],
    ["I'm done with the laundry", { kind: 'complete', target: { words: 'laundry' } }],
    ['mark milk as not done', { kind: 'help' }],
    ["I'm done", { kind: 'help' }],
    // delete
    ['delete task 2', { kind: 'delete', target: { number: 2 } }],
    ['remove milk from my list', { kind: 'delete', target: { words: 'milk' } }],
    ['get rid of the laundry task', { kind: 'delete', target: { words: 'laundry' } }],
    ['Please cancel task 2', { kind: 'delete', target: { number: 2 } }],
    // update
    ['rename task 1 to buy oat milk', { kind: 'update', target: { number: 1 }, title: 'buy oat milk' }],
    ['change buy milk to buy bread', { kind: 'update', target: { words: 'buy milk' }, title: 'buy bread' }],
    ['rename "go to gym" to "go to the gym"', { kind: 'update', target: { words: 'go to gym' }, title: 'go to the gym' }],
    ['change the title of task 1 to Call Mom', { kind: 'update', target: { number: 1 }, title: 'Call Mom' }],
    ['update task 2 description to two liters, organic', { kind: 'update', target: { number: 2 }, description: 'two liters, organic' }],
    ['add a note to task 2: bring the receipt', { kind: 'update', target: { number: 2 }, description: 'bring the receipt' }],
    // greeting and help
    ['hi', { kind: 'greeting' }],
    ['Hello!', { kind: 'greeting' }],
    ['hey there', { kind: 'greeting' }],
    ['what can you do?', { kind: 'help' }],
    ['tell me a joke', { kind: 'help' }],
    ['', { kind: 'help' }],
  ];

  it.each(cases)('reads %j', (text, expected) => {
    expect(parseIntent(text)).toEqual(expected);
  });
});

type StoredTask = { task_id: string; title: string; description: string | null; completed: boolean; created_at: string };

// Private: the todo tools' contract (see src/mcp/todo-server.ts) over an array, recording calls like the real tool box.
function taskToolBox(titles: (string | { title: string; completed: boolean })[] = []) {
  let nextId = 0;
  const tasks: StoredTask[] = titles.map((entry) => {
    const { title, completed } = typeof entry === 'string' ? { title: entry, completed: false } : entry;
    return { task_id: `t${++nextId}`, title, description: null, completed, created_at: new Date(0).toISOString() };
  });
  const calls: ToolCallRecord[] = [];
  const ok = (structured: unknown): ToolOutcome => ({ content: JSON.stringify(structured), structured, isError: false });
  const changed = (task: StoredTask, status: string) => ok({ task_id: task.task_id, status, title: task.title });
  const notFound = (id: unknown): ToolOutcome => ({
    content: `Task ${String(id)} not found.`,
    structured: { error: 'not found' },
    isError: true,
  });

  const run = (name: string, args: Record<string, unknown>): ToolOutcome => {
    const task = tasks.find((t) => t.task_id === args.task_id);
    switch (name) {
      case 'add_task': {
        const created = {
          task_id: `t${++nextId}`,
          title: String(args.title),
          description: (args.description as string) ?? null,
          completed: false,
          created_at: new Date().toISOString(),
        };
        tasks.push(created);
        return changed(created, 'created');
      }
      case 'list_tasks': {
        const status = args.status ?? 'all';
        return ok({ tasks: tasks.filter((t) => status === 'all' || t.completed === (status === 'completed')) });
      }
      case 'complete_task':
        if (!task) return notFound(args.task_id);
        task.completed = true;
        return changed(task, 'completed');
      case 'delete_task':
        if (!task) return notFound(args.task_id);
        tasks.splice(tasks.indexOf(task), 1);
        return changed(task, 'deleted');
      case 'update_task':
        if (!task) return notFound(args.task_id);
        if (typeof args.title === 'string') task.title = args.title;
        if (typeof args.description === 'string') task.description = args.description;
        return changed(task, 'updated');
      default:
        return { content: `Unknown tool "${name}".`, structured: { error: 'unknown tool' }, isError: true };
    }
  };

  const box: ToolBox = {
    calls,
    list: (): ToolInfo[] => [],
    async call(name, args, callId = `call_${calls.length + 1}`) {
      const startedAt = new Date();
      const outcome = run(name, args as Record<string, unknown>);
      calls.push({
        callId,
        server: 'todo',
        name,
        arguments: args,
        result: outcome.structured,
        isError: outcome.isError,
        startedAt,
        durationMs: 0,
      });
      return outcome;
    },
  };
  return { box, tasks, calls: () => calls.map(({ name, arguments: args }) => [name, args]) };
}

async function say(text: string, box: ToolBox) {
  return new OfflineAgent().run({ messages: [{ role: 'user', content: text }], tools: box });
}

describe('OfflineAgent', () => {
  it('adds a task and confirms it by title', async () => {
    const todo = taskToolBox();
    const reply = await say('add a task to buy milk', todo.box);
    expect(todo.calls()).toEqual([['add_task', { title: 'buy milk' }]]);
    expect(reply).toEqual({ content: 'Added “buy milk” to your tasks.', model: 'offline', usage: null });
    expect(todo.tasks.map((t) => t.title)).toEqual(['buy milk']);
  });

  it('answers the last user message of the history', async () => {
    const todo = taskToolBox();
    const reply = await new OfflineAgent().run({
      messages: [
        { role: 'user', content: 'add walk the dog' },
        { role: 'assistant', content: 'Added “walk the dog” to your tasks.' },
        { role: 'user', content: 'show my tasks' },
      ],
      tools: todo.box,
    });
    expect(todo.calls()).toEqual([['list_tasks', { status: 'all' }]]);
    expect(reply.content).toBe('You have no tasks.');
  });

  it('says so when there are no tasks to list', async () => {
    const todo = taskToolBox();
    const reply = await say('what are my tasks?', todo.box);
    expect(todo.calls()).toEqual([['list_tasks', { status: 'all' }]]);
    expect(reply.content).toBe('You have no tasks.');
  });

  it('lists pending tasks under their numbers in the full list', async () => {
    const todo = taskToolBox([{ title: 'buy milk', completed: true }, 'call mom']);
    const reply = await say("what's pending?", todo.box);
    expect(todo.calls()).toEqual([['list_tasks', { status: 'all' }]]);
    expect(reply.content).toBe('Pending tasks:\n2. [ ] call mom');
  });

  it('completes a task by its number', async () => {
    const todo = taskToolBox(['buy milk', 'call mom', 'pay rent']);
    const reply = await say('mark 2 as done', todo.box);
    expect(todo.calls()).toEqual([
      ['list_tasks', { status: 'all' }],
      ['complete_task', { task_id: 't2' }],
    ]);
    expect(reply.content).toBe('Marked “call mom” as done.');
  });

  it('completes a task by words of its title, preferring a pending one', async () => {
    const todo = taskToolBox([{ title: 'buy milk', completed: true }, 'call mom', 'buy milk']);
    const reply = await say('I finished buying milk', todo.box);
    expect(todo.calls()).toEqual([
      ['list_tasks', { status: 'all' }],
      ['complete_task', { task_id: 't3' }],
    ]);
    expect(reply.content).toBe('Marked “buy milk” as done.');
  });

  it('asks which task is meant when several match, and changes nothing', async () => {
    const todo = taskToolBox(['buy milk', 'call mom', 'buy oat milk']);
    const reply = await say('check off milk', todo.box);
    expect(todo.calls()).toEqual([['list_tasks', { status: 'all' }]]);
    expect(reply.content).toContain('“milk” matches more than one task');
    expect(reply.content).toContain('1. [ ] buy milk');
    expect(reply.content).toContain('3. [ ] buy oat milk');
    expect(reply.content).not.toContain('call mom');
  });

  it('prefers an exact title over titles that merely contain the words', async () => {
    const todo = taskToolBox(['buy oat milk', 'buy milk']);
    const reply = await say('delete buy milk', todo.box);
    expect(todo.calls()).toEqual([
      ['list_tasks', { status: 'all' }],
      ['delete_task', { task_id: 't2' }],
    ]);
    expect(reply.content).toBe('Deleted “buy milk”.');
  });

  it('says no task matches, shows what there is, and changes nothing', async () => {
    const todo = taskToolBox(['buy milk', 'call mom']);
    const reply = await say('complete the dentist appointment', todo.box);
    expect(todo.calls()).toEqual([['list_tasks', { status: 'all' }]]);
    expect(reply.content).toContain('No task matches “dentist appointment”');
    expect(reply.content).toContain('1. [ ] buy milk');
    expect(reply.content).toContain('2. [ ] call mom');
  });

  it('says a task number is out of range and changes nothing', async () => {
    const todo = taskToolBox(['buy milk']);
    const reply = await say('delete task 4', todo.box);
    expect(todo.calls()).toEqual([['list_tasks', { status: 'all' }]]);
    expect(reply.content).toContain('There is no task 4: you have 1 task.');
  });

  it('deletes a task by words of its title', async () => {
    const todo = taskToolBox(['buy milk', 'do the laundry']);
    const reply = await say('get rid of the laundry task', todo.box);
    expect(todo.calls()).toEqual([
      ['list_tasks', { status: 'all' }],
      ['delete_task', { task_id: 't2' }],
    ]);
    expect(reply.content).toBe('Deleted “do the laundry”.');
    expect(todo.tasks.map((t) => t.title)).toEqual(['buy milk']);
  });

  it('renames a task', async () => {
    const todo = taskToolBox(['buy milk']);
    const reply = await say('rename task 1 to buy oat milk', todo.box);
    expect(todo.calls()).toEqual([
      ['list_tasks', { status: 'all' }],
      ['update_task', { task_id: 't1', title: 'buy oat milk' }],
    ]);
    expect(reply.content).toBe('Renamed “buy milk” to “buy oat milk”.');
  });

  it('reports a tool error plainly', async () => {
    const todo = taskToolBox(['buy milk']);
    const failing: ToolBox = {
      ...todo.box,
      call: async (name, args, callId) =>
        name === 'complete_task' ? { content: 'Task t1 not found.', structured: null, isError: true } : todo.box.call(name, args, callId),
    };
    const reply = await say('complete 1', failing);
    expect(reply.content).toBe('I couldn’t mark “buy milk” as done: Task t1 not found.');
  });

  it('answers anything else with help that names itself as the offline assistant, calling no tool', async () => {
    const todo = taskToolBox();
    const reply = await say('tell me a joke', todo.box);
    expect(todo.calls()).toEqual([]);
    expect(reply.content).toContain('offline assistant');
    expect(reply.content).toContain('no language model is configured');
    expect(reply.content).toContain('“add buy milk”');
  });
});
