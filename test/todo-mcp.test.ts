/**
 * The built-in todo MCP server, driven through an MCP SDK `Client` over the protocol, on a real
 * database: each tool, its structured results, and the wall between users.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskStore } from '../src/db/stores/tasks.js';
import { ACTING_USER_META, createTodoServer } from '../src/mcp/todo-server.js';
import { connectInMemory } from '../src/mcp/toolbox.js';
import { startTestServer, type TestServer } from './support/server.js';

let server: TestServer;
let alice: Client;
let bob: Client;

beforeAll(async () => {
  server = await startTestServer();
  alice = await connectInMemory(createTodoServer(taskStore(server.app.orm.em.fork()), { userId: 'alice' }));
  bob = await connectInMemory(createTodoServer(taskStore(server.app.orm.em.fork()), { userId: 'bob' }));
});

afterAll(async () => {
  await alice?.close();
  await bob?.close();
  await server?.close();
});

/** What the todo tools put in `structuredContent`, read loosely: each test states the exact shape it expects. */
type Structured = { task_id?: string; status?: string; title?: string; tasks?: unknown[] };

async function call(client: Client, name: string, args: Record<string, unknown>) {
  const result = await client.callTool({ name, arguments: args });
  return {
    isError: result.isError === true,
    structured: result.structuredContent as Structured,
    text: (result.content as { text: string }[])[0]?.text,
  };
}

describe('todo MCP server', () => {
  it('offers the five tools, none of them with a user id parameter', async () => {
    const { tools } = await alice.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['add_task', 'complete_task', 'delete_task', 'list_tasks', 'update_task']);
    for (const tool of tools) expect(Object.keys(tool.inputSchema.properties ?? {})).not.toContain('user_id');
  });

  it('adds, lists, updates, completes and deletes a task', async () => {
    const added = await call(alice, 'add_task', { title: 'buy milk', description: '2 litres' });
    expect(added).toMatchObject({ isError: false, structured: { status: 'created', title: 'buy milk', task_id: expect.any(String) } });
    const id = added.structured.task_id;

    const pending = await call(alice, 'list_tasks', { status: 'pending' });
    expect(pending.structured.tasks).toEqual([
      expect.objectContaining({ task_id: id, title: 'buy milk', description: '2 litres', completed: false }),
    ]);

    expect((await call(alice, 'update_task', { task_id: id, title: 'buy oat milk' })).structured).toEqual({
      task_id: id,
      status: 'updated',
      title: 'buy oat milk',
    });
    expect((await call(alice, 'complete_task', { task_id: id })).structured).toEqual({
      task_id: id,
      status: 'completed',
      title: 'buy oat milk',
    });
    expect((await call(alice, 'list_tasks', { status: 'pending' })).structured.tasks).toEqual([]);
    expect((await call(alice, 'list_tasks', { status: 'completed' })).structured.tasks).toHaveLength(1);
    expect((await call(alice, 'delete_task', { task_id: id })).structured).toEqual({
      task_id: id,
      status: 'deleted',
      title: 'buy oat milk',
    });
    expect((await call(alice, 'list_tasks', {})).structured.tasks).toEqual([]);
  });

  it("cannot see or change another user's task: it is simply not found", async () => {
    const { structured } = await call(alice, 'add_task', { title: 'alice only' });
    const id = structured.task_id;
    expect((await call(bob, 'list_tasks', {})).structured.tasks).toEqual([]);
    for (const [name, args] of [
      ['complete_task', { task_id: id }],
      ['update_task', { task_id: id, title: 'hacked' }],
      ['delete_task', { task_id: id }],
    ] as const) {
      const result = await call(bob, name, args);
      expect(result).toMatchObject({ isError: true, text: `Task ${id} not found.` });
    }
    expect((await call(alice, 'list_tasks', {})).structured.tasks).toEqual([
      expect.objectContaining({ task_id: id, title: 'alice only', completed: false }),
    ]);
  });

  it('reports bad input as a tool error, not a crash', async () => {
    expect((await call(alice, 'complete_task', { task_id: 'not-a-uuid' })).isError).toBe(true);
    expect((await call(alice, 'add_task', { title: '   ' })).isError).toBe(true);
    expect((await call(alice, 'add_task', {})).isError).toBe(true);
    expect((await call(alice, 'update_task', { task_id: '0190a3c0-0000-7000-8000-000000000000' })).isError).toBe(true);
  });
});

describe('the todo server one process shares between its turns', () => {
  it('acts for the user each call names in its request metadata, never for one named in the arguments, and for nobody without it', async () => {
    const tasks = taskStore(server.app.orm.em.fork());
    const shared = await connectInMemory(createTodoServer(tasks, 'from-request-meta'));
    try {
      const as = (userId: string) => ({ [ACTING_USER_META]: userId });
      const added = await shared.callTool({ name: 'add_task', arguments: { title: 'carol only' }, _meta: as('carol') });
      expect(added.isError).not.toBe(true);

      // Dave sees none of Carol's tasks, whatever the arguments claim (unknown keys are not read).
      const spoofed = await shared.callTool({
        name: 'list_tasks',
        arguments: { _meta: as('carol'), userId: 'carol', user_id: 'carol' },
        _meta: as('dave'),
      });
      expect(spoofed.structuredContent).toEqual({ tasks: [] });
      const own = await shared.callTool({ name: 'list_tasks', arguments: {}, _meta: as('carol') });
      expect((own.structuredContent as { tasks: { title: string }[] }).tasks.map((task) => task.title)).toEqual(['carol only']);

      // No acting user named: refused before any SQL, nothing stored.
      for (const meta of [undefined, {}, as(''), { [ACTING_USER_META]: 42 }]) {
        const anonymous = await shared.callTool({ name: 'add_task', arguments: { title: 'nobody' }, ...(meta ? { _meta: meta } : {}) });
        expect(anonymous).toMatchObject({
          isError: true,
          content: [{ type: 'text', text: 'add_task needs the acting user; this call named none.' }],
        });
      }
      const { rows } = await server.db.query(`select count(*)::int as n from task where title = 'nobody'`);
      expect(rows[0].n).toBe(0);
    } finally {
      await shared.close();
    }
  });
});
