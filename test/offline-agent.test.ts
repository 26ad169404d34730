/**
 * The offline agent end to end: what people type, the tool calls it must make through the real
 * MCP todo server, the tasks stored afterwards, and what it answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at } from './support/defined.js';
import { send } from './support/graphql.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

type Case = {
  name: string;
  /** Tasks the user has before the request (added through the agent, oldest first). */
  before: string[];
  /** Tasks to mark done before the request, by title. */
  done?: string[];
  say: string;
  /** Tool calls of the turn: name and the arguments that must be part of the call. */
  calls: [string, Record<string, unknown>?][];
  reply: RegExp;
  /** The user's tasks afterwards: title and whether completed. */
  after: [string, boolean][];
};

const cases: Case[] = [
  {
    name: 'add',
    before: [],
    say: 'add a task to buy milk',
    calls: [['add_task', { title: 'buy milk' }]],
    reply: /Added “buy milk”/,
    after: [['buy milk', false]],
  },
  {
    name: 'remind me',
    before: [],
    say: 'Remind me to call mom tomorrow',
    calls: [['add_task', { title: 'call mom tomorrow' }]],
    reply: /call mom tomorrow/,
    after: [['call mom tomorrow', false]],
  },
  {
    name: 'create with quotes',
    before: [],
    say: 'please create a task called "file taxes"',
    calls: [['add_task', { title: 'file taxes' }]],
    reply: /file taxes/,
    after: [['file taxes', false]],
  },
  {
    name: 'list all',
    before: ['a', 'b'],
    say: 'show me my tasks',
    calls: [['list_tasks', { status: 'all' }]],
    reply: /1\. \[ \] a\n2\. \[ \] b/,
    after: [
      ['a', false],
      ['b', false],
    ],
  },
  { name: 'list empty', before: [], say: 'what are my tasks?', calls: [['list_tasks']], reply: /no tasks/i, after: [] },
  {
    name: 'list pending',
    before: ['wash car', 'pay rent'],
    done: ['wash car'],
    say: "what's pending?",
    calls: [['list_tasks']],
    reply: /^Pending tasks:\n2\. \[ \] pay rent$/,
    after: [
      ['wash car', true],
      ['pay rent', false],
    ],
  },
  {
    name: 'list completed',
    before: ['wash car', 'pay rent'],
    done: ['wash car'],
    say: 'show completed tasks',
    calls: [['list_tasks']],
    reply: /1\. \[x\] wash car/,
    after: [
      ['wash car', true],
      ['pay rent', false],
    ],
  },
  {
    name: 'complete by number',
    before: ['a', 'b', 'c'],
    say: 'mark 2 as done',
    calls: [['list_tasks'], ['complete_task']],
    reply: /Marked “b” as done/,
    after: [
      ['a', false],
      ['b', true],
      ['c', false],
    ],
  },
  {
    name: 'complete by words',
    before: ['buy milk', 'walk dog'],
    say: 'I finished buying milk',
    calls: [['list_tasks'], ['complete_task']],
    reply: /buy milk/,
    after: [
      ['buy milk', true],
      ['walk dog', false],
    ],
  },
  {
    name: 'finish task n',
    before: ['a', 'b'],
    say: 'finish task 1',
    calls: [['list_tasks'], ['complete_task']],
    reply: /Marked “a” as done/,
    after: [
      ['a', true],
      ['b', false],
    ],
  },
  {
    name: 'complete ambiguous',
    before: ['buy milk', 'buy bread'],
    say: 'complete buy',
    calls: [['list_tasks']],
    reply: /more than one/,
    after: [
      ['buy milk', false],
      ['buy bread', false],
    ],
  },
  {
    name: 'complete not found',
    before: ['buy milk'],
    say: 'mark the gym task as done',
    calls: [['list_tasks']],
    reply: /No task matches/,
    after: [['buy milk', false]],
  },
  {
    name: 'complete number out of range',
    before: ['a'],
    say: 'complete task 7',
    calls: [['list_tasks']],
    reply: /no task 7/i,
    after: [['a', false]],
  },
  {
    name: 'delete by number',
    before: ['a', 'b'],
    say: 'delete task 1',
    calls: [['list_tasks'], ['delete_task']],
    reply: /Deleted “a”/,
    after: [['b', false]],
  },
  {
    name: 'remove by words',
    before: ['buy milk', 'walk dog'],
    say: 'remove the dog task',
    calls: [['list_tasks'], ['delete_task']],
    reply: /Deleted “walk dog”/,
    after: [['buy milk', false]],
  },
  {
    name: 'delete not found',
    before: ['buy milk'],
    say: 'get rid of the laundry task',
    calls: [['list_tasks']],
    reply: /No task matches/,
    after: [['buy milk', false]],
  },
  {
    name: 'rename by number',
    before: ['buy milk'],
    say: 'rename task 1 to buy oat milk',
    calls: [['list_tasks'], ['update_task', { title: 'buy oat milk' }]],
    reply: /Renamed “buy milk” to “buy oat milk”/,
    after: [['buy oat milk', false]],
  },
  {
    name: 'change by words',
    before: ['buy milk', 'walk dog'],
    say: 'change buy milk to buy bread',
    calls: [['list_tasks'], ['update_task', { title: 'buy bread' }]],
    reply: /buy bread/,
    after: [
      ['buy bread', false],
      ['walk dog', false],
    ],
  },
  { name: 'help for anything else', before: [], say: 'what is the capital of France?', calls: [], reply: /offline assistant/, after: [] },
];

describe('offline agent through GraphQL, MCP and PostgreSQL', () => {
  it.each(cases)('$name: "$say"', async (c) => {
    const userId = `offline-${c.name.replaceAll(' ', '-')}`;
    const client = await server.client(userId);
    let conversationId: string | undefined;
    for (const title of c.before) conversationId = (await send(client, `add ${title}`, conversationId)).conversation.id;
    for (const title of c.done ?? []) await send(client, `complete ${title}`, conversationId);

    const turn = await send(client, c.say, conversationId);

    expect(turn.toolCalls.map((call) => call.name)).toEqual(c.calls.map(([name]) => name));
    c.calls.forEach(([, args], i) => {
      const call = at(turn.toolCalls, i, 'the tool calls of the turn');
      expect(call.arguments).toMatchObject(args ?? {});
      expect(call.isError).toBe(false);
      expect(call.server).toBe('todo');
    });
    expect(turn.response).toMatch(c.reply);
    expect(turn.response).not.toMatch(/language model(?! is configured)/);

    const tasks = await client.request<{ tasks: { edges: { node: { title: string; completed: boolean } }[] } }>(
      '{ tasks(first: 100) { edges { node { title completed } } } }',
    );
    expect(tasks.tasks.edges.map(({ node }) => [node.title, node.completed])).toEqual(c.after);
  });
});
